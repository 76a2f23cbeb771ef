"""Retry decisions by idempotency, and the backoff."""

from __future__ import annotations

import pytest

from orchestrator.bitrix.retry import (
    IDEMPOTENT_WRITES,
    NON_IDEMPOTENT,
    Action,
    backoff,
    decide,
    is_idempotent,
)
from orchestrator.errors import (
    AccessDenied,
    MethodError,
    OperationTimeLimit,
    QueryLimitExceeded,
    ServerError,
    TokenExpired,
    TransportError,
)

TRANSIENT = [TransportError("timeout"), ServerError("INVALID_RESPONSE", status=502)]


@pytest.mark.parametrize("exc", TRANSIENT)
@pytest.mark.parametrize("method", sorted(NON_IDEMPOTENT))
def test_writes_are_not_retried_blindly(method: str, exc: Exception) -> None:
    """A non-idempotent write after a timeout/5xx/network error has an unknown outcome."""
    assert decide(exc, method).action is Action.UNKNOWN


@pytest.mark.parametrize("exc", TRANSIENT)
@pytest.mark.parametrize(
    "method",
    [
        "user.get",
        "imopenlines.dialog.get",
        "crm.lead.list",
        "imopenlines.session.history.get",
        *sorted(IDEMPOTENT_WRITES),
    ],
)
def test_reads_and_idempotent_writes_retry_transient_failures(method: str, exc: Exception) -> None:
    """Reads and idempotent writes are retried after transient failures."""
    assert decide(exc, method).action is Action.RETRY


@pytest.mark.parametrize("method", ["imbot.message.add", "user.get"])
@pytest.mark.parametrize(
    "exc", [QueryLimitExceeded("QUERY_LIMIT_EXCEEDED"), OperationTimeLimit("OPERATION_TIME_LIMIT")]
)
def test_throttle_answers_are_always_retried(method: str, exc: Exception) -> None:
    """503/429 mean the portal did not run the call, so even writes are replayed."""
    assert decide(exc, method).action is Action.RETRY


def test_expired_token_refreshes_and_method_errors_raise() -> None:
    """expired_token leads to a refresh; the method's own errors go to the caller."""
    assert decide(TokenExpired("expired_token"), "imbot.message.add").action is Action.REFRESH
    assert decide(MethodError("CHAT_ID_EMPTY"), "user.get").action is Action.RAISE
    assert decide(AccessDenied("ACCESS_DENIED"), "user.get").action is Action.RAISE


def test_unknown_methods_count_as_writes_and_case_is_ignored() -> None:
    """A method we have not classified is a write unless its name says it reads."""
    assert not is_idempotent("crm.deal.add")
    assert is_idempotent("crm.deal.list")
    assert not is_idempotent("IMBOT.MESSAGE.ADD")
    assert is_idempotent("imopenlines.session.mode.pinall")


def test_v2_and_offline_methods_named_like_reads_are_classified_by_what_they_do() -> None:
    """event.offline.get deletes or reserves rows (a write despite its name); Event.get with
    an offset deletes only what the caller confirmed, so its replay is safe; a message send and
    a token rotation are not replayed blindly."""
    assert not is_idempotent("event.offline.get")
    assert not is_idempotent("event.offline.error")
    assert is_idempotent("imbot.v2.Event.get")
    assert is_idempotent("imbot.v2.Bot.register")
    assert not is_idempotent("imbot.v2.Chat.Message.send")
    assert not is_idempotent("imbot.v2.Bot.update")
    assert is_idempotent("imopenlines.config.update")


def test_explicit_idempotency_overrides_the_table() -> None:
    """A batch of reads may be retried even though `batch` is a write by default."""
    assert decide(TRANSIENT[0], "batch").action is Action.UNKNOWN
    assert decide(TRANSIENT[0], "batch", idempotent=True).action is Action.RETRY


def test_backoff_is_jittered_and_capped() -> None:
    """Backoff grows with the attempt, stays within its cap and is never negative."""
    samples = [backoff(10, base_s=0.1, cap_s=2.0) for _ in range(200)]
    assert all(0 <= s <= 2.0 for s in samples)
    assert len(set(samples)) > 1
    assert all(0 <= backoff(1, base_s=0.1) <= 0.1 for _ in range(50))


def test_package_all_is_sorted_and_complete() -> None:
    """The client package exports a sorted __all__ (isort style, as ruff keeps it) of real names."""
    import orchestrator.bitrix as pkg

    def isort_key(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert list(pkg.__all__) == sorted(pkg.__all__, key=isort_key)
    assert all(hasattr(pkg, name) for name in pkg.__all__)
    assert {"BitrixClient", "PortalApi", "refresh_grant"} <= set(pkg.__all__)
