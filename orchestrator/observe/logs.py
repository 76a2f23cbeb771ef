"""structlog, configured once: JSON in production, console in dev; secrets never reach a line."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# Keys whose values are credentials wherever they appear (event payloads, REST params, settings).
SECRET_KEYS = frozenset(
    {
        "access_token",
        "refresh_token",
        "application_token",
        "client_secret",
        "auth",
        "password",
        "token",
        "bottoken",
        "bot_token",
        "authorization",
        "b24_client_secret",
        "b24_application_token",
        "b24_webhook_url",
        "webhook_url",
    }
)
# A webhook URL carries its secret code in the path: /rest/<user>/<code>/
_WEBHOOK_RE = re.compile(r"(/rest/\d+/)([^/\s]+)")
REDACTED = "***"


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return _WEBHOOK_RE.sub(r"\1" + REDACTED, value)
    if isinstance(value, dict):
        return {
            k: (REDACTED if str(k).lower() in SECRET_KEYS else _redact_value(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask secret keys at any depth and webhook codes inside strings."""
    for key in list(event_dict):
        if key.lower() in SECRET_KEYS:
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _redact_value(event_dict[key])
    return event_dict


def configure_logging(fmt: str = "json", level: str = "INFO") -> None:
    """Set up structlog and the stdlib root logger (aiohttp, arq) to write one format to stderr."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log is one line per event POST: noise at our rates.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
