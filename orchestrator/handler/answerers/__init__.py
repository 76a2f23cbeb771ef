"""The answerers a line's scenario can choose besides its rules (docs/answerers.md): `http` (the
contact center's own service, signed requests) and `llm` (an OpenAI-compatible endpoint), and the
pool that asks them within the line's limits."""

from orchestrator.handler.answerers.errors import AnswererFailed
from orchestrator.handler.answerers.http import HttpAnswererClient
from orchestrator.handler.answerers.llm import LlmAnswererClient
from orchestrator.handler.answerers.pool import AnswererClient, AnswererPool
from orchestrator.handler.answerers.signing import sign, verify

__all__ = [
    "AnswererClient",
    "AnswererFailed",
    "AnswererPool",
    "HttpAnswererClient",
    "LlmAnswererClient",
    "sign",
    "verify",
]
