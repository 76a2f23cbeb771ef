"""What each switch of the chart renders is wired together: the public route reaches the ingress
Service on the published path, a persistent spool keeps the ingress pod template unchanged, the
autoscaler and the ServiceMonitors find their targets, the NetworkPolicies open exactly the
ports the pods use, and REDIS_URL always comes from a Secret."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.unit.deploy_chart import PROMETHEUS, TOGGLES, find, render
from tests.unit.deploy_checks import CHART, label_subset, quantity_bytes, settings_from_env

helm = pytest.importorskip("helm_python")

Docs = list[dict[str, Any]]


@pytest.fixture(scope="module")
def chart() -> Iterator[Any]:
    with helm.Chart.load(str(CHART)) as loaded:
        yield loaded


def _pods(docs: Docs) -> dict[str, dict[str, Any]]:
    """The pod template of each workload, by component label."""
    return {
        d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]: d["spec"][
            "template"
        ]
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet")
    }


def _settings(docs: Docs) -> Any:
    """The Settings the pods read: the ConfigMap, then the chart's Secret (envFrom order)."""
    return settings_from_env(
        {**find(docs, "ConfigMap")["data"], **find(docs, "Secret")["stringData"]}
    )


def _service_port(service: dict[str, Any], port: int | str) -> dict[str, Any]:
    [match] = [p for p in service["spec"]["ports"] if port in (p["port"], p["name"])]
    found: dict[str, Any] = match
    return found


def test_ingress_publishes_only_the_events_path_over_tls(chart: Any) -> None:
    """The Ingress routes https://<host>/b24/events (Exact) to the ingress Service's http port;
    its TLS covers that host with the configured Secret; class and annotations pass through."""
    docs = render(chart, TOGGLES["ingress-tls"])
    ingress, service = find(docs, "Ingress"), find(docs, "Service", "-ingress")
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] == "openlines.example.org"
    [path] = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/b24/events", "Exact")
    backend = path["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert _service_port(service, backend["port"]["name"])["targetPort"] == "http"
    assert ingress["spec"]["tls"] == [
        {"hosts": ["openlines.example.org"], "secretName": "openlines-example-org-tls"}
    ]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}
    without_tls = find(render(chart, TOGGLES["ingress-without-tls"]), "Ingress")
    assert "tls" not in without_tls["spec"]


def test_gateway_route_replaces_the_ingress(chart: Any) -> None:
    """The HTTPRoute attaches to the configured Gateway, matches POST on the events path only,
    and sends it to a port the ingress Service has."""
    docs = render(chart, TOGGLES["gateway"])
    assert not [d for d in docs if d["kind"] == "Ingress"]
    route, service = find(docs, "HTTPRoute"), find(docs, "Service", "-ingress")
    assert route["spec"]["parentRefs"] == [
        {"name": "public-gateway", "namespace": "gateway-system", "sectionName": "https"}
    ]
    assert route["spec"]["hostnames"] == ["openlines.example.com"]
    [rule] = route["spec"]["rules"]
    assert rule["matches"] == [
        {"path": {"type": "Exact", "value": "/b24/events"}, "method": "POST"}
    ]
    [backend] = rule["backendRefs"]
    assert backend["name"] == service["metadata"]["name"]
    _service_port(service, backend["port"])


