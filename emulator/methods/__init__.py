"""The portal's REST methods: importing this package registers every handler in METHODS."""

from emulator.methods import (
    crm,
    events,
    events_offline,
    feature,
    imbot,
    imbot_v2,
    imbot_v2_chat,
    imbot_v2_events,
    imopenlines_bot,
    imopenlines_config,
    imopenlines_dialog,
    imopenlines_mode,
    imopenlines_session,
    users,
)

__all__ = [
    "crm",
    "events",
    "events_offline",
    "feature",
    "imbot",
    "imbot_v2",
    "imbot_v2_chat",
    "imbot_v2_events",
    "imopenlines_bot",
    "imopenlines_config",
    "imopenlines_dialog",
    "imopenlines_mode",
    "imopenlines_session",
    "users",
]
