"""The versions of the stored dialog state, and the steps that bring an older stored form up.

A dialog outlives deploys: its state sits in Redis as the JSON `DialogState.to_json` wrote, and
the next version's workers must go on from it. So every stored state says which form it is in
(`schema_version`; a state without the field is version 0, the form workers wrote before it
existed), and `DialogState.from_json` reads through `upgrade`, which runs the raw dict through
MIGRATIONS in order until it is at SCHEMA_VERSION. A change to the state's shape bumps
SCHEMA_VERSION and appends its step here (a pure function from one version's dict to the next's),
instead of breaking the dialogs already stored; tests/unit/test_replay.py replays states each
earlier version wrote.

A state from a newer version than this code knows is refused with StateSchemaTooNew, so that a
rolled-back worker does not read it with a model that lacks the newer fields and then write it
back without them: the runner retries that event and dead-letters it, to be replayed once the
newer version runs again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.errors import StateSchemaError, StateSchemaTooNew

__all__ = ["MIGRATIONS", "SCHEMA_FIELD", "SCHEMA_VERSION", "Migration", "stored_version", "upgrade"]

SCHEMA_VERSION = 2  # the form this code writes
SCHEMA_FIELD = "schema_version"

Migration = Callable[[dict[str, Any]], dict[str, Any]]


def _v0_to_v1(state: dict[str, Any]) -> dict[str, Any]:
    """Version 0 has the fields of version 1 but not the version itself (set by `upgrade`)."""
    return state


def _v1_to_v2(state: dict[str, Any]) -> dict[str, Any]:
    """Version 2 adds the answerer's bookkeeping (dialog/answers.py), the buttons offered, the
    confirmation, the fields' source messages and the dialog's language: none of them yet."""
    added: dict[str, Any] = {
        "pending_ask": None,
        "unasked": False,
        "answers": 0,
        "recent": [],
        "offered": {},
        "confirming": False,
        "confirmed": False,
        "sources": {},
        "last_message_id": None,
        "language": None,
    }
    return {**state, **added}


# (from_version, step): each step turns a from_version dict into the next version's
MIGRATIONS: tuple[tuple[int, Migration], ...] = ((0, _v0_to_v1), (1, _v1_to_v2))


def stored_version(state: dict[str, Any]) -> int:
    """The version a stored state dict is in (0 when it carries none)."""
    version = state.get(SCHEMA_FIELD, 0)
    if type(version) is not int or version < 0:  # bool is an int, and no version either
        raise StateSchemaError(f"stored dialog state has a bad {SCHEMA_FIELD}: {version!r}")
    return version


def upgrade(state: Any) -> dict[str, Any]:
    """A stored state dict brought to SCHEMA_VERSION (a new dict; the argument is left alone)."""
    if not isinstance(state, dict):
        raise StateSchemaError(f"stored dialog state is not a JSON object: {type(state).__name__}")
    version = stored_version(state)
    if version > SCHEMA_VERSION:
        raise StateSchemaTooNew(version, SCHEMA_VERSION)
    upgraded = dict(state)
    for from_version, step in MIGRATIONS:
        if from_version >= version:
            upgraded = step(upgraded)
            version = from_version + 1
            upgraded[SCHEMA_FIELD] = version
    return upgraded
