"""The deploy artifacts (Dockerfile, docker-compose.yml, deploy/env.example) validate against their
published schemas and agree with the code and settings they deploy; deploy/k8s is checked in
test_deploy_k8s.py and test_deploy_kustomize.py, the chart in test_deploy_helm*.py."""

from __future__ import annotations

import copy
import fnmatch
import shlex
import tomllib
from typing import Any

import pytest

from orchestrator.cli import build_parser
from orchestrator.settings import Settings
from tests.unit.deploy_checks import (
    CHART,
    COMPOSE_FILE,
    DOCKERFILE,
    ENV_EXAMPLE,
    ROOT,
    compose_duration_s,
    compose_errors,
    dockerfile_stages,
    env_example_entries,
    exec_form,
    instruction_values,
    interpolation_default,
    k8s_objects,
    load_yaml,
    setting_names,
    settings_from_env,
)
from worker.settings import load_handler_factory

ORCHESTRATOR_SERVICES = ("ingress", "worker", "emulator")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(COMPOSE_FILE)
    return document


@pytest.fixture(scope="module")
def objects() -> dict[tuple[str, str], dict[str, Any]]:
    """Every object of deploy/k8s by (kind, name)."""
    return {(doc["kind"], doc["metadata"]["name"]): doc for _, doc in k8s_objects()}


# --- deploy/env.example ------------------------------------------------------------------------


def test_env_example_lists_every_setting_once_and_nothing_else() -> None:
    """A Settings field added or renamed without env.example (or the reverse) fails here."""
    names = [name for name, _, _ in env_example_entries(ENV_EXAMPLE.read_text())]
    assert sorted(set(names)) == sorted(names), "a setting appears twice"
    assert set(names) == setting_names()


def test_env_example_shows_the_real_defaults() -> None:
    """Uncommented values parse to the field defaults; commented ones are the unset-by-default."""
    entries = env_example_entries(ENV_EXAMPLE.read_text())
    shown = {name: value for name, value, commented in entries if not commented}
    parsed = settings_from_env(shown)
    for name in shown:
        field = Settings.model_fields[name.lower()]
        assert getattr(parsed, name.lower()) == field.default, name
    unset = {name for name, _, commented in entries if commented}
    assert unset == {n.upper() for n, f in Settings.model_fields.items() if f.default is None}


# --- docker-compose.yml ------------------------------------------------------------------------


def test_compose_file_validates_against_the_compose_spec(compose: dict[str, Any]) -> None:
    """The compose-spec schema accepts the file (and rejects a broken copy of it)."""
    assert compose_errors(compose) == []
    broken = copy.deepcopy(compose)
    broken["services"]["worker"]["deploy"]["replicas"] = "three"
    broken["services"]["redis"]["healthcheck"]["retires"] = 3
    assert len(compose_errors(broken)) == 2


