"""Scenario files: the shipped default validates, lines override it, bad files say where."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.dialog.scenario import Hours
from orchestrator.dialog.scenario_file import load_scenario, parse_scenario
from orchestrator.errors import ScenarioError


def default_doc() -> dict[str, Any]:
    """The shipped file as a plain document."""
    return {"default": load_scenario(None).default.model_dump(mode="json")}


def test_shipped_default_validates() -> None:
    """The packaged default loads, with a greeting, FAQ, three fields and both owners set."""
    scenarios = load_scenario(None)
    scn = scenarios.default
    assert scn.greeting.text
    assert scn.faq
    assert [f.name for f in scn.collect.fields] == ["name", "email", "phone"]
    assert scn.evaluation.vote_owner == "orchestrator"


def test_line_override_merges_into_the_default() -> None:
    """A line names only what differs; the rest comes from the default."""
    scenarios = load_scenario(None)
    line2 = scenarios.for_line(2)
    assert line2.greeting.text == "Billing desk here. How can I help?"
    assert line2.greeting.via == scenarios.default.greeting.via  # merged, not replaced
    assert line2.faq == scenarios.default.faq
    assert scenarios.for_line(1) is scenarios.default
    assert scenarios.for_line(None) is scenarios.default


def test_load_from_a_file(tmp_path: Path) -> None:
    """A scenario file on disk loads like the shipped one."""
    doc = default_doc() | {"lines": {7: {"fallback": "Say again?"}}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert load_scenario(path).for_line(7).fallback == "Say again?"


def _with(path: str, value: Any) -> dict[str, Any]:
    doc = default_doc()
    node = doc["default"]
    *parents, leaf = path.split(".")
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[leaf] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        (_with("greting", {"text": "x"}), "default.greting: Extra inputs are not permitted"),
        (_with("greeting.via", "sms"), "default.greeting.via"),
        (_with("collect.fields.0.pattern", "[unclosed"), "default.collect.fields.0.pattern"),
        (_with("collect.fields.0.name", "age"), "default.collect.fields.0.name"),
        (_with("hours.timezone", "Mars/Olympus"), "unknown timezone"),
        (_with("hours.week", {"mon": ["18:00-09:00"]}), "bad interval"),
        (_with("hours.week", {"monday": ["09:00-18:00"]}), "unknown day"),
        (_with("handoff.target", {"user_id": 1, "queue_id": 2}), "not both"),
        (_with("handoff.routes", [{"target": {}}]), "a route needs"),
        (_with("evaluation.vote_owner", "both"), "default.evaluation.vote_owner"),
        (_with("timers.client_silence_s", -5), "default.timers.client_silence_s"),
        (_with("handoff.note", "Client {name"), "bad template"),
        (_with("evaluation.lead_title", "Lead {data[0]}"), "bad placeholder"),
        ({"lines": {}}, "'default' key"),
        (default_doc() | {"extra": 1}, "unknown top-level keys"),
        (default_doc() | {"lines": {3: {"faq": [{"keywords": []}]}}}, "lines.3.faq.0"),
        (default_doc() | {"lines": {3: "nope"}}, "lines.3 must be a mapping"),
        ([1, 2], "top level"),
    ],
)
def test_bad_documents_name_the_bad_path(doc: Any, fragment: str) -> None:
    """A bad scenario raises ScenarioError naming the offending key."""
    with pytest.raises(ScenarioError) as info:
        parse_scenario(doc)
    assert fragment in str(info.value)


def test_unreadable_or_invalid_yaml_files(tmp_path: Path) -> None:
    """A missing file or broken YAML is a ScenarioError, not a crash."""
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("default: [unclosed\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(bad)


@pytest.mark.parametrize(
    ("at", "open_"),
    [
        (1_767_610_800.0, True),  # Mon 2026-01-05 12:00 Berlin
        (1_767_596_400.0, False),  # Mon 08:00 Berlin
        (1_767_632_400.0, False),  # Mon 18:00 Berlin: the end is exclusive
        (1_767_870_000.0, True),  # Thu 12:00 Berlin: in the second interval only
        (1_767_960_000.0, False),  # Fri 13:00 Berlin
        (1_767_700_000.0, False),  # Tue: no intervals that day
    ],
)
def test_working_hours(at: float, open_: bool) -> None:
    """Hours are checked in the schedule's timezone, start inclusive, end exclusive."""
    hours = Hours(
        timezone="Europe/Berlin",
        week={
            "mon": ["09:00-18:00"],
            "thu": ["09:00-12:00", "11:30-13:00"],
            "fri": ["09:00-12:00"],
        },
    )
    assert hours.is_open(at) is open_


def test_empty_week_is_always_open_and_24_00_closes_the_day() -> None:
    """No schedule means always open; 24:00 is a valid end of day."""
    assert Hours().is_open(0)
    assert Hours(week={"thu": ["00:00-24:00"]}).is_open(1_767_225_600.0 + 86_399)
