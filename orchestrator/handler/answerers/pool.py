"""The answerers of every line, built once per worker, and one question asked with its limits.

`AnswererPool.build` makes a client for each distinct answerer the scenario file configures and
reads their secrets from the environment: an unset variable or an unreadable knowledge file stops
the worker at start (ConfigurationError), not at a client's first question. `ask` runs one
question within the line's `timeout_s`, shows the typing indicator while it waits, validates the
answer (dialog/actions.py) and always comes back with an `Answered`: an action, or the failure
the machine's fallback answers instead (timeout, error, invalid), counted in `ol_answers`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import structlog

from orchestrator.dialog.actions import parse_action
from orchestrator.dialog.answerer_config import AnswererConfig
from orchestrator.dialog.effects import AskAnswerer, EffectId
from orchestrator.dialog.inputs import Answered
from orchestrator.dialog.scenario import ScenarioSet
from orchestrator.errors import ConfigurationError
from orchestrator.handler.answerers.errors import AnswererFailed
from orchestrator.handler.answerers.http import HttpAnswererClient
from orchestrator.handler.answerers.llm import LlmAnswererClient
from orchestrator.observe import metrics

__all__ = ["TYPING_EVERY_S", "AnswererClient", "AnswererPool", "Typing"]

log = structlog.get_logger(__name__)

TYPING_EVERY_S = 5.0  # the indicator again while still waiting, at most this often per dialog
Typing = Callable[[], Awaitable[None]]


class AnswererClient(Protocol):
    """One answerer: the raw answer (JSON) to a request, or AnswererFailed."""

    kind: str

    async def answer(self, request: dict[str, Any], key: str) -> Any: ...


class AnswererPool:
    """The clients by answerer config; `ask` answers one AskAnswerer."""

    def __init__(self, scenarios: ScenarioSet, clients: Mapping[AnswererConfig, AnswererClient]):
        self.scenarios = scenarios
        self.clients = dict(clients)
        self.session: aiohttp.ClientSession | None = None

    @classmethod
    def build(
        cls,
        scenarios: ScenarioSet,
        scenario_dir: Path,
        env: Mapping[str, str] | None = None,
    ) -> AnswererPool:
        """Clients for every remote answerer in `scenarios` (one HTTP session for all)."""
        env = os.environ if env is None else env
        configs = {s.answerer for s in (scenarios.default, *scenarios.lines.values())}
        remote = sorted((c for c in configs if c.remote), key=repr)
        pool = cls(scenarios, {})
        if not remote:
            return pool
        # every secret and file first: a missing one stops the worker before it connects
        makers = {config: _prepare(config, scenario_dir, env) for config in remote}
        pool.session = aiohttp.ClientSession(
            # the line's timeout bounds each question; this only keeps sockets from hanging
            timeout=aiohttp.ClientTimeout(total=60, connect=5),
            headers={"User-Agent": "openlines-orchestrator-answerer/1"},
        )
        for config, make in makers.items():
            pool.clients[config] = make(pool.session)
        return pool

    async def aclose(self) -> None:
        """Close the HTTP session."""
        if self.session is not None:
            await self.session.close()

    async def ask(self, effect: AskAnswerer, effect_id: EffectId, typing: Typing) -> Answered:
        """The answer to one question: an action, or why there is none."""
        config = self.scenarios.for_line(effect.line_id).answerer
        client = self.clients.get(config)
        started = time.perf_counter()
        action: dict[str, Any] | None = None
        failure, kind = "", str(config.kind)
        if client is None:  # the scenario changed under a live dialog: the rules answer
            failure = "error"
            log.warning("answerer_not_configured", line_id=effect.line_id)
        else:
            kind = client.kind
            try:
                raw = await _bounded(client.answer(effect.request, str(effect_id)), config, typing)
                action = parse_action(raw, effect.request).model_dump(exclude_defaults=True)
            except TimeoutError:
                failure = "timeout"
            except AnswererFailed as exc:
                failure = exc.failure
                log.warning("answerer_failed", failure=exc.failure, detail=exc.detail)
            except ValueError as exc:
                failure = "invalid"
                log.warning("answerer_invalid", detail=str(exc))
        outcome = failure or "answered"
        metrics.ANSWERS.labels(member_id=effect_id.member_id, answerer=kind, outcome=outcome).inc()
        metrics.ANSWER_SECONDS.labels(answerer=kind).observe(time.perf_counter() - started)
        return Answered(
            turn=effect.turn,
            action=action,
            failure=failure,
            effect_id=str(effect_id),
            session_id=effect_id.session_id,
            at=time.time(),
        )


async def _bounded(answer: Awaitable[Any], config: AnswererConfig, typing: Typing) -> Any:
    """`answer` within the line's timeout, with the typing indicator shown while it waits."""
    task = asyncio.ensure_future(answer)
    indicator = (
        asyncio.create_task(_keep_typing(config.typing_after_s, typing))
        if config.typing_after_s is not None
        else None
    )
    try:
        return await asyncio.wait_for(task, config.timeout_s)
    finally:
        if indicator is not None:
            indicator.cancel()
            await asyncio.gather(indicator, return_exceptions=True)


async def _keep_typing(after_s: float, typing: Typing) -> None:
    await asyncio.sleep(after_s)
    while True:
        try:
            await typing()
        except Exception as exc:  # a courtesy: its failure must not cost the answer
            log.info("typing_not_shown", error=f"{type(exc).__name__}: {exc}")
        await asyncio.sleep(TYPING_EVERY_S)


def _prepare(
    config: AnswererConfig, base: Path, env: Mapping[str, str]
) -> Callable[[aiohttp.ClientSession], AnswererClient]:
    """What makes the config's client on a session, its secret (and for llm its knowledge text)
    read now: ConfigurationError when one is missing."""
    if config.http is not None and config.kind == "http":
        http, secret = config.http, _secret(env, config.http.secret_env)
        return lambda session: HttpAnswererClient(session, http, secret)
    llm = config.llm
    assert llm is not None  # AnswererConfig refuses kind llm without it
    try:
        knowledge = LlmAnswererClient.read_knowledge(llm, base)
    except OSError as exc:
        raise ConfigurationError(
            f"answerer knowledge_path {llm.knowledge_path!r} cannot be read: {exc}"
        ) from exc
    key = _secret(env, llm.api_key_env)
    return lambda session: LlmAnswererClient(session, llm, key, knowledge)


def _secret(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "")
    if not value:
        raise ConfigurationError(
            f"the scenario's answerer needs the environment variable {name} (its secret); "
            "it is unset or empty"
        )
    return value
