"""The arq side of a wake-up: drain jobs in arq's own record format, serialized as JSON.

Our Lua scripts write arq job records themselves (so the append and the wake-up are one atomic
step), which is why arq runs with the JSON codec below instead of pickle: Lua can carry JSON.
A drain job names only its dialog; event data never goes into arq jobs (arq drops a job past
`max_tries` without any hook, and the inbox must not depend on that).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from arq.constants import (
    expires_extra_ms,
    in_progress_key_prefix,
    job_key_prefix,
    retry_key_prefix,
)

__all__ = [
    "ARQ_JOB_KEY_PREFIXES",
    "DRAIN_FUNCTION",
    "JOB_TTL_MS",
    "DrainJob",
    "job_deserializer",
    "job_serializer",
    "new_drain_job",
    "now_ms",
]

DRAIN_FUNCTION = "drain"
# arq's own default: a queued job record outlives its expected start by a day.
JOB_TTL_MS = expires_extra_ms
# arq's keys of one job (record, in-progress mark, try count): the sweeper drops a dead
# drainer's job with them, as arq's own finish_failed_job would
ARQ_JOB_KEY_PREFIXES = (job_key_prefix, in_progress_key_prefix, retry_key_prefix)
# one encoder for every event: json.dumps with options builds a new one per call
_compact_json = json.JSONEncoder(separators=(",", ":")).encode


def job_serializer(data: dict[str, Any]) -> bytes:
    """arq job/result serializer (JSON; results we keep are plain data)."""
    return json.dumps(data, default=repr, separators=(",", ":")).encode()


def job_deserializer(raw: bytes) -> dict[str, Any]:
    """arq job/result deserializer."""
    decoded: dict[str, Any] = json.loads(raw)
    return decoded


def now_ms() -> int:
    """Wall clock in ms, the clock arq scores its queue with."""
    return int(time.time() * 1000)


class DrainJob:
    """A fresh drain job for one dialog: its id and its serialized arq record."""

    __slots__ = ("body", "job_id")

    def __init__(self, job_id: str, body: bytes) -> None:
        self.job_id = job_id
        self.body = body


def new_drain_job(member_id: str, chat_id: str, at_ms: int | None = None) -> DrainJob:
    """A drain job record exactly as `ArqRedis.enqueue_job` would write it."""
    et = now_ms() if at_ms is None else at_ms
    # formatted by hand: this runs once per ingested event (job_deserializer reads it back)
    args = _compact_json([member_id, chat_id])
    body = f'{{"t":null,"f":"{DRAIN_FUNCTION}","a":{args},"k":{{}},"et":{et}}}'.encode()
    # arq's own ids are uuid4().hex: the same 32 random hex digits without building a UUID
    return DrainJob(os.urandom(16).hex(), body)
