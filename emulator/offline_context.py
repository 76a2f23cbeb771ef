"""Who is calling, as the offline-event code of the portal sees it, and where one portal request
ends.

Two facts of the server code need this context without threading it through every domain call:

* Self-suppression: an offline row is not written when the change was made through REST by the
  same app (`client_id`) with the same `auth_connector` — both empty counts as the same
  (rest/lib/event/provideroffline.php `finalize`). So the row writer must know the caller.
* Rows are written, and `onOfflineEvent` is raised, once per portal request, at its end (a
  background job). `minTimeout: 0` means "at most one notification per request", so the
  notifier must know where a request ends (rest/lib/eventoffline.php `checkSendTime`).

The dispatcher opens a `rest_call` around each REST method (and one around a whole `batch`);
the control API opens a plain `request` around each client/operator action. Outside any request
(the portal's own timers, a test calling the domain directly) each write is its own request.
`auth_connector` is read by the OAuth layer and stripped from the method's params, and with
the `rest_auth_connector` feature off it is refused with WRONG_LICENSE before the method runs
(rest/classes/general/rest.php, rest/lib/oauth/auth.php).

Imports nothing of the emulator but its primitives and features, so the store, the dispatcher
and the control API may all use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from emulator.features import AUTH_CONNECTOR, Features
from emulator.primitives import RestError

# The request parameter the OAuth layer takes for itself (exact, lower-case key).
AUTH_CONNECTOR_PARAM = "auth_connector"


@dataclass(frozen=True)
class Caller:
    """The REST caller behind a change: the OAuth app's client id ("" for a webhook, the
    portal itself or a channel), its `auth_connector` and its user (0: nobody signed in)."""

    client_id: str = ""
    connector: str = ""
    user_id: int = 0


NOBODY = Caller()


class Flushable(Protocol):
    """Something that has work to finish when the request ends (an offline queue)."""

    def flush(self, scope: RequestScope) -> None: ...


@dataclass(eq=False)
class RequestScope:
    """One portal request: the queues that wrote rows in it, and whether a `minTimeout: 0`
    notification was already sent in it (a per-request flag in the server code)."""

    pending: list[Flushable] = field(default_factory=list)
    zero_timeout_sent: bool = False

    def defer(self, queue: Flushable) -> None:
        if all(q is not queue for q in self.pending):
            self.pending.append(queue)

    def finish(self) -> None:
        pending, self.pending = self.pending, []
        for queue in pending:
            queue.flush(self)


_caller: ContextVar[Caller] = ContextVar("emulator_offline_caller", default=NOBODY)
_scope: ContextVar[RequestScope | None] = ContextVar("emulator_offline_scope", default=None)


def current_caller() -> Caller:
    """The REST caller of the request being served (NOBODY outside REST)."""
    return _caller.get()


def current_scope() -> RequestScope | None:
    """The open request, if any."""
    return _scope.get()


@contextmanager
def request(caller: Caller = NOBODY) -> Iterator[RequestScope]:
    """Serve one portal request as `caller`; a request inside another (a command of a batch)
    joins the outer one, so the end-of-request work runs once, when the outermost ends — even
    when the request failed, as a background job still runs after an error answer."""
    caller_token = _caller.set(caller)
    outer = _scope.get()
    if outer is not None:
        try:
            yield outer
        finally:
            _caller.reset(caller_token)
        return
    scope = RequestScope()
    scope_token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(scope_token)
        _caller.reset(caller_token)
        scope.finish()


def rest_call(
    features: Features,
    auth_type: str,
    client_id: str | None,
    user_id: int,
    params: dict[str, Any],
) -> AbstractContextManager[RequestScope]:
    """The request context of one REST call: takes `auth_connector` out of `params` (OAuth
    only: a webhook's params keep it) and refuses it when the portal's licence lacks the
    feature; a call without one inherits the connector of the request it is part of."""
    connector = current_caller().connector if current_scope() is not None else ""
    if auth_type == "oauth" and AUTH_CONNECTOR_PARAM in params:
        raw = params.pop(AUTH_CONNECTOR_PARAM)
        if not features.enabled(AUTH_CONNECTOR):
            raise RestError(
                "WRONG_LICENSE",
                "This feature is not enabled for the current license: auth_connector",
                403,
            )
        connector = "" if raw is None else str(raw)
    return request(Caller(client_id or "", connector, user_id))
