"""deploy/k8s file by file: each object validates strictly, the kustomize tree is laid out as its
comments say (a base, components, overlays), the ConfigMap and the Secret carry every setting of
orchestrator/settings.py, the pods are locked down, and the image is the one deploy/README.md
tells how to build and push."""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from orchestrator.observe import metrics
from orchestrator.settings import Settings
from tests.unit.deploy_chart import chart_values
from tests.unit.deploy_checks import (
    DEPLOY,
    DEPLOY_OVERRIDES,
    DOCKERFILE,
    K8S,
    K8S_VERSIONS,
    ROOT,
    SECRET_SETTINGS,
    dockerfile_stages,
    instruction_values,
    k8s_manifest_files,
    k8s_objects,
    label_subset,
    load_documents,
    load_yaml,
    setting_names,
    settings_from_env,
    validate_k8s_object,
)

AUTOSCALERS = {"components/hpa", "components/keda"}
BUILT_IN_GROUPS = {"", "apps", "autoscaling", "policy", "networking.k8s.io"}


@pytest.fixture(scope="module")
def objects() -> dict[tuple[str, str], dict[str, Any]]:
    """Every object of deploy/k8s by (kind, name)."""
    return {(doc["kind"], doc["metadata"]["name"]): doc for _, doc in k8s_objects()}


def _pod(objects: dict[tuple[str, str], dict[str, Any]], name: str) -> dict[str, Any]:
    spec: dict[str, Any] = objects[("Deployment", name)]["spec"]["template"]["spec"]
    return spec


def _kustomization(directory: Path) -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(directory / "kustomization.yaml")
    return document


def _commented_keys(path: Path) -> set[str]:
    """The `# NAME: value` lines of a manifest: settings shown but left unset."""
    pattern = re.compile(r"^\s*#\s*(?P<name>[A-Z][A-Z0-9_]*):")
    return {m["name"] for line in path.read_text().splitlines() if (m := pattern.match(line))}


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", k8s_manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_k8s_manifest_validates(path: Path, version: str) -> None:
    """Each object validates strictly (unknown fields fail) against the Kubernetes schemas, or
    against deploy_crds.py for a custom resource."""
    docs = load_documents(path.read_text())
    assert docs
    for doc in docs:
        validate_k8s_object(doc, version)
        assert "namespace" not in doc["metadata"], "manifests stay namespace-agnostic"


def test_k8s_validation_rejects_a_misspelt_field(objects: dict[Any, dict[str, Any]]) -> None:
    """The strict validation is able to fail: a typo in a probe, a KEDA trigger value that is
    not a string, an HTTPRoute path that is not absolute, a ServiceMonitor endpoint typo."""
    deployment = copy.deepcopy(objects[("Deployment", "openlines-ingress")])
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_k8s_object(deployment, K8S_VERSIONS[-1])
    scaled = copy.deepcopy(objects[("ScaledObject", "openlines-worker")])
    scaled["spec"]["triggers"][0]["metadata"]["threshold"] = 50
    route = copy.deepcopy(objects[("HTTPRoute", "openlines-events")])
    route["spec"]["rules"][0]["matches"][0]["path"]["value"] = "b24/events"
    monitor = copy.deepcopy(objects[("ServiceMonitor", "openlines-worker")])
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    for broken in (scaled, route, monitor):
        with pytest.raises(jsonschema.ValidationError):
            validate_k8s_object(broken, K8S_VERSIONS[-1])


def test_kustomize_tree_lists_every_manifest_once() -> None:
    """base/ is a Kustomization and each components/* a Component; together they list every
    manifest exactly once (an unlisted file would never be applied)."""
    base = _kustomization(K8S / "base")
    assert base["kind"] == "Kustomization"
    listed = [K8S / "base" / name for name in base["resources"]]
    for directory in sorted((K8S / "components").iterdir()):
        component = _kustomization(directory)
        assert component["kind"] == "Component", directory.name
        listed += [directory / name for name in component.get("resources", [])]
    assert sorted(listed) == k8s_manifest_files()


def _entry_points() -> list[Path]:
    return [K8S, *sorted(p for p in (K8S / "overlays").iterdir() if p.is_dir())]


