"""The chart's values.schema.json and README: the schema (JSON Schema draft-07, which Helm applies
at install, lint and template time) declares exactly the values of values.yaml, closes every
structured object, types every setting as orchestrator/settings.py does, accepts the defaults and
refuses wrong types; the README's table lists every value with its real default."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from tests.unit.deploy_chart import (
    chart_schema,
    chart_values,
    readme_value_rows,
    schema_paths,
    value_leaves,
    values_paths,
)
from tests.unit.deploy_checks import CHART, SECRET_SETTINGS, setting_names, setting_value_schema

helm = pytest.importorskip("helm_python")

README = CHART / "README.md"
# Helm passes `global` to every chart; the schema allows it, values.yaml has no use for it.
HELM_RESERVED = {"global"}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return chart_schema()


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return chart_values()


@pytest.fixture(scope="module")
def chart() -> Iterator[Any]:
    with helm.Chart.load(str(CHART)) as loaded:
        yield loaded


def _errors(schema: dict[str, Any], document: Any) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    return ["/".join(map(str, e.absolute_path)) for e in validator.iter_errors(document)]


def test_schema_is_a_valid_draft_07_schema(schema: dict[str, Any]) -> None:
    """Helm reads draft-07: the file says so and is itself valid against the meta-schema."""
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)


def test_values_yaml_validates(schema: dict[str, Any], values: dict[str, Any], chart: Any) -> None:
    """The defaults pass the schema, as jsonschema and as Helm itself apply it."""
    assert _errors(schema, values) == []
    chart.validate_schema(values)


@pytest.mark.parametrize(
    ("path", "wrong"),
    [
        ("ingress.replicas", "two"),
        ("image.pullPolicy", "Sometimes"),
        ("expose.ingress.tls.enabled", "yes"),
        ("expose.host", "https://openlines.example.com/"),
        ("ingress.spool.persistence.size", "2 gigabytes"),
        ("config.WORKER_CONCURRENCY", "fifty"),
        ("config.B24_PLAN", "gold"),
        ("config.FETCH_ENABLED", "maybe"),
        ("config.KEY_PREFIX", 42),
        ("secret.values.B24_CLIENT_SECRET", 42),
        ("redis.url", "http://redis:6379"),
        ("autoscaling.keda.prometheusAddress", "prometheus:9090"),
        ("metrics.serviceMonitor.interval", "half a minute"),
        ("networkPolicy.portal.ports", [70000]),
        ("worker.extraEnv", [{"value": "an EnvVar without a name"}]),
        ("worker.extraEnvFrom", {"secretRef": {"name": "not a list"}}),
    ],
)
def test_schema_refuses_a_wrong_value(
    schema: dict[str, Any], values: dict[str, Any], chart: Any, path: str, wrong: Any
) -> None:
    """A value of the wrong type or outside its choices is refused, at its path, by jsonschema
    and by Helm (which would then refuse the install)."""
    broken = copy.deepcopy(values)
    *parents, leaf = path.split(".")
    node = broken
    for key in parents:
        node = node[key]
    node[leaf] = wrong
    errors = _errors(schema, broken)
    assert errors
    assert all(error.startswith(path.replace(".", "/")) for error in errors)
    with pytest.raises(helm.HelmError, match=leaf):
        chart.validate_schema(broken)


def test_schema_refuses_an_unknown_value(schema: dict[str, Any], values: dict[str, Any]) -> None:
    """A misspelt value anywhere (a setting in config included) is refused, not ignored."""
    for path in ("config.WORKER_CONCURENCY", "ingress.spool.persistance", "exposee"):
        broken = copy.deepcopy(values)
        *parents, leaf = path.split(".")
        node = broken
        for key in parents:
            node = node[key]
        node[leaf] = "x"
        assert _errors(schema, broken) == ["/".join(parents)], path


def test_schema_declares_exactly_the_values(schema: dict[str, Any], values: dict[str, Any]) -> None:
    """Every key of values.yaml has a schema, and the schema declares nothing values.yaml lacks
    (so this README table, built on both, cannot list a value that does not exist)."""
    declared = set(schema_paths(schema)) - HELM_RESERVED
    assert declared == set(values_paths(values)) - _inside_free_form(schema, values)


def _inside_free_form(schema: dict[str, Any], values: dict[str, Any]) -> set[str]:
    """Keys below a value the schema takes whole (annotations, securityContext, ...)."""
    leaves = value_leaves(values, schema)
    return {p for p in values_paths(values) if any(p.startswith(f"{leaf}.") for leaf in leaves)}


def test_every_structured_object_is_closed(schema: dict[str, Any]) -> None:
    """Each object whose properties the schema lists refuses others (additionalProperties
    false): otherwise a typo below it would pass."""
    open_objects = []

    def walk(node: dict[str, Any], path: str) -> None:
        if "properties" in node:
            if node.get("additionalProperties") is not False:
                open_objects.append(path or "(root)")
            for key, child in node["properties"].items():
                walk(child, f"{path}.{key}" if path else key)

    walk(schema, "")
    assert open_objects == []


def test_settings_are_typed_as_the_code_types_them(schema: dict[str, Any]) -> None:
    """config and secret.values declare exactly the Settings fields of their kind (non-secret,
    secret), each typed from its annotation (a number may be given as the string the ConfigMap
    holds; null leaves it unset)."""
    config = schema["properties"]["config"]["properties"]
    secret = schema["properties"]["secret"]["properties"]["values"]["properties"]
    non_secret = setting_names() - SECRET_SETTINGS
    for declared, names in ((config, non_secret), (secret, SECRET_SETTINGS - {"REDIS_URL"})):
        expected = {name: setting_value_schema(name) for name in sorted(names)}
        wrong = {n: s for n, s in expected.items() if declared.get(n) != s}
        # the message is the JSON to paste into values.schema.json for a new or changed setting
        assert not wrong, json.dumps(wrong, indent=2)
        assert set(declared) == set(expected), "declared but not a setting"


def test_readme_lists_every_value_with_its_default(values: dict[str, Any]) -> None:
    """The README's table has one row per leaf of values.yaml (descending where the schema
    lists properties), in any order, none twice, none that does not exist, and each row's
    default is the value's JSON."""
    schema, rows = chart_schema(), _readme_rows()
    leaves = value_leaves(values, schema)
    listed = [path for path, _ in rows]
    assert sorted(set(listed)) == sorted(listed), "a value is listed twice"
    assert set(listed) == set(leaves)
    for path, default in rows:
        node: Any = values
        for key in path.split("."):
            node = node[key]
        assert default == f"`{json.dumps(node)}`", path


def _readme_rows() -> list[tuple[str, str]]:
    text = README.read_text()
    rows = []
    for line in text.splitlines():
        if readme_value_rows(line):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            rows.append((readme_value_rows(line)[0], cells[1]))
    return rows


def test_readme_check_reports_a_missing_and_a_stale_row(values: dict[str, Any]) -> None:
    """The table check is able to fail: a row dropped or one for a value that is gone."""
    leaves = set(value_leaves(values, chart_schema()))
    text = README.read_text()
    dropped = text.replace("| `redis.existingSecretKey` |", "| redis.existingSecretKey |")
    assert set(readme_value_rows(dropped)) == leaves - {"redis.existingSecretKey"}
    stale = text + '\n| `ingress.spoolSizeLimit` | `"1Gi"` | gone |\n'
    assert set(readme_value_rows(stale)) - leaves == {"ingress.spoolSizeLimit"}
