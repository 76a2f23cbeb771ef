"""The Helm chart: its metadata and values are consistent with the code, its templates reference
only values that exist, and Helm's own renderer (helm-python-sdk, Helm's Go SDK in process: no
helm binary) turns every combination of its switches into objects that validate strictly, or
refuses the values with a message that names the problem."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.settings import Settings
from tests.unit.deploy_chart import PROMETHEUS, TOGGLES, chart_values, render
from tests.unit.deploy_checks import (
    CHART,
    DEPLOY_OVERRIDES,
    K8S,
    K8S_VERSIONS,
    ROOT,
    SECRET_SETTINGS,
    load_yaml,
    missing_values_paths,
    setting_names,
    settings_from_env,
    validate_k8s_object,
)
from tests.unit.deploy_kustomize import build

helm = pytest.importorskip("helm_python")


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return chart_values()


@pytest.fixture(scope="module")
def chart() -> Iterator[Any]:
    with helm.Chart.load(str(CHART)) as loaded:
        yield loaded


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


def test_chart_declares_no_dependency() -> None:
    """Redis is brought by the operator (README.md, "Redis"): `helm install` and `helm template`
    refuse a chart whose declared dependency is missing from charts/, whatever its condition,
    and fetching one needs the network; so nothing is declared, and nothing is vendored."""
    assert "dependencies" not in load_yaml(CHART / "Chart.yaml")
    assert not (CHART / "charts").exists()
    assert not (CHART / "Chart.lock").exists()


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


def test_values_set_every_setting_in_its_place(values: dict[str, Any]) -> None:
    """Every Settings field has its value: the secrets in secret.values (REDIS_URL as redis.url),
    every other one in config (null: unset), none twice; together they are valid Settings."""
    config, secret = values["config"], values["secret"]["values"]
    assert set(config) | set(secret) | {"REDIS_URL"} == setting_names()
    assert set(secret) == SECRET_SETTINGS - {"REDIS_URL"}
    assert not set(config) & SECRET_SETTINGS
    env = {k: str(v) for k, v in {**config, **secret}.items() if v is not None}
    parsed = settings_from_env({**env, "REDIS_URL": values["redis"]["url"]})
    assert values["worker"]["terminationGracePeriodSeconds"] > parsed.shutdown_grace_s


def test_values_show_the_code_defaults(values: dict[str, Any]) -> None:
    """A setting in config is the code's default, unless it is one a deployment must set
    differently (DEPLOY_OVERRIDES): a default changed in orchestrator/settings.py fails here."""
    settings = {**values["config"], **values["secret"]["values"]}
    parsed = settings_from_env({k: str(v) for k, v in settings.items() if v is not None})
    for name, value in values["config"].items():
        field = Settings.model_fields[name.lower()]
        if name not in DEPLOY_OVERRIDES:
            expected = None if value is None else getattr(parsed, name.lower())
            assert expected == field.default, name


def test_values_hold_no_credentials(values: dict[str, Any], chart: Any) -> None:
    """The portal's credentials and identity are unset by default (no placeholder that would let
    pods start against a portal that does not exist); NOTES.txt says so until a road is set."""
    portal = ("B24_CLIENT_ID", "B24_MEMBER_ID")
    assert all(values["config"][name] is None for name in portal)
    assert all(value is None for value in values["secret"]["values"].values())
    notes = chart.render(None, name="ol", namespace="test")[
        "openlines-orchestrator/templates/NOTES.txt"
    ]
    assert "no portal is configured" in notes
    oauth = {
        "config": {"B24_CLIENT_ID": "local.1"},
        "secret": {"values": {"B24_CLIENT_SECRET": "s"}},
    }
    notes = chart.render(oauth, name="ol", namespace="test")[
        "openlines-orchestrator/templates/NOTES.txt"
    ]
    assert "no portal is configured" not in notes


@pytest.mark.parametrize("toggle", sorted(TOGGLES))
def test_chart_lints_without_errors(toggle: str) -> None:
    """`helm lint` (Helm's own linter, schema included) finds nothing worse than advice, with
    the default values and with each switch on."""
    report = helm.lint(str(CHART), TOGGLES[toggle] or None, kube_version=f"v{K8S_VERSIONS[0]}")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("toggle", sorted(TOGGLES))
def test_every_switch_renders_valid_objects(chart: Any, toggle: str, version: str) -> None:
    """Each object validates strictly (custom resources against deploy_crds.py), names stay
    within 63 characters, nothing is pinned to a namespace, and every pod runs as our
    ServiceAccount without an API token."""
    docs = render(chart, TOGGLES[toggle])
    for doc in docs:
        validate_k8s_object(doc, version)
        assert "namespace" not in doc["metadata"]
        assert len(doc["metadata"]["name"]) <= 63
        pod = doc.get("spec", {}).get("template", {}).get("spec")
        if pod is not None:
            assert pod["automountServiceAccountToken"] is False
            assert pod["serviceAccountName"] == "ol-openlines-orchestrator"


def test_default_render_has_the_default_kustomization_kinds(chart: Any) -> None:
    """With default values the chart renders the kinds `kubectl apply -k deploy/k8s` applies:
    Ingress with TLS, HPA, no custom resource, so it installs on a cluster without CRDs."""
    kinds = sorted(doc["kind"] for doc in render(chart))
    assert kinds == sorted(obj["kind"] for obj in build(K8S))
    assert "HorizontalPodAutoscaler" in kinds
    assert not {"ScaledObject", "HTTPRoute", "ServiceMonitor"} & set(kinds)


def test_every_toggle_changes_the_render(chart: Any) -> None:
    """No switch is dead: each one renders something the default does not."""
    default = render(chart)
    for name, overrides in TOGGLES.items():
        if name != "default":
            assert render(chart, overrides) != default, name


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"autoscaling": {"keda": {"enabled": True, "prometheusAddress": PROMETHEUS}}},
            "at most one",
        ),
        ({"autoscaling": {"hpa": {"enabled": False}, "keda": {"enabled": True}}}, "prometheus"),
        ({"worker": {"terminationGracePeriodSeconds": 10}}, "SHUTDOWN_GRACE_S"),
        ({"secret": {"create": False}}, "existingSecret"),
        ({"redis": {"url": ""}}, "redis.url"),
        ({"expose": {"host": ""}}, "expose.host"),
        ({"config": {"WORKER_CONCURENCY": "5"}}, "WORKER_CONCURENCY"),
        ({"config": {"B24_PLAN": "gold"}}, "B24_PLAN"),
        ({"config": {"WORKER_CONCURRENCY": "fifty"}}, "WORKER_CONCURRENCY"),
        ({"ingress": {"replicas": "two"}}, "replicas"),
        ({"secret": {"values": {"REDIS_URL": "redis://x:6379/0"}}}, "REDIS_URL"),
        ({"networkPolicy": {"redis": {"ports": []}}}, "ports"),
    ],
    ids=[
        "both-autoscalers",
        "keda-without-prometheus",
        "grace-too-short",
        "no-secret",
        "no-redis",
        "no-host",
        "unknown-setting",
        "setting-off-its-choices",
        "setting-of-the-wrong-type",
        "value-of-the-wrong-type",
        "redis-url-among-the-secrets",
        "egress-to-no-port",
    ],
)
def test_chart_refuses_unsafe_values(chart: Any, overrides: dict[str, Any], message: str) -> None:
    """Two autoscalers, KEDA without its Prometheus, a termination grace not above
    SHUTDOWN_GRACE_S, no Secret, no Redis, no public host, a misspelt or mistyped value (the
    schema): no render, and the message names the value."""
    with pytest.raises(helm.HelmError, match=message):
        chart.render(overrides, name="ol", namespace="test")