def test_persistent_spool_makes_the_ingress_a_statefulset(chart: Any) -> None:
    """Persistence on: a StatefulSet (no Deployment) whose pod template is the Deployment's but
    for the spool volume, one claim per replica of the configured size and class (above
    SPOOL_MAX_BYTES), and a headless governing Service."""
    default, docs = render(chart), render(chart, TOGGLES["persistence"])
    assert not [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-ingress")
    ]
    stateful, deployment = find(docs, "StatefulSet"), find(default, "Deployment", "-ingress")
    expected = deployment["spec"]["template"]
    expected["spec"]["volumes"] = [v for v in expected["spec"]["volumes"] if v["name"] != "spool"]
    assert stateful["spec"]["template"] == expected
    [claim] = stateful["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "spool"
    assert claim["spec"]["storageClassName"] == "standard-rwo"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    config = _settings(docs)
    assert (
        quantity_bytes(claim["spec"]["resources"]["requests"]["storage"]) > config.spool_max_bytes
    )
    headless = find(docs, "Service", "-ingress-headless")
    assert stateful["spec"]["serviceName"] == headless["metadata"]["name"]
    assert headless["spec"]["clusterIP"] == "None"
    assert label_subset(
        headless["spec"]["selector"], stateful["spec"]["template"]["metadata"]["labels"]
    )


def test_emptydir_spool_is_bigger_than_its_cap(chart: Any) -> None:
    """By default the spool is an emptyDir whose sizeLimit exceeds SPOOL_MAX_BYTES: the
    ingress refuses events (503) before the kubelet would evict the pod, spool and all."""
    docs = render(chart)
    pod = find(docs, "Deployment", "-ingress")["spec"]["template"]["spec"]
    [spool] = [v for v in pod["volumes"] if v["name"] == "spool"]
    config = _settings(docs)
    assert quantity_bytes(spool["emptyDir"]["sizeLimit"]) > config.spool_max_bytes


@pytest.mark.parametrize("toggle", ["default", "keda"])
def test_autoscaler_owns_the_worker_count(chart: Any, toggle: str) -> None:
    """The HPA (default) or KEDA (with the configured Prometheus) targets the worker
    Deployment, which then has no replica count of its own; with neither, it has one."""
    docs = render(chart, TOGGLES[toggle])
    worker = find(docs, "Deployment", "-worker")
    assert "replicas" not in worker["spec"]
    kind = {"default": "HorizontalPodAutoscaler", "keda": "ScaledObject"}[toggle]
    scaler = find(docs, kind)
    assert scaler["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    assert len([d for d in docs if d["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")]) == 1
    if toggle == "keda":
        assert scaler["spec"]["triggers"][0]["metadata"]["serverAddress"] == PROMETHEUS
    fixed = find(render(chart, TOGGLES["no-autoscaler"]), "Deployment", "-worker")
    assert fixed["spec"]["replicas"] == 3


def test_service_monitors_each_find_one_service_and_its_port(chart: Any) -> None:
    """Each ServiceMonitor selects exactly one Service (the StatefulSet's headless one is not
    scraped twice), that Service has the port the endpoint names and selects pods exposing it,
    and the operator-facing labels are applied."""
    docs = render(chart, TOGGLES["everything"])
    services = [d for d in docs if d["kind"] == "Service"]
    pods = _pods(docs)
    monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
    assert len(monitors) == 2
    for monitor in monitors:
        assert monitor["metadata"]["labels"]["release"] == "kps"
        selector = monitor["spec"]["selector"]["matchLabels"]
        [service] = [s for s in services if label_subset(selector, s["metadata"]["labels"])]
        [endpoint] = monitor["spec"]["endpoints"]
        port = _service_port(service, endpoint["port"])
        [pod] = [
            p
            for p in pods.values()
            if label_subset(service["spec"]["selector"], p["metadata"]["labels"])
        ]
        container_ports = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
        assert port["targetPort"] in container_ports


def test_network_policies_open_the_ports_the_pods_use(chart: Any) -> None:
    """In: the ingress's http port and the workers' metrics port, each a named port of the pods
    its policy selects. Out, for every pod: DNS (UDP and TCP), Redis and HTTPS only."""
    docs = render(chart, TOGGLES["network-policy"])
    pods = _pods(docs)
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    opened = {}
    for policy in policies:
        selector = policy["spec"]["podSelector"]["matchLabels"]
        selected = [c for c, p in pods.items() if label_subset(selector, p["metadata"]["labels"])]
        for rule in policy["spec"].get("ingress", []):
            [component] = selected
            names = {p["name"] for c in pods[component]["spec"]["containers"] for p in c["ports"]}
            for port in rule["ports"]:
                assert port["port"] in names
                opened[component] = port["port"]
        if "Egress" in policy["spec"]["policyTypes"]:
            assert sorted(selected) == ["ingress", "worker"]
            ports = [
                (p["protocol"], p["port"]) for r in policy["spec"]["egress"] for p in r["ports"]
            ]
            assert sorted(ports) == [("TCP", 53), ("TCP", 443), ("TCP", 6379), ("UDP", 53)]
    assert opened == {"ingress": "http", "worker": "metrics"}


@pytest.mark.parametrize(
    ("toggle", "secret_name", "chart_secret_has_url"),
    [
        ("default", "ol-openlines-orchestrator-secrets", True),
        ("redis-existing-secret", "redis-credentials", False),
        ("own-secret", "openlines-from-vault", None),
    ],
)
def test_redis_url_comes_from_a_secret(
    chart: Any, toggle: str, secret_name: str, chart_secret_has_url: bool | None
) -> None:
    """Every container reads REDIS_URL from a named Secret key (a missing key stops the pod
    instead of leaving it without Redis): the chart's own Secret holding redis.url, the Secret
    redis.existingSecret names, or the operator's whole Secret; never from the ConfigMap."""
    docs = render(chart, TOGGLES[toggle])
    assert "REDIS_URL" not in find(docs, "ConfigMap")["data"]
    for pod in _pods(docs).values():
        for container in pod["spec"]["containers"]:
            [env] = [e for e in container["env"] if e["name"] == "REDIS_URL"]
            assert env["valueFrom"]["secretKeyRef"] == {"name": secret_name, "key": "REDIS_URL"}
    secrets = [d for d in docs if d["kind"] == "Secret"]
    if chart_secret_has_url is None:
        assert secrets == []
    else:
        [secret] = secrets
        assert ("REDIS_URL" in secret["stringData"]) is chart_secret_has_url


def _container(docs: Docs, component: str) -> dict[str, Any]:
    [container] = _pods(docs)[component]["spec"]["containers"]
    found: dict[str, Any] = container
    return found


@pytest.mark.parametrize("toggle", ["worker-extra-env", "everything"])
def test_worker_extra_env_reaches_the_workers_only(chart: Any, toggle: str) -> None:
    """worker.extraEnvFrom and worker.extraEnv (an answerer's secret, docs/answerers.md) are
    appended to the worker container's envFrom and env, after the chart's own (which stay as
    they are); the ingress container gets neither, whether a Deployment or a StatefulSet."""
    overrides = TOGGLES[toggle]
    extra = overrides["worker"]
    default, docs = render(chart), render(chart, overrides)
    plain = render(chart, {k: v for k, v in overrides.items() if k != "worker"})
    worker, before = _container(docs, "worker"), _container(plain, "worker")
    assert extra["extraEnvFrom"] == [{"secretRef": {"name": "openlines-answerer"}}]
    assert worker["envFrom"] == before["envFrom"] + extra["extraEnvFrom"]
    assert worker["env"] == before["env"] + extra["extraEnv"]
    assert [e["name"] for e in worker["env"]] == ["REDIS_URL", "OPENAI_API_KEY"]
    ingress = _container(docs, "ingress")
    assert ingress == _container(plain, "ingress")
    assert {"secretRef": {"name": "openlines-answerer"}} not in ingress["envFrom"]
    assert "OPENAI_API_KEY" not in {e["name"] for e in ingress["env"]}
    # only the worker's pod template differs from the same values without the extra env
    changed = [d["metadata"]["name"] for d in docs if d not in plain]
    assert changed == ["ol-openlines-orchestrator-worker"]
    # and by default the worker has just the chart's own environment
    assert [e["name"] for e in _container(default, "worker")["env"]] == ["REDIS_URL"]
    assert len(_container(default, "worker")["envFrom"]) == 2
