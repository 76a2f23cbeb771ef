"""Observability: structured logs (secrets redacted) and the Prometheus metrics."""

from orchestrator.observe.logs import configure_logging

__all__ = [
    "configure_logging",
]
