"""Async Bitrix24 REST client: a per-portal rate budget in Redis, batching, OAuth, retries;
typed methods, the v2 chat-bot API, offline events and line settings."""

from orchestrator.bitrix.auth import AuthStore, PortalCredentials, refresh_grant
from orchestrator.bitrix.batch import MAX_BATCH, BatchResult, Command
from orchestrator.bitrix.bot_v2 import BotV2Api, Button
from orchestrator.bitrix.client import BitrixClient
from orchestrator.bitrix.envelope import Envelope, classify, parse_response
from orchestrator.bitrix.limiter import PLANS, BucketConfig, Limiter
from orchestrator.bitrix.line_config import LineConfigApi, WelcomeBot
from orchestrator.bitrix.methods import PortalApi
from orchestrator.bitrix.metrics import REGISTRY
from orchestrator.bitrix.offline import OfflineApi
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
    "BotV2Api",
    "BucketConfig",
    "Button",
    "Command",
    "Envelope",
    "Limiter",
    "LineConfigApi",
    "OfflineApi",
    "PortalApi",
    "PortalCredentials",
    "WelcomeBot",
    "classify",
    "is_idempotent",
    "parse_response",
    "refresh_grant",
]
