"""Async Bitrix24 REST client: a per-portal rate budget in Redis, batching, OAuth, retries."""

from orchestrator.bitrix.auth import AuthStore, PortalCredentials, refresh_grant
from orchestrator.bitrix.batch import MAX_BATCH, BatchResult, Command
from orchestrator.bitrix.client import BitrixClient
from orchestrator.bitrix.envelope import Envelope, classify, parse_response
from orchestrator.bitrix.limiter import PLANS, BucketConfig, Limiter
from orchestrator.bitrix.methods import PortalApi
from orchestrator.bitrix.metrics import REGISTRY
from orchestrator.bitrix.retry import IDEMPOTENT_WRITES, NON_IDEMPOTENT, is_idempotent

__all__ = [
    "IDEMPOTENT_WRITES",
    "MAX_BATCH",
    "NON_IDEMPOTENT",
    "PLANS",
    "REGISTRY",
    "AuthStore",
    "BatchResult",
    "BitrixClient",
    "BucketConfig",
    "Command",
    "Envelope",
    "Limiter",
    "PortalApi",
    "PortalCredentials",
    "classify",
    "is_idempotent",
    "parse_response",
    "refresh_grant",
]
