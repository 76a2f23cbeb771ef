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


def _set_push_drops(_: Emulator, runtime: PortalRuntime, body: dict[str, Any]) -> Any:
    """POST: replace the portal's push-drop plan (`rate`, `next`, `seed`)."""
    runtime.push_drops.configure(body)
    return {"push_drops": runtime.push_drops.describe()}


def _clear_push_drops(_: Emulator, runtime: PortalRuntime, __: dict[str, Any]) -> Any:
    runtime.push_drops.clear()
    return {"push_drops": runtime.push_drops.describe()}


def _get_push_drops(_: Emulator, runtime: PortalRuntime, __: dict[str, Any]) -> Any:
    """The plan as it stands (`next` counts down as drops are used)."""
    return {"push_drops": runtime.push_drops.describe()}


def add_offline_control_routes(app: web.Application) -> None:
    """Mount the routes of this module on `app`."""
    prefix = "/_emulator"
    app.router.add_get(f"{prefix}/features", _wrap(_get_features))
    app.router.add_post(f"{prefix}/features", _wrap(_features))
    app.router.add_get(f"{prefix}/offline-queue", _wrap(_offline_queue))
    app.router.add_get(f"{prefix}/push-drops", _wrap(_get_push_drops))
    app.router.add_post(f"{prefix}/push-drops", _wrap(_set_push_drops))
    app.router.add_delete(f"{prefix}/push-drops", _wrap(_clear_push_drops))
