"""The Lua scripts under orchestrator/pipeline/lua/, loaded once and bound to a client (EVALSHA)."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

__all__ = ["SCRIPT_NAMES", "Scripts", "source"]

SCRIPT_NAMES = (
    "begin_effect",
    "commit",
    "dead_effect",
    "dead_event",
    "effect_done",
    "exit",
    "handback",
    "ingest",
    "lease",
    "peek",
    "replay",
    "sweep",
)


@cache
def source(name: str) -> str:
    """A script's text with the shared helpers of _lib.lua in front."""
    folder = resources.files("orchestrator.pipeline") / "lua"
    lib = (folder / "_lib.lua").read_text(encoding="utf-8")
    return lib + "\n" + (folder / f"{name}.lua").read_text(encoding="utf-8")


class Scripts:
    """Each script as an awaitable `(keys, args) -> reply` (EVALSHA, EVAL on a cache miss)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._scripts = {name: client.register_script(source(name)) for name in SCRIPT_NAMES}

    async def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run one script."""
        script: AsyncScript = self._scripts[name]
        return await script(keys=keys, args=args)
