"""Redis: our clients (hiredis packing), pipelined scripts, and the embedded server that
`make run` and `make test` start when REDIS_URL is unset."""

from orchestrator.redis.client import aw, open_client
from orchestrator.redis.pipelined import PipelinedScript
from orchestrator.redis.server import EmbeddedRedis

__all__ = [
    "EmbeddedRedis",
    "PipelinedScript",
    "aw",
    "open_client",
]
