"""Loaders and checkers for the deploy artifacts (test_deploy.py): no Docker engine, cluster or helm
binary runs here, so each artifact is checked against a published schema or cross-checked with the
code it deploys."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema
from dockerfile_parse import DockerfileParser

from orchestrator.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
CHART = DEPLOY / "helm" / "openlines-orchestrator"
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / "env.example"
DOCKERFILE = DEPLOY / "Dockerfile"

# The Kubernetes versions we validate against: the chart's kubeVersion floor and the newest
# schema kubernetes-validate ships (it bundles them, so this runs offline).
K8S_VERSIONS = ("1.25.0", kubernetes_validate.latest_version())

# The fields of KEDA's ScaledObject (keda.sh/v1alpha1) we use, as KEDA's ScaledObject spec
# reference documents them; kubernetes-validate knows no CRDs. Trigger metadata values must be
# strings (KEDA rejects `threshold: 50`), which is the mistake this schema is most likely to catch.
_DNS_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
SCALED_OBJECT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": _DNS_NAME, "maxLength": 253},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
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
                        "name": {"type": "string", "pattern": _DNS_NAME},
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
                            "properties": {
                                "name": {"type": "string"},
                                "behavior": {"type": "object"},
                            },
                        },
                    },
                },
                "triggers": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/trigger"}},
            },
        },
    },
    "$defs": {
        "trigger": {
            "type": "object",
            "required": ["type", "metadata"],
            "additionalProperties": False,
            "properties": {
                "type": {"type": "string"},
                "name": {"type": "string"},
                "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                "authenticationRef": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}, "kind": {"type": "string"}},
                },
            },
            "allOf": [
                {
                    "if": {"properties": {"type": {"const": "prometheus"}}},
                    "then": {
                        "properties": {
                            "metadata": {"required": ["serverAddress", "query", "threshold"]}
                        }
                    },
                }
            ],
        },
    },
}


def load_yaml(path: Path) -> Any:
    """One YAML document."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_documents(text: str) -> list[dict[str, Any]]:
    """Every non-empty document of a multi-document YAML text."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def k8s_manifest_files() -> list[Path]:
    """The object manifests under deploy/k8s (kustomization files are not objects)."""
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def k8s_objects() -> Iterator[tuple[Path, dict[str, Any]]]:
    """(file, object) for every object in deploy/k8s."""
    for path in k8s_manifest_files():
        for doc in load_documents(path.read_text(encoding="utf-8")):
            yield path, doc


def validate_k8s_object(doc: dict[str, Any], version: str) -> None:
    """Raise unless `doc` validates: KEDA objects against our schema, the rest strictly against
    the Kubernetes OpenAPI schemas (strict: unknown fields fail too)."""
    if doc.get("apiVersion", "").startswith("keda.sh/"):
        jsonschema.Draft202012Validator(SCALED_OBJECT_SCHEMA).validate(doc)
        behavior = (
            doc["spec"].get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior")
        )
        if behavior is not None:  # KEDA passes it to the HPA it creates: check it as one
            kubernetes_validate.validate(_hpa_with_behavior(behavior), version, strict=True)
        return
    kubernetes_validate.validate(doc, version, strict=True)


def _hpa_with_behavior(behavior: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "behavior-check"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
            "maxReplicas": 1,
            "behavior": behavior,
        },
    }


def compose_schema() -> dict[str, Any]:
    """The compose-spec JSON schema as check-jsonschema vendors it (from the compose-spec repo)."""
    schema: dict[str, Any] = get_builtin_schema("vendor.compose-spec")
    return schema


def compose_errors(document: Mapping[str, Any]) -> list[str]:
    """Every compose-spec violation of a compose document."""
    schema = compose_schema()
    validator_cls = jsonschema.validators.validator_for(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator_cls(schema).iter_errors(document)
    ]


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_UNIT_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def compose_duration_s(text: str) -> float:
    """Seconds of a compose duration such as `20s` or `1m30s`."""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a compose duration: {text!r}")
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


_INTERPOLATION = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*:-(?P<default>[^}]*)\}$")


def interpolation_default(value: str) -> str:
    """What compose puts for `${VAR:-default}` when VAR is unset; other values as they are."""
    match = _INTERPOLATION.match(value)
    return match["default"] if match else value


def setting_names() -> set[str]:
    """The environment variable of every Settings field."""
    return {name.upper() for name in Settings.model_fields}


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """Validate environment-style values as Settings would read them (no real environment)."""
    return Settings.model_validate({k.lower(): v for k, v in env.items()})


_ENV_LINE = re.compile(r"^(?P<comment>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


def env_example_entries(text: str) -> list[tuple[str, str, bool]]:
    """(name, value, commented) for every `NAME=value` or `# NAME=value` line."""
    entries = []
    for line in text.splitlines():
        match = _ENV_LINE.match(line.strip())
        if match:
            entries.append((match["name"], match["value"], match["comment"] is not None))
    return entries


def dockerfile_stages(text: str) -> list[list[dict[str, Any]]]:
    """The instructions of each build stage (comments dropped), in order."""
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()))
    stages: list[list[dict[str, Any]]] = []
    for instruction in parser.structure:
        if instruction["instruction"] == "FROM":
            stages.append([])
        if stages and instruction["instruction"] != "COMMENT":
            stages[-1].append(instruction)
    return stages


def instruction_values(stage: list[dict[str, Any]], name: str) -> list[str]:
    """The values of every `name` instruction of a stage."""
    return [i["value"] for i in stage if i["instruction"] == name]


def exec_form(value: str) -> list[str]:
    """An exec-form (JSON array) instruction value; anything else raises."""
    parsed = json.loads(value)
    if not isinstance(parsed, list) or not all(isinstance(a, str) for a in parsed):
        raise ValueError(f"not an exec form: {value!r}")
    return parsed


_VALUES_PATH = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def missing_values_paths(templates: Mapping[str, str], values: Mapping[str, Any]) -> list[str]:
    """`file: .Values.x.y` for every reference in the templates that values.yaml does not define."""
    missing = []
    for name, text in sorted(templates.items()):
        for match in _VALUES_PATH.finditer(text):
            node: Any = values
            for key in match[1].lstrip(".").split("."):
                if not isinstance(node, Mapping) or key not in node:
                    missing.append(f"{name}: .Values{match[1]}")
                    break
                node = node[key]
    return missing


def label_subset(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """Whether a matchLabels selector selects pods carrying `labels`."""
    return all(labels.get(k) == v for k, v in selector.items())
