"""Helpers of the chart tests: rendering it, the value combinations that matter, the leaves of
values.yaml and the rows of the chart README's values table."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.unit.deploy_checks import CHART, load_documents

PROMETHEUS = "http://prometheus-operated.monitoring.svc:9090"
# Every switch of the chart, alone and all together (those that need a second value get it).
TOGGLES: dict[str, dict[str, Any]] = {
    "default": {},
    "ingress-tls": {
        "expose": {
            "host": "openlines.example.org",
            "ingress": {
                "className": "nginx",
                "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
                "tls": {"secretName": "openlines-example-org-tls"},
            },
        }
    },
    "ingress-without-tls": {"expose": {"ingress": {"tls": {"enabled": False}}}},
    "gateway": {"expose": {"ingress": {"enabled": False}, "gateway": {"enabled": True}}},
    "persistence": {
        "ingress": {"spool": {"persistence": {"enabled": True, "storageClass": "standard-rwo"}}}
    },
    "keda": {
        "autoscaling": {
            "hpa": {"enabled": False},
            "keda": {"enabled": True, "prometheusAddress": PROMETHEUS},
        }
    },
    "no-autoscaler": {"autoscaling": {"hpa": {"enabled": False}}},
    "service-monitor": {
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "kps"}}}
    },
    "network-policy": {"networkPolicy": {"enabled": True}},
    "redis-existing-secret": {"redis": {"existingSecret": "redis-credentials"}},
    "own-secret": {"secret": {"create": False, "existingSecret": "openlines-from-vault"}},
    # A scenario answerer's secret (docs/answerers.md), for the workers only.
    "worker-extra-env": {
        "worker": {
            "extraEnvFrom": [{"secretRef": {"name": "openlines-answerer"}}],
            "extraEnv": [
                {
                    "name": "OPENAI_API_KEY",
                    "valueFrom": {"secretKeyRef": {"name": "openlines-llm", "key": "api-key"}},
                }
            ],
        }
    },
}
TOGGLES["everything"] = {
    **TOGGLES["persistence"],
    **TOGGLES["worker-extra-env"],
    **TOGGLES["keda"],
    **TOGGLES["service-monitor"],
    **TOGGLES["network-policy"],
    "expose": {
        **TOGGLES["ingress-tls"]["expose"],
        "gateway": {"enabled": True},
    },
}


def render(chart: Any, overrides: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The objects the chart renders (Helm's Go SDK, in process) as release `ol` in `test`."""
    rendered: dict[str, str] = chart.render(
        dict(overrides) if overrides else None, name="ol", namespace="test"
    )
    return [
        doc
        for path, text in sorted(rendered.items())
        if path.endswith(".yaml")
        for doc in load_documents(text)
    ]


def find(docs: list[dict[str, Any]], kind: str, suffix: str = "") -> dict[str, Any]:
    """The one object of `kind` whose name ends with `suffix`."""
    [doc] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(suffix)]
    return doc


def value_leaves(values: Any, schema: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The dotted path of every value an operator sets as a whole: descend into a mapping only
    where the schema lists its properties (annotations, resources, ... are set whole)."""
    if not isinstance(values, Mapping) or "properties" not in schema:
        return [prefix]
    leaves = []
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else key
        leaves += value_leaves(value, schema["properties"].get(key, {}), path)
    return leaves


def schema_paths(schema: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The dotted path of every property the schema declares, at any depth."""
    paths = []
    for key, node in schema.get("properties", {}).items():
        path = f"{prefix}.{key}" if prefix else key
        paths += [path, *schema_paths(node, path)]
    return paths


def values_paths(values: Any, prefix: str = "") -> list[str]:
    """The dotted path of every key of values.yaml, at any depth."""
    if not isinstance(values, Mapping):
        return []
    paths = []
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else key
        paths += [path, *values_paths(value, path)]
    return paths


_ROW = re.compile(r"^\|\s*`(?P<path>[A-Za-z0-9_.]+)`\s*\|")


def readme_value_rows(text: str) -> list[str]:
    """The value paths of the README's table rows (`| \\`a.b\\` | ... |`), in order."""
    return [m["path"] for line in text.splitlines() if (m := _ROW.match(line))]


def helm_cli(binary: Path, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """Run the real helm with its config, cache and data kept under `home` (no repositories,
    no network: lint and template read the chart directory only)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    return subprocess.run(
        [str(binary), *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def write_values(path: Path, overrides: Mapping[str, Any]) -> Path:
    """`overrides` as a values file for `helm -f` (JSON is YAML)."""
    path.write_text(json.dumps(overrides))
    return path


def chart_values() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return document


def chart_schema() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    return document
