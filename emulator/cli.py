"""The options of `orchestrator emulator` and the EmulatorConfig they build.

argparse only at import: `orchestrator.cli` imports this module to build its parser for every
command, so the emulator itself (aiohttp and all) is imported only when the command runs.

Behind another host name (a compose service, a container port mapping) the address the emulator
binds is not the one its clients reach, so `--public-url` names the base of every URL it hands out.
Its credentials are random per start unless fixed here: a deployment whose orchestrator must be
configured before the emulator starts fixes them, through the options or the EMULATOR_* variables
(named after the orchestrator's B24_* settings, so one .env can feed both sides).
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from emulator.runtime import EmulatorConfig

__all__ = ["ENV_VARS", "add_arguments", "config_from_args", "public_url", "webhook_code"]

# option dest -> the environment variable that supplies it when the option is not given
ENV_VARS = {
    "public_url": "EMULATOR_PUBLIC_URL",
    "member_id": "EMULATOR_MEMBER_ID",
    "application_token": "EMULATOR_APPLICATION_TOKEN",
    "client_id": "EMULATOR_CLIENT_ID",
    "client_secret": "EMULATOR_CLIENT_SECRET",
    "webhook_code": "EMULATOR_WEBHOOK_CODE",
}

_CODE = re.compile(r"[A-Za-z0-9_-]+")


def public_url(value: str) -> str:
    """`http(s)://host[:port]`, without a trailing slash: every route hangs off the root."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"not an http(s) URL: {value!r}")
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise argparse.ArgumentTypeError(f"a base URL has no path or query: {value!r}")
    return f"{parts.scheme}://{parts.netloc}"


def webhook_code(value: str) -> str:
    """The secret path segment of the inbound webhook URL `/rest/<user>/<code>/`."""
    if not _CODE.fullmatch(value):
        raise argparse.ArgumentTypeError("a webhook code is letters, digits, '_' or '-'")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind")
    p.add_argument("--port", type=int, default=8090)
    p.add_argument("--plan", choices=["standard", "enterprise"], default="standard")
    p.add_argument(
        "--event-url",
        default=None,
        help="where the seeded bot's handlers and Open Lines events are POSTed",
    )
    p.add_argument("--token-ttl", type=float, default=3600.0, help="access token lifetime, s")
    p.add_argument(
        "--public-url",
        type=public_url,
        help="base of every URL the emulator hands out (client_endpoint, OAuth, webhook), "
        "e.g. http://emulator:8090; default http://HOST:PORT [EMULATOR_PUBLIC_URL]",
    )
    fixed = p.add_argument_group(
        "fixed credentials", "random per start unless given (the orchestrator's B24_* twins)"
    )
    fixed.add_argument("--member-id", help="the portal's member_id [EMULATOR_MEMBER_ID]")
    fixed.add_argument(
        "--application-token",
        help="the token every event carries [EMULATOR_APPLICATION_TOKEN]",
    )
    fixed.add_argument("--client-id", help="the installed app's client_id [EMULATOR_CLIENT_ID]")
    fixed.add_argument(
        "--client-secret", help="the installed app's client_secret [EMULATOR_CLIENT_SECRET]"
    )
    fixed.add_argument(
        "--webhook-code",
        type=webhook_code,
        help="the admin's inbound webhook secret [EMULATOR_WEBHOOK_CODE]",
    )


def _from_env(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, str | None]:
    """Each credential option, else its variable; an empty variable counts as unset (compose
    writes `${B24_MEMBER_ID:-}` as "" when .env does not set it)."""
    checks = {"public_url": public_url, "webhook_code": webhook_code}
    values: dict[str, str | None] = {}
    for dest, name in ENV_VARS.items():
        value = getattr(args, dest, None)
        if value is None and environ.get(name, "").strip():
            raw = environ[name].strip()
            try:
                value = checks[dest](raw) if dest in checks else raw
            except argparse.ArgumentTypeError as err:
                raise SystemExit(f"orchestrator emulator: {name}: {err}") from None
        values[dest] = value
    return values


def config_from_args(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> EmulatorConfig:
    """The config the command line (then the EMULATOR_* variables) describes."""
    from emulator.runtime import EmulatorConfig

    given = _from_env(args, os.environ if environ is None else environ)
    return EmulatorConfig(
        plan=args.plan,
        event_url=args.event_url,
        token_ttl_s=args.token_ttl,
        host=args.host,
        port=args.port,
        public_url=given["public_url"],
        member_id=given["member_id"],
        application_token=given["application_token"],
        client_id=given["client_id"],
        client_secret=given["client_secret"],
        webhook_code=given["webhook_code"],
    )
