"""Which collected fields a lead the bot did not make still lacks (handler/leads.missing_fields)."""

from __future__ import annotations

from typing import Any

from orchestrator.bitrix.models import Lead
from orchestrator.handler.leads import missing_fields

COLLECTED: dict[str, Any] = {
    "TITLE": "Open Lines: Boris",  # not collected: the line's title stays
    "NAME": "Boris Petrov",
    "EMAIL": [{"VALUE": "boris@example.com", "VALUE_TYPE": "WORK"}],
    "PHONE": [{"VALUE": "+7 (900) 123-45-67", "VALUE_TYPE": "WORK"}],
}


def _lead(**fields: Any) -> Lead:
    return Lead.model_validate({"ID": "7", **fields})


def test_a_lead_of_the_clients_profile_gets_name_email_and_phone() -> None:
    assert missing_fields(_lead(NAME="Boris", TITLE="Boris - Site chat"), COLLECTED) == {
        "NAME": "Boris Petrov",
        "EMAIL": [{"VALUE": "boris@example.com", "VALUE_TYPE": "WORK"}],
        "PHONE": [{"VALUE": "+7 (900) 123-45-67", "VALUE_TYPE": "WORK"}],
    }


def test_values_the_lead_holds_in_another_spelling_are_not_added_again() -> None:
    lead = _lead(
        NAME="Boris Petrov",
        EMAIL=[{"ID": "3", "VALUE": "Boris@Example.COM", "VALUE_TYPE": "HOME"}],
        PHONE=[{"ID": "4", "VALUE": "+79001234567", "VALUE_TYPE": "MOBILE"}],
    )
    assert missing_fields(lead, COLLECTED) == {}


def test_an_empty_name_and_no_multifields_are_filled_and_nothing_else() -> None:
    changes = missing_fields(_lead(NAME=""), {"NAME": "Ann"})
    assert changes == {"NAME": "Ann"}
    assert missing_fields(_lead(NAME="Ann"), {"TITLE": "x", "COMMENTS": "y"}) == {}


def test_a_second_email_is_added_beside_the_first() -> None:
    lead = _lead(EMAIL=[{"ID": "3", "VALUE": "work@example.com"}])
    assert missing_fields(lead, {"EMAIL": [{"VALUE": "home@example.com"}]}) == {
        "EMAIL": [{"VALUE": "home@example.com", "VALUE_TYPE": "WORK"}]
    }
