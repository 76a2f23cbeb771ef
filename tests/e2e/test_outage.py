"""`orchestrator chaos --outage`, small: every ingress and worker process down for a few seconds
while clients write, in fetch mode and in v1 webhook mode. The fetch mode loses nothing, counted
from the portal's journal; outage.json holds both modes side by side with the fields the issue
names. (The 60 s run's numbers are in docs/results/outage.json.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from harness.chaos.outage import OutageOptions, run_outage
from orchestrator.settings import Settings

# two stacks one after the other, each down on purpose, the v1 one waited out to its bound
pytestmark = pytest.mark.timeout(400)

FIELDS = ("outage_s", "acknowledged", "lost", "stuck", "budget_share_polling")


async def test_fetch_mode_loses_nothing_while_everything_is_down(
    settings: Settings, tmp_path: Path
) -> None:
    output = tmp_path / "outage.json"
    opts = OutageOptions(
        outage_s=6.0,
        dialogs=8,
        portals=1,
        workers=1,
        arrivals_per_s=1.0,
        before_s=3.0,
        drain_s=40.0,
        patience_s=20.0,
        output=str(output),
    )
    report = await run_outage(settings, opts, Console(width=120))
    written = json.loads(output.read_text())
    assert set(written) >= {"fetch", "v1_webhook", "verdict", "run"}
    for mode in ("fetch", "v1_webhook"):
        assert all(key in written[mode] for key in FIELDS), (mode, sorted(written[mode]))
        assert written[mode]["outage_s"] >= opts.outage_s
    fetch = report["fetch"]
    assert fetch["poller_killed"] is not None  # the poller died holding events of its bot
    assert (fetch["lost"], fetch["stuck"], fetch["dialogs_lost"]) == (0, 0, 0), fetch["examples"]
    assert fetch["acknowledged"] > 0
    assert report["verdict"] == "pass"
