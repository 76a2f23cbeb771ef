"""Bitrix24 -> us: form decoding, the validated event models, and their conversion to the
dialog's inputs (done once, at the ingress)."""

from orchestrator.events.convert import inputs_from_event, inputs_of_stored, stored_inputs
from orchestrator.events.formdata import decode_form, encode_form
from orchestrator.events.models import Event, parse_event

__all__ = [
    "Event",
    "decode_form",
    "encode_form",
    "inputs_from_event",
    "inputs_of_stored",
    "parse_event",
    "stored_inputs",
]
