"""Loaders and checkers for the deploy artifacts (test_deploy.py): no Docker engine, cluster or helm
binary runs here, so each artifact is checked against a published schema or cross-checked with the
code it deploys."""

from __future__ import annotations

import io
import json
import re
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema
from dockerfile_parse import DockerfileParser

from orchestrator.settings import Settings
from tests.unit.deploy_crds import CRD_GROUPS, validate_custom_resource

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

# The settings that are secrets: the redaction list of orchestrator/observe/logs.py names the
# B24 ones; a Redis URL may carry a password. They go to a Secret, every other one to a ConfigMap.
SECRET_SETTINGS = frozenset(
    {"REDIS_URL", "B24_WEBHOOK_URL", "B24_APPLICATION_TOKEN", "B24_CLIENT_SECRET"}
)
# The settings a deployment sets away from the code's default, each for a reason its manifest's
# comment gives (the spool volume's path and size, the workers' scrape endpoint).
DEPLOY_OVERRIDES = frozenset(
    {"SPOOL_DIR", "SPOOL_MAX_BYTES", "WORKER_METRICS_PORT", "WORKER_METRICS_HOST"}
)


def load_yaml(path: Path) -> Any:
    """One YAML document."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_documents(text: str) -> list[dict[str, Any]]:
    """Every non-empty document of a multi-document YAML text."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def k8s_manifest_files() -> list[Path]:
    """The object manifests under deploy/k8s: every YAML file but the kustomizations (their
    patches are inline, so no other file holds anything but objects)."""
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def k8s_objects() -> Iterator[tuple[Path, dict[str, Any]]]:
    """(file, object) for every object in deploy/k8s."""
    for path in k8s_manifest_files():
        for doc in load_documents(path.read_text(encoding="utf-8")):
            yield path, doc


def validate_k8s_object(doc: dict[str, Any], version: str) -> None:
    """Raise unless `doc` validates: custom resources against our schemas of them
    (deploy_crds.py), the rest strictly against the Kubernetes OpenAPI schemas (strict: unknown
    fields fail too)."""
    if doc.get("apiVersion", "").startswith(CRD_GROUPS):
        validate_custom_resource(doc)
        if doc["kind"] != "ScaledObject":
            return
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


# What an environment variable of each Python type may look like, as a chart value: YAML may
# give the number itself or the string the ConfigMap will hold (a pattern constrains strings only).
_INT = r"^-?[0-9]+$"
_FLOAT = r"^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$"


def setting_value_schema(name: str) -> dict[str, Any]:
    """The JSON schema of the chart value that sets the setting `name` (config.X): its type and
    choices, or null. Null means unset for every setting, since Helm drops a null value (the way
    to remove a default) before it validates or renders, and the code's default then applies."""
    annotation: Any = Settings.model_fields[name.lower()].annotation
    args = typing.get_args(annotation)
    (kind,) = [a for a in args if a is not type(None)] if type(None) in args else (annotation,)
    if typing.get_origin(kind) is typing.Literal:
        return {"enum": [*typing.get_args(kind), None]}
    schemas: dict[Any, dict[str, Any]] = {
        bool: {"enum": [True, False, "true", "false", None]},
        int: {"type": ["integer", "string", "null"], "pattern": _INT},
        float: {"type": ["number", "string", "null"], "pattern": _FLOAT},
        str: {"type": ["string", "null"]},
    }
    return schemas[kind]


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


_QUANTITY = re.compile(
    r"^(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$"
)
_SUFFIX_BYTES = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_SUFFIX_BYTES |= {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def quantity_bytes(quantity: str) -> float:
    """Bytes of a Kubernetes storage quantity such as `1Gi` or `500M`."""
    match = _QUANTITY.match(quantity)
    if match is None:
        raise ValueError(f"not a storage quantity: {quantity!r}")
    return float(match["number"]) * _SUFFIX_BYTES[match["suffix"] or ""]
