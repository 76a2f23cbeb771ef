"""The `demo` profile of docker-compose.yml is wired into one working whole: the URLs the emulator
hands out name compose services, and the portal's credentials reach the emulator and the
orchestrator from the same variables (deploy/demo.env), so they agree before either starts.

No Docker engine runs here: compose's variable interpolation is replayed on the file with
deploy/demo.env as the environment, then each side's configuration is built the way its process
builds it (the emulator's options and EMULATOR_* variables, the orchestrator's Settings)."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import pytest

from emulator.cli import ENV_VARS, config_from_args
from emulator.runtime import EmulatorConfig
from orchestrator.cli import build_parser
from orchestrator.settings import Settings
from tests.unit.deploy_checks import (
    COMPOSE_FILE,
    DEPLOY,
    load_yaml,
    setting_names,
    settings_from_env,
)

DEMO_ENV = DEPLOY / "demo.env"
# What the emulator and the orchestrator must agree on: EmulatorConfig field -> Settings field.
SHARED = {
    "member_id": "b24_member_id",
    "application_token": "b24_application_token",
    "client_id": "b24_client_id",
    "client_secret": "b24_client_secret",
}
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(COMPOSE_FILE)
    return document


@pytest.fixture(scope="module")
def demo_env() -> dict[str, str]:
    return env_file_values(DEMO_ENV.read_text(encoding="utf-8"))


def env_file_values(text: str) -> dict[str, str]:
    """`NAME=value` lines of an env file (comments and blank lines skipped)."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR-default}` over `env`."""

    def one(match: re.Match[str]) -> str:
        name, op, default = match["name"], match["op"], match["default"] or ""
        if op == ":-" and not env.get(name):
            return default
        if op == "-" and name not in env:
            return default
        return env.get(name, "")

    return _VARIABLE.sub(one, value)


def referenced_variable(value: str) -> str | None:
    """The one variable a value is made of (`${B24_MEMBER_ID:-}`), if it is just that."""
    match = _VARIABLE.fullmatch(value)
    return match["name"] if match else None


def emulator_config(compose: Mapping[str, Any], env: Mapping[str, str]) -> EmulatorConfig:
    """The emulator's config as its container builds it: the command, then its environment
    (.env through env_file, then `environment:` interpolated over `env`, which wins)."""
    service = compose["services"]["emulator"]
    environ = {**env, **{k: interpolate(v, env) for k, v in service["environment"].items()}}
    args = build_parser().parse_args(service["command"])
    return config_from_args(args, environ)


def orchestrator_settings(
    compose: Mapping[str, Any], name: str, env: Mapping[str, str]
) -> Settings:
    """A service's Settings: .env through env_file, then its `environment:` (which wins)."""
    service = compose["services"][name]
    assert ".env" in [e["path"] if isinstance(e, dict) else e for e in service["env_file"]], name
    own = {k: interpolate(str(v), env) for k, v in service.get("environment", {}).items()}
    return settings_from_env({**env, **own})


