"""One bucket shared by several OS processes: four processes hammer one portal, no 503."""

from __future__ import annotations

from typing import Any

import pytest

from harness.bench.client import measure
from harness.bench.workers import LoadSpec, ours_worker
from orchestrator.settings import Settings


@pytest.mark.slow
@pytest.mark.parametrize("coalesce", [False, True])
async def test_four_processes_share_one_bucket_without_503(
    emulator: Any, settings: Settings, coalesce: bool
) -> None:
    """Four client processes calling as fast as they can for 6 s never overfill the bucket."""
    creds = emulator.credentials
    assert settings.redis_url
    spec = LoadSpec(
        webhook_url=creds["webhook_url"],
        member_id=creds["member_id"],
        redis_url=settings.redis_url,
        key_prefix=settings.key_prefix,
        method="user.get",
        params={"ID": 1},
        duration_s=6.0,
        concurrency=60,
        coalesce=coalesce,
    )
    result = await measure(
        ours_worker, spec, base_url=emulator.url, processes=4, warmup_s=0.0, drain_per_s=2.0
    )
    assert result.status_503 == 0
    assert result.status_429 == 0
    # The burst (45) plus the drain were used: the processes were really competing.
    assert result.calls_ok > 45
    assert not result.errors
