"""The workers' metrics endpoint is wired the same way everywhere: the port in the settings of
compose, the ConfigMap and the chart is the port the container exposes, probes and is scraped on,
and every deployment binds it to all interfaces (the setting's default is loopback)."""

from __future__ import annotations

from typing import Any

from tests.unit.deploy_checks import (
    COMPOSE_FILE,
    DOCKERFILE,
    ROOT,
    dockerfile_stages,
    instruction_values,
    k8s_objects,
    load_yaml,
    settings_from_env,
)

VALUES = ROOT / "deploy" / "helm" / "openlines-orchestrator" / "values.yaml"


def _k8s() -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for _, d in k8s_objects()}


def test_compose_worker_healthcheck_probes_its_metrics_port() -> None:
    """Compose sets WORKER_METRICS_PORT and the worker healthcheck fetches /healthz on it."""
    worker = load_yaml(COMPOSE_FILE)["services"]["worker"]
    port = settings_from_env(worker["environment"]).worker_metrics_port
    assert port > 0
    assert settings_from_env(worker["environment"]).worker_metrics_host == "0.0.0.0"
    assert any(f"127.0.0.1:{port}/healthz" in part for part in worker["healthcheck"]["test"])


def test_k8s_worker_exposes_probes_and_annotates_the_configured_port() -> None:
    """The worker container's `metrics` port is the ConfigMap's WORKER_METRICS_PORT; liveness
    gets /healthz on it and the scrape annotation names it."""
    objects = _k8s()
    config = settings_from_env(objects[("ConfigMap", "openlines-config")]["data"])
    port = config.worker_metrics_port
    assert config.worker_metrics_host == "0.0.0.0"
    template = objects[("Deployment", "openlines-worker")]["spec"]["template"]
    [container] = template["spec"]["containers"]
    assert {"name": "metrics", "containerPort": port, "protocol": "TCP"} in container["ports"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert template["metadata"]["annotations"]["prometheus.io/port"] == str(port)


def test_image_binds_the_worker_endpoint_to_all_interfaces() -> None:
    """The runtime stage sets WORKER_METRICS_HOST=0.0.0.0, so a bare `docker run IMAGE worker`
    can be scraped too."""
    runtime = dockerfile_stages(DOCKERFILE.read_text())[-1]
    assert "WORKER_METRICS_HOST=0.0.0.0" in " ".join(instruction_values(runtime, "ENV")).split()


def test_chart_scrapes_the_worker_on_the_configured_port() -> None:
    """The chart's default WORKER_METRICS_PORT and the worker pods' scrape annotation agree."""
    values = load_yaml(VALUES)
    config = settings_from_env(values["config"])
    port = config.worker_metrics_port
    assert port > 0
    assert config.worker_metrics_host == "0.0.0.0"
    assert values["worker"]["podAnnotations"]["prometheus.io/port"] == str(port)
    assert values["worker"]["livenessPath"] == "/healthz"