def demo_mismatches(compose: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """Every way the emulator and the orchestrator services would disagree about the portal."""
    problems = []
    config = emulator_config(compose, env)
    for service in ("ingress", "worker"):
        settings = orchestrator_settings(compose, service, env)
        for ours, theirs in SHARED.items():
            if getattr(config, ours) is None:
                problems.append(f"emulator: {ours} is not fixed (random per start)")
            elif getattr(config, ours) != getattr(settings, theirs):
                problems.append(f"{service}: {theirs.upper()} differs from the emulator's {ours}")
        token_url = f"{config.public_url}/oauth/token/" if config.public_url else None
        if settings.b24_oauth_url != token_url:
            problems.append(f"{service}: B24_OAUTH_URL is not the emulator's token endpoint")
    return problems


# --- deploy/demo.env ---------------------------------------------------------------------------


def test_demo_env_holds_only_valid_settings(demo_env: dict[str, str]) -> None:
    """Every line is a setting (a misspelt one would be silently ignored) and they validate."""
    assert demo_env, "deploy/demo.env sets nothing"
    assert set(demo_env) <= setting_names()
    settings = settings_from_env(demo_env)
    for field in SHARED.values():
        assert getattr(settings, field), field
    assert not settings.b24_webhook_url, "the demo portal is an OAuth app, registered by install"


# --- the emulator service ----------------------------------------------------------------------


def test_emulator_environment_names_are_its_variables(compose: dict[str, Any]) -> None:
    """A misspelt EMULATOR_* variable (silently ignored) fails here."""
    assert set(compose["services"]["emulator"]["environment"]) <= set(ENV_VARS.values())


def test_emulator_hands_out_urls_of_its_compose_service(
    compose: dict[str, Any], demo_env: dict[str, str]
) -> None:
    """The public URL names the emulator's service and container port (not the bind address);
    its events go to the ingress's service and port."""
    config = emulator_config(compose, demo_env)
    assert config.host == "0.0.0.0"
    assert config.public_url is not None
    public = urlsplit(config.public_url)
    assert public.hostname in compose["services"]
    assert public.hostname == "emulator"
    assert public.port == config.port
    assert any(str(p).endswith(f":{config.port}") for p in compose["services"]["emulator"]["ports"])
    assert config.event_url is not None
    event = urlsplit(config.event_url)
    assert event.hostname == "ingress"
    ingress = orchestrator_settings(compose, "ingress", demo_env)
    assert event.port == ingress.ingress_port
    assert event.path == "/b24/events"


def test_emulator_waits_for_the_ingress(compose: dict[str, Any]) -> None:
    """Bitrix24 never re-sends an event: ONAPPINSTALL goes out only once the ingress answers."""
    depends = compose["services"]["emulator"]["depends_on"]
    assert depends["ingress"]["condition"] == "service_healthy"


# --- both sides --------------------------------------------------------------------------------


def test_emulator_credentials_come_from_the_orchestrators_variables(
    compose: dict[str, Any],
) -> None:
    """Each EMULATOR_* credential is the B24_* setting of the same name, nothing else."""
    environment = compose["services"]["emulator"]["environment"]
    for ours, theirs in SHARED.items():
        assert referenced_variable(environment[ENV_VARS[ours]]) == theirs.upper(), ours


def test_ingress_and_workers_keep_the_portal_settings_of_dotenv(compose: dict[str, Any]) -> None:
    """The credentials reach the ingress and workers from .env only: an `environment:` entry
    would win over it and split the two sides."""
    portal = {name.upper() for name in (*SHARED.values(), "b24_oauth_url")}
    for service in ("ingress", "worker"):
        assert not portal & set(compose["services"][service].get("environment", {})), service


def test_demo_sides_agree_on_the_portal(compose: dict[str, Any], demo_env: dict[str, str]) -> None:
    """With deploy/demo.env as .env, the emulator's fixed credentials are the workers' and the
    ingress's, and their OAuth endpoint is the emulator's."""
    assert demo_mismatches(compose, demo_env) == []


def test_demo_mismatches_are_caught(compose: dict[str, Any], demo_env: dict[str, str]) -> None:
    """The check above fails on a crossed variable, a missing .env value and a wrong token URL."""
    crossed = copy.deepcopy(compose)
    crossed["services"]["emulator"]["environment"]["EMULATOR_CLIENT_SECRET"] = "${B24_CLIENT_ID:-}"
    assert demo_mismatches(crossed, demo_env) == [
        "ingress: B24_CLIENT_SECRET differs from the emulator's client_secret",
        "worker: B24_CLIENT_SECRET differs from the emulator's client_secret",
    ]
    without = {k: v for k, v in demo_env.items() if k != "B24_MEMBER_ID"}
    assert "emulator: member_id is not fixed (random per start)" in demo_mismatches(
        compose, without
    )
    elsewhere = {**demo_env, "B24_OAUTH_URL": "https://oauth.bitrix.info/oauth/token/"}
    assert "worker: B24_OAUTH_URL is not the emulator's token endpoint" in demo_mismatches(
        compose, elsewhere
    )


def test_interpolation_follows_compose() -> None:
    """The interpolation replayed above: `:-` also covers an empty value, `-` only an unset one."""
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET:-d}/${EMPTY:-d}/${UNSET:-d}", env) == "x/d/d"
    assert interpolate("${EMPTY-d}/${UNSET-d}/${UNSET}", env) == "/d/"