def test_compose_redis_keeps_an_aof_fsynced_every_second(compose: dict[str, Any]) -> None:
    """Redis runs with appendonly + everysec on a named volume and has a healthcheck."""
    redis = compose["services"]["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--appendfsync everysec" in command
    volume = redis["volumes"][0].split(":")
    assert volume[1] == "/data"
    assert volume[0] in compose["volumes"]
    assert "ping" in redis["healthcheck"]["test"]


def test_compose_ingress_waits_for_redis_and_checks_healthz(compose: dict[str, Any]) -> None:
    """The ingress publishes 8080, starts after Redis is healthy, probes /healthz, keeps a spool."""
    ingress = compose["services"]["ingress"]
    assert ingress["command"] == ["ingress"]
    assert ingress["depends_on"]["redis"]["condition"] == "service_healthy"
    assert any("/healthz" in part for part in ingress["healthcheck"]["test"])
    assert ingress["ports"][0].endswith(":8080")
    spool_dir = ingress["environment"]["SPOOL_DIR"]
    assert any(v.split(":")[1] == spool_dir for v in ingress["volumes"])


def test_compose_workers_outlast_their_shutdown_grace(compose: dict[str, Any]) -> None:
    """Three worker replicas; stop_grace_period exceeds SHUTDOWN_GRACE_S (no mid-drain KILL)."""
    worker = compose["services"]["worker"]
    assert worker["deploy"]["replicas"] == 3
    grace = settings_from_env(worker["environment"]).shutdown_grace_s
    assert compose_duration_s(worker["stop_grace_period"]) > grace


def test_compose_emulator_runs_only_in_the_demo_profile(compose: dict[str, Any]) -> None:
    """The fake portal starts only with `--profile demo`; nothing else has a profile."""
    profiled = {name for name, svc in compose["services"].items() if "profiles" in svc}
    assert profiled == {"emulator"}
    assert compose["services"]["emulator"]["profiles"] == ["demo"]


def test_compose_environment_names_are_settings(compose: dict[str, Any]) -> None:
    """A misspelt variable (silently ignored by Settings) fails here; the emulator reads its own
    EMULATOR_* variables (tests/unit/test_deploy_demo.py checks those)."""
    for name in ("ingress", "worker"):
        env = compose["services"][name].get("environment", {})
        assert set(env) <= setting_names(), name


# --- the commands the artifacts run ------------------------------------------------------------


def _deployed_commands(compose: dict[str, Any]) -> list[list[str]]:
    commands = [compose["services"][name]["command"] for name in ORCHESTRATOR_SERVICES]
    for _, doc in k8s_objects():
        if doc["kind"] == "Deployment":
            commands += [c["args"] for c in doc["spec"]["template"]["spec"]["containers"]]
    stages = dockerfile_stages(DOCKERFILE.read_text())
    commands.append(exec_form(instruction_values(stages[-1], "CMD")[0]))
    return commands


def test_every_deployed_command_is_a_valid_orchestrator_invocation(compose: dict[str, Any]) -> None:
    """The `orchestrator` CLI parses every command compose, Kubernetes and the image run."""
    for argv in _deployed_commands(compose):
        args = build_parser().parse_args(argv)
        assert args.command in ("ingress", "worker", "emulator", "serve"), shlex.join(argv)


def test_deployed_worker_handler_is_importable(
    compose: dict[str, Any],
    objects: dict[Any, dict[str, Any]],
) -> None:
    """WORKER_HANDLER in compose, the ConfigMap and the chart loads the way the worker loads it."""
    compose_value = compose["services"]["worker"]["environment"]["WORKER_HANDLER"]
    paths = {
        interpolation_default(compose_value),
        objects[("ConfigMap", "openlines-config")]["data"]["WORKER_HANDLER"],
        load_yaml(CHART / "values.yaml")["config"]["WORKER_HANDLER"],
    }
    for path in paths:
        assert callable(load_handler_factory(path)), path


# --- deploy/Dockerfile and .dockerignore -------------------------------------------------------


def test_dockerfile_is_multistage_on_python_311_slim() -> None:
    """A build stage makes the wheel and venv; the runtime stage copies only the venv."""
    text = DOCKERFILE.read_text()
    stages = dockerfile_stages(text)
    assert len(stages) >= 2
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    assert all(stage[0]["value"].startswith("${PYTHON_IMAGE}") for stage in stages)
    assert any("pip wheel" in run for run in instruction_values(stages[0], "RUN"))
    assert instruction_values(stages[-1], "COPY") == ["--from=build /opt/venv /opt/venv"]


def test_dockerfile_runs_as_non_root_with_healthcheck_and_entrypoint() -> None:
    """The runtime stage drops root, health-checks /healthz, and is `orchestrator [ingress]`."""
    runtime = dockerfile_stages(DOCKERFILE.read_text())[-1]
    user = instruction_values(runtime, "USER")[-1].split(":")[0]
    assert user not in ("root", "0")
    healthcheck = instruction_values(runtime, "HEALTHCHECK")[-1]
    assert "CMD" in healthcheck
    assert "/healthz" in healthcheck
    assert exec_form(instruction_values(runtime, "ENTRYPOINT")[-1]) == ["orchestrator"]
    assert exec_form(instruction_values(runtime, "CMD")[-1]) == ["ingress"]


def test_docker_build_context_holds_every_package() -> None:
    """Each package pyproject ships is COPY'd, and .dockerignore excludes none of what it needs."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    build = dockerfile_stages(DOCKERFILE.read_text())[0]
    copied = " ".join(instruction_values(build, "COPY")).split()
    needed = ["pyproject.toml", project["project"]["readme"], *packages]
    assert set(needed) <= set(copied)
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for name in needed:
        assert not any(fnmatch.fnmatch(name, pattern) for pattern in ignored), name


def test_every_data_file_of_the_packages_reaches_the_image() -> None:
    """The image installs the wheel, not the tree: each non-Python file the packages hold (Lua
    scripts, scenarios) is covered by [tool.setuptools.package-data]."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_data: dict[str, list[str]] = project["tool"]["setuptools"]["package-data"]
    for package in ("orchestrator", "worker", "emulator"):
        for path in (ROOT / package).rglob("*"):
            if not path.is_file() or path.suffix in (".py", ".pyc", ".md"):
                continue
            if "__pycache__" in path.parts:
                continue
            # the deepest package that declares data and holds the file
            owners = [
                name
                for name in package_data
                if path.is_relative_to(ROOT.joinpath(*name.split(".")))
            ]
            owner = max(owners, key=len, default=package)
            relative = str(path.relative_to(ROOT.joinpath(*owner.split("."))))
            patterns = package_data.get(owner, [])
            assert any(fnmatch.fnmatch(relative, p) for p in patterns), f"{owner}/{relative}"
