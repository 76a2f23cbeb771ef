"""The client's like/dislike as the portal shows it over REST: the params of the session's
close message (IMOL_VOTE_SID, IMOL_VOTE_USER), read from the transcript."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.bitrix.models import SessionHistory
from orchestrator.dialog.evaluation import DISLIKE, LIKE, client_vote_from
from orchestrator.handler.executor import transcript_input


def _history(*params: dict[str, Any] | list[Any] | None) -> SessionHistory:
    messages = {
        str(i): {"id": str(i), "chatid": "7", "senderid": "0", "text": "t", "params": p}
        for i, p in enumerate(params, start=10)
    }
    return SessionHistory.model_validate(
        {"chatId": 7, "sessionId": 3, "message": messages, "users": []}
    )


@pytest.mark.parametrize(
    ("params", "vote"),
    [
        ({"IMOL_VOTE_SID": "3", "IMOL_VOTE_USER": "5"}, LIKE),
        ({"IMOL_VOTE_SID": 3, "IMOL_VOTE_USER": 1}, DISLIKE),
        ({"imolvotesid": "3", "imolvoteuser": "5"}, LIKE),  # the REST encoder's key style
        ({"IMOL_VOTE_SID": "3", "IMOL_VOTE_USER": "0"}, None),  # closed without a vote
        ({"IMOL_VOTE_SID": "4", "IMOL_VOTE_USER": "5"}, None),  # another session's message
        ({"IMOL_VOTE_SID": "3", "IMOL_FORM": "like"}, None),  # the vote request, unanswered
        ({"IMOL_VOTE_USER": "junk"}, None),
    ],
)
def test_client_vote_is_read_from_the_close_message_params(
    params: dict[str, Any], vote: int | None
) -> None:
    """Only a 5 or 1 in IMOL_VOTE_USER of this session's message counts as the client's vote."""
    assert client_vote_from(3, [{}, params]) == vote


def test_the_latest_vote_param_wins() -> None:
    """A vote re-set on a later message replaces an earlier value."""
    params = [{"IMOL_VOTE_USER": "5"}, {"IMOL_VOTE_USER": "1"}]
    assert client_vote_from(3, params) == DISLIKE


def test_transcript_input_carries_the_client_vote() -> None:
    """The transcript fetched after the close hands the vote to the evaluation; PHP's empty
    params ([]) are read as none."""
    fetched = transcript_input(3, _history([], {"IMOL_VOTE_SID": "3", "IMOL_VOTE_USER": "1"}))
    assert fetched.client_vote == DISLIKE
    assert transcript_input(3, _history([], None)).client_vote is None
