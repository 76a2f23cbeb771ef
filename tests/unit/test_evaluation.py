"""The rating policy and who owns the vote and the lead."""

from __future__ import annotations

import pytest

from orchestrator.dialog.effects import CreateLead, SaveHeadVote
from orchestrator.dialog.evaluation import first_response_s, handling_s, rate
from orchestrator.dialog.inputs import SessionFinished, TranscriptFetched
from orchestrator.dialog.machine import transition
from orchestrator.dialog.scenario import Evaluation
from orchestrator.dialog.scenario_file import parse_scenario
from orchestrator.dialog.state import DialogState, DialogStatus
from tests.unit.machine_fixtures import PORTAL, SESSION, T0, scenario, state_in

POLICY = Evaluation()  # targets: first response 60 s, handling 900 s; like 5, dislike 2, none 4


def timed(first_s: float | None, handling: float | None, vote: int | None) -> DialogState:
    """A closed dialog handed off at T0 with the given first-response and handling times."""
    st = DialogState(member_id="m1", chat_id=1, session_id=5, handed_off_at=T0, client_vote=vote)
    if first_s is not None:
        st.first_operator_response_at = st.operator_accepted_at = T0 + first_s
        st.closed_at = T0 + first_s + (handling or 0)
    return st


@pytest.mark.parametrize(
    ("first_s", "handling", "vote", "rating"),
    [
        (30, 300, 5, 5),  # like, both targets met
        (30, 300, 1, 2),  # dislike
        (30, 300, None, 4),  # no vote
        (120, 300, 5, 4),  # slow first response
        (120, 1800, 5, 3),  # both targets missed
        (120, 1800, 1, 1),  # never below 1
        (None, None, None, 3),  # nobody answered: counts as a missed first response
    ],
)
def test_rating_policy(
    first_s: float | None, handling: float | None, vote: int | None, rating: int
) -> None:
    """The client's vote sets the base; each missed time target costs a point; 1..5."""
    assert rate(timed(first_s, handling, vote), POLICY)[0] == rating


def test_comment_explains_the_rating() -> None:
    """The comment names the vote, both times and their targets."""
    _, comment = rate(timed(45, 800, 5), POLICY)
    assert comment == (
        "Client vote: like. First response: 45 s (target 60 s). "
        "Handling: 800 s (target 900 s). Missed targets: 0."
    )


@pytest.mark.parametrize(("vote", "rating"), [(5, 5), (1, 2), (None, 4)])
def test_a_session_without_an_operator_is_rated_on_the_vote_alone(
    vote: int | None, rating: int
) -> None:
    """No handoff: the operators' time targets do not apply; the comment says why."""
    st = DialogState(member_id="m1", chat_id=1, session_id=5, client_vote=vote, closed_at=T0)
    got, comment = rate(st, POLICY)
    assert got == rating
    assert "No operator (the bot handled it alone)" in comment
    st.after_hours = True
    assert "No operator (after hours)" in rate(st, POLICY)[1]


def test_times_are_measured_from_the_handoff() -> None:
    """First response counts from the handoff; handling from the accept to the close."""
    st = timed(45, 800, None)
    assert (first_response_s(st), handling_s(st)) == (45, 800)


def test_transcript_fills_what_the_bot_did_not_see_and_rates() -> None:
    """After the bot left, the history supplies the operator's times and the client's vote."""
    state = state_in(DialogStatus.OPERATOR_QUEUE)
    state = transition(state, SessionFinished(at=T0 + 500, **PORTAL), scenario(), T0).state
    fetched = TranscriptFetched(
        session_id=SESSION,
        operator_id=12,
        client_vote=1,
        operator_accepted_at=T0 + 40,
        first_operator_response_at=T0 + 50,
    )
    result = transition(state, fetched, scenario(), T0)
    vote = result.effects[0]
    assert isinstance(vote, SaveHeadVote)
    assert (vote.session_id, vote.rating) == (SESSION, 2)
    assert vote.comment.startswith("Client vote: dislike. First response: 40 s")
    assert result.state.operator_id == 12


def owners(vote: str, lead: str) -> list[str]:
    """Effect kinds at the close of a handled session under the given ownership."""
    doc = {"default": scenario().model_dump(mode="json")}
    doc["default"]["evaluation"] |= {"vote_owner": vote, "lead_owner": lead}
    scn = parse_scenario(doc).default
    result = transition(state_in(DialogStatus.OPERATOR), SessionFinished(at=T0, **PORTAL), scn, T0)
    if vote == "line" and lead == "line":
        assert result.state.status is DialogStatus.LEAD  # nothing left for us to do
    return [e.kind for e in result.effects]


@pytest.mark.parametrize(
    ("vote", "lead", "kinds"),
    [
        ("orchestrator", "orchestrator", ["FetchTranscript", "CreateLead"]),
        ("line", "orchestrator", ["CreateLead"]),
        ("orchestrator", "line", ["FetchTranscript"]),
        ("line", "line", []),
    ],
)
def test_ownership_decides_who_votes_and_creates_the_lead(
    vote: str, lead: str, kinds: list[str]
) -> None:
    """What the line owns we never do, so nothing happens twice."""
    assert owners(vote, lead) == kinds


def test_lead_carries_collected_data_and_a_stable_origin() -> None:
    """The lead has the contact data and ORIGINATOR_ID/ORIGIN_ID for lookup-before-create."""
    state = state_in(DialogStatus.OPERATOR)
    state.data.name, state.data.email, state.data.phone = "Jane", "j@x.io", "+15551234567"
    a = transition(state, SessionFinished(at=T0, **PORTAL), scenario(), T0)
    b = transition(state, SessionFinished(at=T0, **PORTAL), scenario(), T0)
    lead = next(e for e in a.effects if isinstance(e, CreateLead))
    assert lead.fields["NAME"] == "Jane"
    assert lead.fields["TITLE"] == "Open Lines: Jane"
    assert lead.fields["EMAIL"] == [{"VALUE": "j@x.io", "VALUE_TYPE": "WORK"}]
    assert lead.origin_id == f"m1:901:{SESSION}"
    assert lead.originator_id
    assert lead == next(e for e in b.effects if isinstance(e, CreateLead))
