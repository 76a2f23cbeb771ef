"""How an answerer failed, for the fallback and the metric."""

from __future__ import annotations

from typing import Literal

__all__ = ["AnswererFailed", "Failure"]

Failure = Literal["timeout", "error", "invalid"]


class AnswererFailed(Exception):
    """No usable answer: `failure` says which way (the label of ol_answers), `detail` why."""

    def __init__(self, failure: Failure, detail: str) -> None:
        super().__init__(f"{failure}: {detail}")
        self.failure: Failure = failure
        self.detail = detail
