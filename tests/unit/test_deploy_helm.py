"""The Helm chart: its metadata and values are consistent, its templates reference only values that
exist, and Helm's own renderer (helm-python-sdk, Helm's Go SDK in-process: no helm binary) turns
it into objects that validate like the plain manifests."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.unit.deploy_checks import (
    CHART,
    K8S_VERSIONS,
    ROOT,
    k8s_objects,
    load_documents,
    load_yaml,
    missing_values_paths,
    setting_names,
    settings_from_env,
    validate_k8s_object,
)

helm = pytest.importorskip("helm_python")


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(CHART / "values.yaml")
    return document


@pytest.fixture(scope="module")
def chart() -> Iterator[Any]:
    with helm.Chart.load(str(CHART)) as loaded:
        yield loaded


def _render(chart: Any, overrides: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    rendered: dict[str, str] = chart.render(overrides, name="ol", namespace="test")
    return [
        doc
        for path, text in sorted(rendered.items())
        if path.endswith(".yaml")
        for doc in load_documents(text)
    ]


def _kinds(docs: list[dict[str, Any]]) -> list[str]:
    return sorted(doc["kind"] for doc in docs)


def _worker(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-worker")
    )


def _templates() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((CHART / "templates").iterdir())}


def test_chart_yaml_has_the_required_keys() -> None:
    """apiVersion v2, the directory's name, a semver version, the package version as appVersion."""
    meta = load_yaml(CHART / "Chart.yaml")
    assert meta["apiVersion"] == "v2"
    assert meta["name"] == CHART.name
    assert re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?", meta["version"])
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["appVersion"] == project["version"]


def test_templates_reference_only_values_that_exist(values: dict[str, Any]) -> None:
    """Every `.Values.a.b` path in the templates resolves in values.yaml."""
    assert missing_values_paths(_templates(), values) == []


def test_values_reference_check_reports_a_missing_path(values: dict[str, Any]) -> None:
    """The reference check is able to fail: an unknown leaf and a path through a scalar."""
    fake = {
        "t.yaml": "{{ .Values.worker.nope }} {{ $.Values.image.tag.x }} {{ .Values.image.tag }}"
    }
    assert missing_values_paths(fake, values) == [
        "t.yaml: .Values.worker.nope",
        "t.yaml: .Values.image.tag.x",
    ]


def test_values_config_and_secret_are_valid_settings(values: dict[str, Any]) -> None:
    """config and secret.values are valid Settings; the grace fits; the secrets are examples."""
    config, secret = values["config"], values["secret"]["values"]
    assert set(config) | set(secret) <= setting_names()
    parsed = settings_from_env({k: str(v) for k, v in {**config, **secret}.items()})
    assert values["worker"]["terminationGracePeriodSeconds"] > parsed.shutdown_grace_s
    assert all("EXAMPLE" in value for value in secret.values())


def test_chart_lints_without_errors() -> None:
    """`helm lint` (Helm's own linter) finds nothing worse than advice."""
    report = helm.lint(str(CHART), kube_version=f"v{K8S_VERSIONS[0]}")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_rendered_chart_validates_and_matches_the_plain_manifests(chart: Any, version: str) -> None:
    """With default values the chart renders the same kinds of objects as deploy/k8s (KEDA
    flavour), each validating strictly, none pinned to a namespace."""
    docs = _render(chart)
    for doc in docs:
        validate_k8s_object(doc, version)
        assert "namespace" not in doc["metadata"]
    plain = [doc for path, doc in k8s_objects() if path.parent.name != "hpa"]
    assert _kinds(docs) == _kinds(plain)


def test_rendered_hpa_alternative_replaces_keda(chart: Any) -> None:
    """hpa.enabled renders an autoscaling/v2 HPA instead of the ScaledObject; the worker
    Deployment leaves its replica count to it."""
    docs = _render(chart, {"autoscaling": {"keda": {"enabled": False}, "hpa": {"enabled": True}}})
    kinds = _kinds(docs)
    assert "HorizontalPodAutoscaler" in kinds
    assert "ScaledObject" not in kinds
    for doc in docs:
        validate_k8s_object(doc, K8S_VERSIONS[-1])
    worker = _worker(docs)
    assert "replicas" not in worker["spec"]


def test_rendered_chart_without_autoscaling_fixes_the_worker_count(chart: Any) -> None:
    """With both autoscalers off the worker Deployment carries worker.replicas."""
    docs = _render(chart, {"autoscaling": {"keda": {"enabled": False}}, "worker": {"replicas": 5}})
    worker = _worker(docs)
    assert worker["spec"]["replicas"] == 5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"autoscaling": {"hpa": {"enabled": True}}}, "at most one"),
        ({"worker": {"terminationGracePeriodSeconds": 10}}, "SHUTDOWN_GRACE_S"),
        ({"secret": {"create": False}}, "existingSecret"),
    ],
    ids=["both-autoscalers", "grace-too-short", "no-secret"],
)
def test_chart_refuses_unsafe_values(chart: Any, overrides: dict[str, Any], message: str) -> None:
    """Two autoscalers, a termination grace not above SHUTDOWN_GRACE_S, or no Secret: no render."""
    with pytest.raises(helm.HelmError, match=message):
        chart.render(overrides, name="ol", namespace="test")
