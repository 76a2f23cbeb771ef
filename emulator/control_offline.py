"""Control routes for what a portal's licence and event queues do (`/_emulator/`): the feature
table `feature.get` reports, a look at the offline-event queue, and (emulator.push_drops) the
plan that makes the portal lose outbound pushes. Mounted next to emulator.control's routes by
the server; same conventions (JSON in and out, an optional `member_id`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from emulator.control import _wrap
from emulator.runtime import Emulator, PortalRuntime


def _features(_: Emulator, runtime: PortalRuntime, body: dict[str, Any]) -> Any:
    """POST: change the portal's features (values merged; self_hosted; reset)."""
    runtime.portal.features.configure(body)
    return {"features": runtime.portal.features.describe()}


def _get_features(_: Emulator, runtime: PortalRuntime, __: dict[str, Any]) -> Any:
    return {"features": runtime.portal.features.describe()}


def _offline_queue(_: Emulator, runtime: PortalRuntime, __: dict[str, Any]) -> Any:
    """Every offline row of every app, with its process, connector and error flag."""
    return {"rows": runtime.portal.offline.describe(), "now": runtime.clock.now()}


def add_offline_control_routes(app: web.Application) -> None:
    """Mount the routes of this module on `app`."""
    prefix = "/_emulator"
    app.router.add_get(f"{prefix}/features", _wrap(_get_features))
    app.router.add_post(f"{prefix}/features", _wrap(_features))
    app.router.add_get(f"{prefix}/offline-queue", _wrap(_offline_queue))
