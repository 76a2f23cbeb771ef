"""The emulator's aiohttp application, the in-process harness `run_emulator` and the standalone
`orchestrator emulator` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from aiohttp import web

from emulator.control import add_control_routes
from emulator.control_offline import add_offline_control_routes
from emulator.dispatch import EMULATOR, handle_rest
from emulator.oauth import OAuthError, token_answer
from emulator.runtime import Emulator, EmulatorConfig, PortalRuntime
from emulator.transport import json_response, read_params

__all__ = ["EmulatorConfig", "RunningEmulator", "build_app", "cli_main", "run_emulator"]

log = structlog.get_logger(__name__)


async def handle_token(request: web.Request) -> web.Response:
    """`GET|POST /oauth/token/`: authorization_code and refresh_token grants."""
    emu = request.app[EMULATOR]
    params = await read_params(request)
    runtime = emu.for_grant(params)
    try:
        if runtime is None:
            raise OAuthError("invalid_client", "Invalid client credentials", 401)
        pair = runtime.tokens.grant(params)
    except OAuthError as err:
        return json_response({"error": err.code, "error_description": err.description}, err.status)
    host = request.host or emu.base_url.split("//", 1)[-1]
    return json_response(
        token_answer(
            runtime.tokens,
            pair,
            base_url=emu.base_url,
            member_id=runtime.identity.member_id,
            oauth_domain=host,
        )
    )


def build_app(emu: Emulator) -> web.Application:
    """The REST surface, the OAuth token endpoint and the control API over one Emulator."""
    app = web.Application()
    app[EMULATOR] = emu
    app.router.add_route("*", "/rest/{tail:.*}", handle_rest)
    app.router.add_route("GET", "/oauth/token/", handle_token)
    app.router.add_route("POST", "/oauth/token/", handle_token)
    app.router.add_route("GET", "/oauth/token", handle_token)
    app.router.add_route("POST", "/oauth/token", handle_token)
    add_control_routes(app)
    add_offline_control_routes(app)
    return app


async def _tick_forever(emu: Emulator) -> None:
    """Fire the portals' due timers in real time, as the portal's agents would."""
    while True:
        await asyncio.sleep(emu.config.tick_interval_s)
        for runtime in emu.runtimes:
            try:
                runtime.portal.tick()
            except Exception:
                log.exception("emulator_tick_failed", member_id=runtime.identity.member_id)


class RunningEmulator:
    """A started emulator: its base URL, its portals and the first portal's credentials."""

    def __init__(self, emu: Emulator) -> None:
        self.emulator = emu
        self.url = emu.base_url  # the public URL (config.public_url or the bound address)
        self.listen_url = emu.listen_url  # where the server actually listens
        self.config = emu.config

    @property
    def portals(self) -> list[PortalRuntime]:
        return self.emulator.runtimes

    @property
    def credentials(self) -> dict[str, Any]:
        """The first portal's credentials, as `GET /_emulator/credentials` returns them."""
        return self.portals[0].credentials(self.url)

    async def settle(self) -> None:
        """Wait until every event raised so far has been delivered (or failed)."""
        await self.emulator.delivery.settle()

    def deliveries(self, member_id: str | None = None) -> list[dict[str, Any]]:
        return self.emulator.delivery.log(member_id)


@asynccontextmanager
async def run_emulator(config: EmulatorConfig | None = None) -> AsyncIterator[RunningEmulator]:
    """Serve the emulator on config.host:config.port (0 = a free port) until the block exits."""
    config = config or EmulatorConfig()
    emu = Emulator(config)
    # Cancel a handler when its client hangs up, and never wait long for held requests.
    runner = web.AppRunner(
        build_app(emu), handler_cancellation=True, shutdown_timeout=1.0, access_log=None
    )
    await runner.setup()
    tick: asyncio.Task[None] | None = None
    try:
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        port = runner.addresses[0][1]
        emu.listen_url = f"http://{config.host}:{port}"
        # Every URL handed out (events, OAuth answers, credentials) starts here.
        emu.base_url = (config.public_url or emu.listen_url).rstrip("/")
        await emu.delivery.start()
        emu.add_portals(config.portals)
        if config.event_url:
            for runtime in emu.runtimes:
                emu.delivery.enqueue(
                    runtime.identity.member_id,
                    config.event_url,
                    runtime.install_payload(emu.base_url),
                )
        tick = asyncio.create_task(_tick_forever(emu), name="emulator-tick")
        yield RunningEmulator(emu)
    finally:
        emu.closing.set()
        if tick is not None:
            tick.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tick
        await emu.delivery.close()
        await runner.cleanup()


async def _serve(config: EmulatorConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with run_emulator(config) as emu:
            announced = {"url": emu.url, "listen": emu.listen_url, **emu.credentials}
            print(json.dumps(announced, indent=2), flush=True)
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def cli_main(args: argparse.Namespace) -> int:
    """`orchestrator emulator`: serve one seeded portal until SIGINT or SIGTERM."""
    from emulator.cli import config_from_args
    from orchestrator.observe.logs import configure_logging

    configure_logging("console")
    asyncio.run(_serve(config_from_args(args)))
    return 0
