"""JSON schemas of the custom resources deploy/ renders, for the fields it uses.

kubernetes-validate knows the built-in kinds only, and the CRDs' own schemas are large files we do
not vendor. Each schema here keeps, for the fields we set, the types, patterns, enums and bounds
of the CRD it names (its openAPIV3Schema), refuses any other field (a typo would otherwise go
unnoticed until `kubectl apply` against a cluster with the CRD), and adds the CEL rules that bite
our use as plain JSON-schema conditions.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema

_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": _DNS_SUBDOMAIN, "maxLength": 253},
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
    },
}


def _object(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": _METADATA,
            "spec": spec,
        },
    }


# KEDA's ScaledObject (keda.sh/v1alpha1), as its ScaledObject spec reference documents it.
# Trigger metadata values must be strings (KEDA rejects `threshold: 50`), which is the mistake
# this schema is most likely to catch.
SCALED_OBJECT_SCHEMA = _object(
    "keda.sh/v1alpha1",
    "ScaledObject",
    {
        "type": "object",
        "required": ["scaleTargetRef", "triggers"],
        "additionalProperties": False,
        "properties": {
            "scaleTargetRef": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "name": {"type": "string", "pattern": _DNS_LABEL},
                    "envSourceContainerName": {"type": "string"},
                },
            },
            "minReplicaCount": {"type": "integer", "minimum": 0},
            "maxReplicaCount": {"type": "integer", "minimum": 1},
            "idleReplicaCount": {"type": "integer", "minimum": 0},
            "pollingInterval": {"type": "integer", "minimum": 1},
            "cooldownPeriod": {"type": "integer", "minimum": 0},
            "advanced": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "restoreToOriginalReplicaCount": {"type": "boolean"},
                    "horizontalPodAutoscalerConfig": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"name": {"type": "string"}, "behavior": {"type": "object"}},
                    },
                },
            },
            "triggers": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["type", "metadata"],
                    "additionalProperties": False,
                    "properties": {
                        "type": {"type": "string"},
                        "name": {"type": "string"},
                        "metadata": _STRING_MAP,
                        "authenticationRef": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {"name": {"type": "string"}, "kind": {"type": "string"}},
                        },
                    },
                    "if": {"properties": {"type": {"const": "prometheus"}}},
                    "then": {
                        "properties": {
                            "metadata": {
                                "required": ["serverAddress", "query", "threshold"],
                                "properties": {"serverAddress": {"pattern": "^https?://"}},
                            }
                        }
                    },
                },
            },
        },
    },
)

_PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]
_HOSTNAME = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_KIND = r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$"
# A Gateway API path: absolute, within the characters the CRD's CEL rule allows, no `//`.
_ROUTE_PATH = r"^/(?!.*//)(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})*$"

# Gateway API's HTTPRoute, gateway.networking.k8s.io/v1 (standard channel CRD).
HTTP_ROUTE_SCHEMA = _object(
    "gateway.networking.k8s.io/v1",
    "HTTPRoute",
    {
        "type": "object",
        "required": ["parentRefs", "rules"],
        "additionalProperties": False,
        "properties": {
            "parentRefs": {
                "type": "array",
                "minItems": 1,
                "maxItems": 32,
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "group": {"type": "string", "pattern": f"^$|{_DNS_SUBDOMAIN}"},
                        "kind": {
                            "type": "string",
                            "pattern": _KIND,
                        },
                        "name": {"type": "string", "minLength": 1, "maxLength": 253},
                        "namespace": {"type": "string", "pattern": _DNS_LABEL, "maxLength": 63},
                        "sectionName": {"type": "string", "pattern": _DNS_SUBDOMAIN},
                        "port": _PORT,
                    },
                },
            },
            "hostnames": {
                "type": "array",
                "maxItems": 16,
                "items": {
                    "type": "string",
                    "maxLength": 253,
                    "pattern": _HOSTNAME,
                },
            },
            "rules": {
                "type": "array",
                "minItems": 1,
                "maxItems": 16,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matches": {
                            "type": "array",
                            "maxItems": 64,
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "path": {
                                        "type": "object",
                                        "required": ["type", "value"],
                                        "additionalProperties": False,
                                        "properties": {
                                            "type": {"enum": ["Exact", "PathPrefix"]},
                                            "value": {"type": "string", "pattern": _ROUTE_PATH},
                                        },
                                    },
                                    "method": {"enum": _METHODS},
                                },
                            },
                        },
                        "backendRefs": {
                            "type": "array",
                            "maxItems": 16,
                            "items": {
                                "type": "object",
                                # a Service backend needs its port (the CRD's CEL rule)
                                "required": ["name", "port"],
                                "additionalProperties": False,
                                "properties": {
                                    "name": {"type": "string", "minLength": 1},
                                    "port": _PORT,
                                    "weight": {"type": "integer", "minimum": 0},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
)

# The Prometheus Operator's ServiceMonitor, monitoring.coreos.com/v1.
_DURATION = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
SERVICE_MONITOR_SCHEMA = _object(
    "monitoring.coreos.com/v1",
    "ServiceMonitor",
    {
        "type": "object",
        "required": ["selector", "endpoints"],
        "additionalProperties": False,
        "properties": {
            "selector": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"matchLabels": _STRING_MAP},
            },
            "endpoints": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["port"],
                    "additionalProperties": False,
                    "properties": {
                        "port": {"type": "string", "minLength": 1},
                        "path": {"type": "string", "pattern": "^/"},
                        "interval": {"type": "string", "pattern": _DURATION},
                        "scrapeTimeout": {"type": "string", "pattern": _DURATION},
                        "scheme": {"enum": ["http", "https"]},
                    },
                },
            },
        },
    },
)

CRD_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("keda.sh/v1alpha1", "ScaledObject"): SCALED_OBJECT_SCHEMA,
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): HTTP_ROUTE_SCHEMA,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR_SCHEMA,
}
CRD_GROUPS = ("keda.sh/", "gateway.networking.k8s.io/", "monitoring.coreos.com/")


def validate_custom_resource(doc: dict[str, Any]) -> None:
    """Raise unless a custom resource of a kind we know validates against its schema (an unknown
    kind of a known group raises KeyError: a schema must be written for it first)."""
    schema = CRD_SCHEMAS[(doc.get("apiVersion", ""), doc.get("kind", ""))]
    jsonschema.Draft202012Validator(schema).validate(doc)
    if doc["kind"] == "ServiceMonitor":
        for endpoint in doc["spec"]["endpoints"]:
            # the operator refuses a timeout longer than the interval it fits in
            interval, timeout = endpoint.get("interval"), endpoint.get("scrapeTimeout")
            if interval and timeout and _seconds(timeout) > _seconds(interval):
                raise jsonschema.ValidationError(f"scrapeTimeout {timeout} > interval {interval}")


_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def _seconds(duration: str) -> float:
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", duration)
    return sum(int(n) * _UNITS[unit] for n, unit in parts)
