"""The REST call pipeline, in the order the portal applies it: credentials -> portal -> leaky
bucket -> auth -> faults -> method lookup -> auth type -> scope -> operating budget -> handler ->
envelope -> (a lost answer: emulator.wire_faults). `batch` reuses the per-call half for each of
its commands. The handler runs `acting` as its method, so the journal names it as `via`."""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any

import structlog
from aiohttp import web

from emulator import wire_faults
from emulator.batch import run_batch
from emulator.faults import FaultDecision
from emulator.journal import acting
from emulator.offline_context import rest_call
from emulator.primitives import RestError
from emulator.registry import METHODS, CallContext, MethodSpec
from emulator.runtime import GLOBAL_SCOPES, Caller, Emulator, PortalRuntime
from emulator.transport import (
    error_response,
    extract_credentials,
    json_response,
    lift_result,
    normalise_keys,
    parse_rest_path,
    read_params,
    time_block,
)

log = structlog.get_logger(__name__)

EMULATOR = web.AppKey("emulator", Emulator)
BATCH = "batch"

NOT_FOUND = ("ERROR_METHOD_NOT_FOUND", "Method not found!")


def _no_auth(creds_kind: str, status: int) -> RestError:
    if creds_kind == "webhook":
        return RestError("INVALID_CREDENTIALS", "Invalid request credentials", status)
    if creds_kind == "oauth":
        return RestError("invalid_token", "The access token provided is invalid", 401)
    return RestError("NO_AUTH_FOUND", "Wrong authorization data", 401)


async def handle_rest(request: web.Request) -> web.StreamResponse:
    """`/rest/<method>[.json]` and `/rest/<user>/<code>/<method>[.json]`."""
    emu = request.app[EMULATOR]
    route = parse_rest_path(request.match_info["tail"])
    if route is None:
        return error_response(RestError(*NOT_FOUND, 404))
    params = await read_params(request)
    creds = extract_credentials(route, request.headers, params)
    runtime = emu.by_credentials(creds)
    if runtime is None:
        return error_response(_no_auth(creds.kind, emu.config.auth_error_status))
    runtime.requests += 1
    runtime.count(route.method, "calls")
    if not runtime.bucket.try_acquire():
        runtime.count(route.method, "503")
        return error_response(RestError("QUERY_LIMIT_EXCEEDED", "Too many requests", 503))
    try:
        caller = runtime.authenticate(creds)
    except RestError as err:
        runtime.count(route.method, "errors")
        return error_response(err)
    decision = runtime.faults.decide(route.method)
    held = await wire_faults.before_call(emu, runtime, route.method, decision)
    if held is not None:
        return held
    if route.method == BATCH:
        answer, drawn = await _serve_batch(runtime, caller, params, decision)
        applied = True  # every command ran as usual, whatever each answered
    else:
        outcome = await execute(runtime, caller, route.method, params, decision)
        status = outcome.pop("_status", 200)
        answer, applied = json_response(outcome, status), status == 200
        drawn = [(route.method, decision.lost)] if decision.lost else []
    if not drawn:
        return answer
    return await wire_faults.lose_answer(
        request,
        emu,
        runtime,
        variant=drawn[0][1],
        method=route.method,
        drawn=[method for method, _ in drawn],
        applied=applied,
    )