@pytest.mark.parametrize("directory", _entry_points(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_entry_point_builds_on_base_with_one_autoscaler(directory: Path) -> None:
    """deploy/k8s and each overlay take base/ and exactly one autoscaling component (two would
    fight over the worker replica count), and exist as directories they name."""
    kustomization = _kustomization(directory)
    assert [(directory / r).resolve() for r in kustomization["resources"]] == [K8S / "base"]
    components = [(directory / c).resolve() for c in kustomization["components"]]
    assert all((c / "kustomization.yaml").is_file() for c in components)
    named = {str(c.relative_to(K8S)) for c in components}
    assert len(named & AUTOSCALERS) == 1


def test_default_kustomization_needs_no_crd() -> None:
    """`kubectl apply -k deploy/k8s` works on a cluster without KEDA, the Gateway API or the
    Prometheus Operator: the HPA is its autoscaler, and its components hold built-in kinds only."""
    components = [(K8S / c).resolve() for c in _kustomization(K8S)["components"]]
    assert {str(c.relative_to(K8S)) for c in components} & AUTOSCALERS == {"components/hpa"}
    for component in components:
        for name in _kustomization(component).get("resources", []):
            for doc in load_documents((component / name).read_text()):
                group = doc["apiVersion"].rpartition("/")[0]
                assert group in BUILT_IN_GROUPS, f"{doc['kind']} ({doc['apiVersion']})"


def test_selectors_select_the_workloads_pods(objects: dict[Any, dict[str, Any]]) -> None:
    """Every Service, PDB, NetworkPolicy and ServiceMonitor selector picks the pods (or the
    Service) it is meant for, and the workload selectors match their own pods."""
    pods = {
        name: d["spec"]["template"]["metadata"]["labels"]
        for (kind, name), d in objects.items()
        if kind == "Deployment"
    }
    for (kind, name), doc in objects.items():
        if kind == "Deployment":
            assert label_subset(doc["spec"]["selector"]["matchLabels"], pods[name])
        selector = {
            "PodDisruptionBudget": lambda d: d["spec"]["selector"]["matchLabels"],
            "Service": lambda d: d["spec"]["selector"],
            "NetworkPolicy": lambda d: d["spec"]["podSelector"]["matchLabels"],
        }.get(kind)
        if selector is not None:
            matches = [p for p, labels in pods.items() if label_subset(selector(doc), labels)]
            expected = 2 if name == "openlines-egress" else 1
            assert len(matches) == expected, f"{kind}/{name} selects {matches}"
    services = [d for (kind, _), d in objects.items() if kind == "Service"]
    for (kind, name), doc in objects.items():
        if kind == "ServiceMonitor":
            wanted = doc["spec"]["selector"]["matchLabels"]
            chosen = [s for s in services if label_subset(wanted, s["metadata"]["labels"])]
            assert len(chosen) == 1, f"{name} scrapes {[s['metadata']['name'] for s in chosen]}"


def test_configmap_and_secret_carry_every_setting(objects: dict[Any, dict[str, Any]]) -> None:
    """Each Settings field is a key of the ConfigMap (non-secret) or of the Secret (secret), or
    a `# NAME:` comment there when it is unset by default; together they are valid Settings."""
    config = objects[("ConfigMap", "openlines-config")]["data"]
    secret = objects[("Secret", "openlines-secrets")]["stringData"]
    shown = {
        "config": set(config) | _commented_keys(K8S / "base" / "configmap.yaml"),
        "secret": set(secret) | _commented_keys(K8S / "base" / "secret.example.yaml"),
    }
    assert shown["config"] | shown["secret"] == setting_names()
    assert shown["secret"] == SECRET_SETTINGS
    assert not shown["config"] & SECRET_SETTINGS
    unset_by_default = {n.upper() for n, f in Settings.model_fields.items() if f.default is None}
    assert (shown["config"] | shown["secret"]) - set(config) - set(secret) <= unset_by_default
    assert set(secret) == {"REDIS_URL"}, "portal credentials stay comments until filled in"
    settings_from_env({**config, **secret})


def test_configmap_shows_the_code_defaults(objects: dict[Any, dict[str, Any]]) -> None:
    """A ConfigMap value is the code's default unless the setting is one a deployment sets
    differently (DEPLOY_OVERRIDES): a default changed in orchestrator/settings.py fails here."""
    config = objects[("ConfigMap", "openlines-config")]["data"]
    parsed = settings_from_env(config)
    for name in set(config) - DEPLOY_OVERRIDES:
        assert getattr(parsed, name.lower()) == Settings.model_fields[name.lower()].default, name


def test_ingress_pod_is_probed_locked_down_and_spools_to_a_volume(
    objects: dict[Any, dict[str, Any]],
) -> None:
    """Readiness /readyz, liveness /healthz, non-root as the image's user, read-only root fs, and
    SPOOL_DIR on an emptyDir larger than SPOOL_MAX_BYTES."""
    pod = _pod(objects, "openlines-ingress")
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    runtime = dockerfile_stages(DOCKERFILE.read_text())[-1]
    image_uid = int(instruction_values(runtime, "USER")[-1].split(":")[0])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == image_uid
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    config = settings_from_env(objects[("ConfigMap", "openlines-config")]["data"])
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == config.spool_dir)
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["emptyDir"]["sizeLimit"] == "1Gi"
    assert config.spool_max_bytes < 2**30
    assert f"SPOOL_DIR={config.spool_dir}" in " ".join(instruction_values(runtime, "ENV"))


def test_every_pod_is_locked_down(objects: dict[Any, dict[str, Any]]) -> None:
    """Requests and limits, no privilege escalation, every capability dropped, our own
    ServiceAccount and no API token (the account itself mounts none either)."""
    account = objects[("ServiceAccount", "openlines-orchestrator")]
    assert account["automountServiceAccountToken"] is False
    for name in ("openlines-ingress", "openlines-worker"):
        pod = _pod(objects, name)
        assert pod["serviceAccountName"] == account["metadata"]["name"]
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            assert {"requests", "limits"} <= set(container["resources"]), name
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]


