"""Injected trouble: per-method error rates, HTML error pages, hung requests, latency and
simulated execution time, drawn from a seeded generator so a run can be replayed."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal

RATE_KINDS = ("error_rate", "timeout_rate", "html_rate")
VALUE_KINDS = ("latency_ms", "exec_time_s")
FaultKind = Literal["none", "error", "html", "timeout"]


@dataclass(frozen=True)
class FaultDecision:
    """What happens to one call."""

    kind: FaultKind = "none"
    html_status: int = 0
    latency_s: float = 0.0
    exec_time_s: float = 0.0


@dataclass
class FaultPlan:
    """Per method (lower-case name, or "*" for every method) rates in [0, 1] and values."""

    error_rate: dict[str, float] = field(default_factory=dict)
    timeout_rate: dict[str, float] = field(default_factory=dict)
    html_rate: dict[str, float] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    exec_time_s: dict[str, float] = field(default_factory=dict)

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


class Faults:
    """The fault plan of one portal and the seeded generator that applies it."""

    def __init__(self, seed: int = 0) -> None:
        self.plan = FaultPlan()
        self._rng = random.Random(seed)

    def configure(self, body: dict[str, Any]) -> None:
        """Replace the plan with the tables in `body`; an optional `seed` restarts the draws."""
        unknown = set(body) - {*RATE_KINDS, *VALUE_KINDS, "seed", "member_id"}
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        tables = {k: _table(body.get(k, {}), k) for k in (*RATE_KINDS, *VALUE_KINDS)}
        seed = body.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("seed must be an integer")
        self.plan = FaultPlan(**tables)
        if seed is not None:
            self._rng = random.Random(seed)

    def clear(self) -> None:
        self.plan = FaultPlan()

    def describe(self) -> dict[str, Any]:
        return {k: dict(getattr(self.plan, k)) for k in (*RATE_KINDS, *VALUE_KINDS)}

    def _hits(self, kind: str, method: str) -> bool:
        rate = self.plan.value(kind, method)
        # Draw only when a rate is set, so an unrelated method does not shift the sequence.
        return rate > 0 and self._rng.random() < rate

    def decide(self, method: str) -> FaultDecision:
        """Draw the fate of one call of `method`."""
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
        return FaultDecision(kind, html_status, latency, exec_time)
