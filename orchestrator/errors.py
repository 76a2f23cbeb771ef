"""One exception tree for the whole package.

    OrchestratorError
    ├── PortalError                 a Bitrix24 REST call failed (classified by the `error` code)
    │   ├── RateLimited             .retry_after: seconds to wait before the same call may pass
    │   │   ├── QueryLimitExceeded      503 QUERY_LIMIT_EXCEEDED (leaky bucket)
    │   │   └── OperationTimeLimit      429 OPERATION_TIME_LIMIT (per-method time budget)
    │   ├── AuthError               the credentials are not accepted
    │   │   ├── TokenExpired            expired_token: refresh once and replay
    │   │   └── InvalidCredentials      invalid_token, NO_AUTH_FOUND, INVALID_CREDENTIALS, ...
    │   ├── AccessDenied            ACCESS_DENIED, insufficient_scope, WRONG_AUTH_TYPE, ...
    │   ├── MethodError             the method's own error (.code: CHAT_ID_EMPTY, WRONG_CHAT, ...)
    │   └── ServerError             5xx, HTML error pages, unparseable answers (transient)
    ├── TransportError              network error or timeout before an answer was read (transient)
    ├── OutcomeUnknown              a non-idempotent write may or may not have happened;
    │                               carries method + params so the caller can reconcile
    ├── OAuthError                  the token endpoint refused (invalid_grant, invalid_client)
    ├── InvalidEvent                ingress input we refuse (.status: 400/401/403/413/422)
    │   └── InstallRefused              an ONAPPINSTALL our OAuth app could not verify
    ├── SpoolUnavailable            the local spool failed or is at its cap (.op, .reason, .full)
    ├── IllegalTransition           the machine has no rule for (state, input)
    ├── StateSchemaError            a stored dialog state whose version cannot be read
    │   └── StateSchemaTooNew           written by a newer version than this code knows
    ├── ScenarioError               a scenario file does not validate
    └── ConfigurationError          settings that cannot work together

Control-flow signals are not failures and live apart, under `Signal`:

    Signal
    ├── LeaseLost                   another drainer owns the dialog now; stop quietly
    └── RetryLater                  an effect's next try is far off: hand the dialog back
"""

from __future__ import annotations

from typing import Any


class OrchestratorError(Exception):
    """Root of every failure this package raises on purpose."""


class PortalError(OrchestratorError):
    """A Bitrix24 REST call answered with an error envelope (or an unusable answer)."""

    def __init__(
        self,
        code: str,
        description: str = "",
        *,
        status: int | None = None,
        method: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> None:
        self.code = code
        self.description = description
        self.status = status
        self.method = method
        self.payload = payload or {}
        where = f" in {method}" if method else ""
        super().__init__(f"{code or '<empty code>'}{where}: {description} (HTTP {status})")


class RateLimited(PortalError):
    """The portal throttled us; the same call may pass after `retry_after` seconds."""

    def __init__(
        self, code: str, description: str = "", *, retry_after: float = 1.0, **kw: Any
    ) -> None:
        super().__init__(code, description, **kw)
        self.retry_after = retry_after


class QueryLimitExceeded(RateLimited):
    """503 QUERY_LIMIT_EXCEEDED: the portal's leaky bucket is full."""


class OperationTimeLimit(RateLimited):
    """429 OPERATION_TIME_LIMIT: the method's execution-time budget is spent."""


class AuthError(PortalError):
    """The portal did not accept our credentials."""


class TokenExpired(AuthError):
    """expired_token: the access token must be refreshed (once, cluster-wide)."""


class InvalidCredentials(AuthError):
    """The token or webhook is unknown or revoked; refreshing will not help."""


class AccessDenied(PortalError):
    """The caller lacks the right, scope or auth type for this method."""


class MethodError(PortalError):
    """The method's own documented error (see `code`)."""


class ServerError(PortalError):
    """A 5xx, an HTML error page or an answer that is not the REST envelope."""


class TransportError(OrchestratorError):
    """No answer was read: connection refused/reset, or a timeout."""


class OutcomeUnknown(OrchestratorError):
    """A non-idempotent write failed in a way that leaves its effect unknown."""

    def __init__(self, method: str, params: dict[str, Any], cause: BaseException) -> None:
        self.method = method
        self.params = params
        self.cause = cause
        super().__init__(f"outcome of {method} unknown after {type(cause).__name__}: {cause}")


class OAuthError(OrchestratorError):
    """The OAuth token endpoint refused a grant."""

    def __init__(self, code: str, description: str = "") -> None:
        self.code = code
        self.description = description
        super().__init__(f"{code}: {description}")


class InvalidEvent(OrchestratorError):
    """Input the ingress refuses; `status` is the 4xx it answers with, `code` the short name it
    is answered and counted under (by default the status's, see orchestrator/ingress/intake.py)."""

    def __init__(self, reason: str, *, status: int = 400, code: str | None = None) -> None:
        self.reason = reason
        self.status = status
        self.code = code
        super().__init__(reason)


class InstallRefused(InvalidEvent):
    """An ONAPPINSTALL our OAuth app could not verify; `outcome` is its (bounded) metric label."""

    def __init__(self, outcome: str, reason: str, *, status: int = 403) -> None:
        super().__init__(reason, status=status, code="install_refused")
        self.outcome = outcome


class SpoolUnavailable(OrchestratorError):
    """The spool could not do `op` (append, seal, claim, read, release, discard); `full` when
    for want of space (a full disk, or the SPOOL_MAX_BYTES cap)."""

    def __init__(self, op: str, reason: str, *, full: bool = False) -> None:
        self.op = op
        self.reason = reason
        self.full = full
        super().__init__(f"spool {op}: {reason}")


class IllegalTransition(OrchestratorError):
    """The dialog machine has no rule for this input in this state."""


class StateSchemaError(OrchestratorError):
    """A stored dialog state this code cannot read: no object, or a bad `schema_version`."""


class StateSchemaTooNew(StateSchemaError):
    """A stored dialog state from a newer version (`found`) than this code knows (`known`)."""

    def __init__(self, found: int, known: int) -> None:
        self.found = found
        self.known = known
        super().__init__(
            f"stored dialog state is schema_version {found}, newer than this code's {known}: "
            "a newer version wrote it, and this one must not rewrite it"
        )


class ScenarioError(OrchestratorError):
    """A scenario file that does not validate."""


class ConfigurationError(OrchestratorError):
    """Settings that cannot work together."""


class Signal(Exception):
    """Control flow, not failure: caught by the code that expects it."""


class LeaseLost(Signal):
    """Another drainer holds the dialog's lease now; the current one must stop."""


class RetryLater(Signal):
    """An effect waits longer than the runner waits inline for its next try: the dialog is
    handed back and comes back after `wait_s`."""

    def __init__(self, wait_s: float) -> None:
        self.wait_s = wait_s
        super().__init__(f"retry in {wait_s:.1f} s")
