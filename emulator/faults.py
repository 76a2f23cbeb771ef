"""Injected trouble: per-method error rates, HTML error pages, hung requests, latency and
simulated execution time — all before the method runs — and answers lost after it ran and
committed (a proxy timeout, a dropped connection, a balancer's 502/503/504 page), drawn from a
seeded generator so a run can be replayed."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal

RATE_KINDS = ("error_rate", "timeout_rate", "html_rate", "lost_answer_rate")
VALUE_KINDS = ("latency_ms", "exec_time_s")
FaultKind = Literal["none", "error", "html", "timeout"]
# How an answer is lost after the write: held then 504, the connection dropped, or a status page.
LOST_VARIANTS = ("timeout", "reset", "502", "504", "503")


@dataclass(frozen=True)
class FaultDecision:
    """What happens to one call: `kind` before the method runs, `lost` (a variant) after."""

    kind: FaultKind = "none"
    html_status: int = 0
    latency_s: float = 0.0
    exec_time_s: float = 0.0
    lost: str = ""


@dataclass
class FaultPlan:
    """Per method (lower-case name, or "*" for every method) rates in [0, 1] and values."""

    error_rate: dict[str, float] = field(default_factory=dict)
    timeout_rate: dict[str, float] = field(default_factory=dict)
    html_rate: dict[str, float] = field(default_factory=dict)
    lost_answer_rate: dict[str, float] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    exec_time_s: dict[str, float] = field(default_factory=dict)
    lost_answer_variants: tuple[str, ...] = LOST_VARIANTS

    def value(self, kind: str, method: str) -> float:
        table: dict[str, float] = getattr(self, kind)
        return table.get(method, table.get("*", 0.0))


def _table(raw: Any, kind: str) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise ValueError(f"{kind} must be an object of method -> number")
    table = {}
    for name, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{kind}[{name}] must be a non-negative number")
        if kind in RATE_KINDS and value > 1:
            raise ValueError(f"{kind}[{name}] is a probability, at most 1")
        table[str(name).lower()] = float(value)
    return table


def _variants(raw: Any) -> tuple[str, ...]:
    """The lost-answer variants to draw from (default all); 502 and "502" alike."""
    if raw is None:
        return LOST_VARIANTS
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"lost_answer_variants must be a non-empty list of {list(LOST_VARIANTS)}")
    variants = tuple(str(v).lower() for v in raw)
    if any(isinstance(v, bool) for v in raw) or not set(variants) <= set(LOST_VARIANTS):
        raise ValueError(f"unknown lost_answer_variants {raw!r}; known: {list(LOST_VARIANTS)}")
    return variants


class Faults:
    """The fault plan of one portal and the seeded generator that applies it."""

    def __init__(self, seed: int = 0) -> None:
        self.plan = FaultPlan()
        self._rng = random.Random(seed)

    def configure(self, body: dict[str, Any]) -> None:
        """Replace the plan with the tables in `body`; an optional `seed` restarts the draws."""
        settings = {*RATE_KINDS, *VALUE_KINDS, "lost_answer_variants", "seed", "member_id"}
        unknown = set(body) - settings
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        tables = {k: _table(body.get(k, {}), k) for k in (*RATE_KINDS, *VALUE_KINDS)}
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("seed must be an integer")
        self.plan = FaultPlan(
            **tables, lost_answer_variants=_variants(body.get("lost_answer_variants"))
        )
        if seed is not None:
            self._rng = random.Random(seed)

    def clear(self) -> None:
        self.plan = FaultPlan()

    def describe(self) -> dict[str, Any]:
        tables = {k: dict(getattr(self.plan, k)) for k in (*RATE_KINDS, *VALUE_KINDS)}
        return {**tables, "lost_answer_variants": list(self.plan.lost_answer_variants)}

    def _hits(self, kind: str, method: str) -> bool:
        rate = self.plan.value(kind, method)
        # Draw only when a rate is set, so an unrelated method does not shift the sequence.
        return rate > 0 and self._rng.random() < rate

    def decide(self, method: str) -> FaultDecision:
        """Draw the fate of one call of `method`: a fault before it runs, or else (only then)
        whether its answer is lost after it ran."""
        latency = self.plan.value("latency_ms", method) / 1000.0
        exec_time = self.plan.value("exec_time_s", method)
        kind: FaultKind = "none"
        html_status = 0
        if self._hits("timeout_rate", method):
            kind = "timeout"
        elif self._hits("html_rate", method):
            kind, html_status = "html", self._rng.choice((502, 503))
        elif self._hits("error_rate", method):
            kind = "error"
        lost = ""
        if kind == "none" and self._hits("lost_answer_rate", method):
            lost = self._rng.choice(self.plan.lost_answer_variants)
        return FaultDecision(kind, html_status, latency, exec_time, lost)