def test_worker_termination_grace_exceeds_shutdown_grace(
    objects: dict[Any, dict[str, Any]],
) -> None:
    """Kubernetes waits longer than the worker's own drain before it sends SIGKILL."""
    grace = settings_from_env(objects[("ConfigMap", "openlines-config")]["data"]).shutdown_grace_s
    assert _pod(objects, "openlines-worker")["terminationGracePeriodSeconds"] > grace


def test_autoscalers_target_the_workers_on_the_exported_queue_depth(
    objects: dict[Any, dict[str, Any]],
) -> None:
    """KEDA and the HPA scale the worker Deployment on the metric the ingress really exports."""
    depth_metric = metrics.QUEUE_DEPTH._name  # prometheus_client keeps the exported name here
    scaled = objects[("ScaledObject", "openlines-worker")]["spec"]
    hpa = objects[("HorizontalPodAutoscaler", "openlines-worker")]["spec"]
    for target in (scaled["scaleTargetRef"]["name"], hpa["scaleTargetRef"]["name"]):
        assert _pod(objects, target)["containers"][0]["args"] == ["worker"]
    query = scaled["triggers"][0]["metadata"]["query"]
    assert f'{depth_metric}{{queue="pending_dialogs"}}' in query
    external = hpa["metrics"][0]["external"]["metric"]
    assert external["name"] == depth_metric
    assert external["selector"]["matchLabels"] == {"queue": "pending_dialogs"}
    # the gauge the ingress (and each worker) refreshes at scrape time
    metrics_source = (ROOT / "orchestrator" / "observe" / "metrics.py").read_text()
    assert 'labels(queue="pending_dialogs")' in metrics_source
    assert "refresh_queue_gauges" in (ROOT / "orchestrator" / "ingress" / "app.py").read_text()


def test_the_image_is_the_one_deploy_readme_builds() -> None:
    """kustomize's `images:` entry, the chart's image values and deploy/README.md's build and
    push commands name the same REGISTRY/openlines-orchestrator:TAG, TAG being the package
    version (the chart's appVersion)."""
    [image] = _kustomization(K8S / "base")["images"]
    chart = chart_values()["image"]
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert image["name"] == chart["repository"]
    assert image["newName"] == f"{chart['registry']}/{chart['repository']}"
    assert (
        image["newTag"]
        == version
        == load_yaml(DEPLOY / "helm" / "openlines-orchestrator" / "Chart.yaml")["appVersion"]
    )
    readme = (DEPLOY / "README.md").read_text()
    assert f"REGISTRY={chart['registry']}" in readme
    assert f"TAG={version}" in readme
    reference = f'"$REGISTRY/{chart["repository"]}:$TAG"'
    assert f"docker build -f deploy/Dockerfile -t {reference} ." in readme
    assert f"docker push {reference}" in readme
