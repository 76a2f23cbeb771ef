"""`imopenlines.config.get|update`, typed, and attaching a bot to a line as its welcome bot.

The welcome-bot trap (docs/bitrix24-offline-events.md §3.2): in an update each of
`WELCOME_BOT_ID`, `WELCOME_BOT_TIME` and `WELCOME_BOT_LEFT` that is present is reset to
0 / 600 / queue unless `WELCOME_BOT_ENABLE` is "Y" in the same call. So the only update this
module sends carries all five welcome keys, ENABLE=Y among them, and reads the line back.
Parameter keys are case-sensitive (`CONFIG_ID`, `PARAMS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from orchestrator.bitrix.bot_v2 import PortalCaller
from orchestrator.bitrix.models_v2 import LineConfig
from orchestrator.errors import MethodError

__all__ = ["LineConfigApi", "WelcomeBot"]


@dataclass(frozen=True)
class WelcomeBot:
    """A line's welcome bot: who, when it joins, how long before the queue, what it does then."""

    bot_id: int
    join: Literal["first", "always"] = "always"
    time_s: int = 0  # 0: the bot keeps the dialog until it hands it over itself
    left: Literal["close", "queue"] = "queue"

    def params(self) -> dict[str, str]:
        """All five keys, ENABLE=Y in the same call (the trap above)."""
        return {
            "WELCOME_BOT_ENABLE": "Y",
            "WELCOME_BOT_JOIN": self.join,
            "WELCOME_BOT_ID": str(self.bot_id),
            "WELCOME_BOT_TIME": str(self.time_s),
            "WELCOME_BOT_LEFT": self.left,
        }


class LineConfigApi:
    """Open Lines line settings on one portal."""

    def __init__(self, portal: PortalCaller) -> None:
        self.portal = portal

    async def get(self, line_id: int, *, with_queue: bool = False) -> LineConfig | None:
        """`imopenlines.config.get`: the line's row, or None when there is no such line."""
        env = await self.portal.call(
            "imopenlines.config.get",
            {"CONFIG_ID": line_id, "WITH_QUEUE": "Y" if with_queue else "N"},
        )
        return LineConfig.model_validate(env.result) if isinstance(env.result, dict) else None

    async def update(self, line_id: int, params: Mapping[str, Any]) -> bool:
        """`imopenlines.config.update`: False when the line does not exist. Welcome-bot keys
        belong in `attach_welcome_bot`, which sends them the only safe way."""
        env = await self.portal.call(
            "imopenlines.config.update", {"CONFIG_ID": line_id, "PARAMS": dict(params)}
        )
        return bool(env.result)

    async def attach_welcome_bot(
        self, line_id: int, welcome: WelcomeBot
    ) -> tuple[bool, LineConfig]:
        """Make `welcome.bot_id` the line's enabled welcome bot. Returns (changed, the line as
        read back). A line where it already is stays untouched (its join/time/left are the
        operator's to tune); otherwise one update with all five keys, then a read that must
        show it, or MethodError."""
        line = await self.get(line_id)
        if line is None:
            raise MethodError("LINE_NOT_FOUND", f"imopenlines.config.get: no line {line_id}")
        if line.welcomes(welcome.bot_id):
            return False, line
        if not await self.update(line_id, welcome.params()):
            raise MethodError("LINE_NOT_UPDATED", f"imopenlines.config.update: line {line_id}")
        after = await self.get(line_id)
        if after is None or not after.welcomes(welcome.bot_id):
            shown = after.welcome() if after is not None else None
            raise MethodError(
                "WELCOME_BOT_NOT_SET",
                f"line {line_id} reads back {shown} after setting bot {welcome.bot_id}",
            )
        return True, after