async def _serve_batch(
    runtime: PortalRuntime, caller: Caller, params: dict[str, Any], decision: FaultDecision
) -> tuple[web.Response, list[tuple[str, str]]]:
    """Run a batch; its answer and the (method, variant) draws that lose it ("batch" first)."""
    start = runtime.clock.now()
    t0 = time.perf_counter()
    drawn = [(BATCH, decision.lost)] if decision.lost else []

    async def sub_call(method: str, sub_params: dict[str, Any]) -> dict[str, Any]:
        runtime.count(method, "calls")
        runtime.count(method, "nested")  # rode inside a batch: no request of its own
        sub_decision = runtime.faults.decide(method.lower())
        if sub_decision.lost:
            drawn.append((method.lower(), sub_decision.lost))
        if sub_decision.latency_s > 0:
            await asyncio.sleep(sub_decision.latency_s)
        outcome = await execute(runtime, caller, method, sub_params, sub_decision)
        outcome.pop("_status", None)
        return outcome

    # One portal request: its offline rows are announced once, when the whole batch ends.
    try:
        request = rest_call(
            runtime.portal.features, caller.auth_type, caller.app_client_id, caller.user_id, params
        )
    except RestError as err:  # auth_connector without the licence: refused before any command
        return error_response(err), []
    with request:
        result = await run_batch(normalise_keys(params), sub_call)
    finish = runtime.clock.now()
    # `batch` itself is exempt from the operating budget: no operating* in its time block.
    body = {"result": result, "time": time_block(start, finish, time.perf_counter() - t0, None)}
    return json_response(body), drawn


def _check_access(runtime: PortalRuntime, caller: Caller, spec: MethodSpec) -> None:
    if caller.auth_type not in spec.auth:
        raise RestError(
            "WRONG_AUTH_TYPE", "Current authorization type is denied for this method", 403
        )
    if spec.scope not in GLOBAL_SCOPES and spec.scope not in caller.scopes:
        raise runtime.scope_error(caller)


async def execute(
    runtime: PortalRuntime,
    caller: Caller,
    method: str,
    params: dict[str, Any],
    decision: FaultDecision,
) -> dict[str, Any]:
    """Run one method for an authenticated caller: the success body, or an error envelope
    carrying its HTTP status under "_status"."""
    try:
        # The caller and its auth_connector, as the offline-event code reads them.
        with rest_call(
            runtime.portal.features, caller.auth_type, caller.app_client_id, caller.user_id, params
        ):
            return await _execute(runtime, caller, method, params, decision)
    except RestError as err:
        runtime.count(method, "429" if err.status == 429 else "errors")
        return {**err.envelope(), "_status": err.status}


async def _execute(
    runtime: PortalRuntime,
    caller: Caller,
    method: str,
    params: dict[str, Any],
    decision: FaultDecision,
) -> dict[str, Any]:
    spec = METHODS.get(method.lower())
    if spec is None:
        raise RestError(*NOT_FOUND, 404)
    _check_access(runtime, caller, spec)
    key = (caller.auth_type, caller.entity, spec.name)
    if runtime.budget.blocked(key):
        raise RestError(
            "OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit.", 429
        )
    if decision.kind == "error":
        runtime.journal.append("fault", method=spec.name, fault="error", status=500)
        raise RestError("INTERNAL_SERVER_ERROR", "Internal server error", 500)
    start = runtime.clock.now()
    t0 = time.perf_counter()
    ctx = CallContext(
        runtime.portal,
        caller.user_id,
        caller.auth_type,
        caller.app_client_id,
        caller.scopes,
        spec.name,
    )
    try:
        with acting(spec.name):
            result = await _invoke(
                spec, ctx, normalise_keys(params) if spec.keys_normalised else params
            )
    finally:
        simulated = runtime_exec_time(runtime, spec.name) + decision.exec_time_s
        processing = time.perf_counter() - t0 + simulated
        runtime.budget.record(key, start, processing)
    finish = runtime.clock.now() + simulated
    operating = runtime.budget.report(key, start)
    return {**lift_result(result), "time": time_block(start, finish, processing, operating)}


def runtime_exec_time(runtime: PortalRuntime, method: str) -> float:
    """Simulated execution seconds configured for `method` (config.method_exec_time)."""
    table = runtime.exec_time
    return table.get(method, table.get("*", 0.0))


async def _invoke(spec: MethodSpec, ctx: CallContext, params: dict[str, Any]) -> Any:
    try:
        result = spec.handler(ctx, params)
        if inspect.isawaitable(result):
            result = await result
    except RestError:
        raise
    except Exception as exc:
        # A non-REST exception surfaces as ERROR_CORE 400, as CRestServer does.
        log.exception("emulator_handler_failed", method=spec.name)
        raise RestError("ERROR_CORE", str(exc) or type(exc).__name__, 400) from exc
    return result
