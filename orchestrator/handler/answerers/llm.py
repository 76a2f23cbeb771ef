"""The `llm` answerer: an OpenAI-compatible chat-completions endpoint chooses the action.

The model is given the line's system prompt and knowledge text, what the dialog has collected
and is asking, the recent turns, and the actions it may take; it must answer with one JSON
object (structured output: `response_format` json_schema, or json_object where an endpoint has
only that). It never calls the portal: what it answers is validated like any other answer
(dialog/actions.py) and a wrong one is refused. Works against OpenAI and the servers that speak
its API (vLLM, llama.cpp, Ollama, LiteLLM...): docs/answerers.md says how to point it at one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from orchestrator.dialog.actions import AnswerRequest
from orchestrator.dialog.answerer_config import LlmAnswerer
from orchestrator.handler.answerers.errors import AnswererFailed
from orchestrator.observe import metrics

__all__ = ["KNOWLEDGE_MAX_CHARS", "LlmAnswererClient", "flat_schema", "instructions"]

KNOWLEDGE_MAX_CHARS = 20_000  # "small": it rides in every prompt
# the keys each action keeps from the flat answer (the rest are null there)
_KEEPS = {
    "reply": ("text",),
    "ask": ("field", "text"),
    "handoff": ("reason", "note", "text"),
    "finish": ("text",),
}


def flat_schema(request: AnswerRequest) -> dict[str, Any]:
    """One object with every key (null where unused): what strict structured output accepts."""
    nullable = {"type": ["string", "null"]}
    return {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": list(request.actions)},
            "text": nullable,
            "field": {"type": ["string", "null"], "enum": [*request.fields, None]},
            "reason": nullable,
            "note": nullable,
        },
        "required": ["action", "text", "field", "reason", "note"],
        "additionalProperties": False,
    }


def instructions(request: AnswerRequest) -> str:
    """What the model is told about its choice for this message."""
    d = request.dialog
    collected = ", ".join(f"{k}={v}" for k, v in d.collected.items() if v) or "nothing yet"
    return (
        "Decide the support bot's next step for the client's latest message and answer with "
        "one JSON object {action, text, field, reason, note} (unused keys null). Actions: "
        "'reply' answers the client with `text`; 'ask' asks for one contact field (`field`: "
        f"{', '.join(request.fields) or 'none on this line'}; `text` optional); 'handoff' "
        "passes the dialog to a human operator (`reason`: a few words, `note` for the operator, "
        "`text` for the client, both optional); 'finish' ends a settled conversation (`text`: "
        "an optional goodbye). Hand off when the client needs a person or you cannot help; "
        "never invent facts the knowledge does not give. "
        f"Collected: {collected}. Being asked: {d.asking or 'nothing'}. "
        f"Write in the language '{d.language}'."
    )


def _messages(request: AnswerRequest, system: str) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": f"{system}\n\n{instructions(request)}"}]
    for turn in request.recent:
        messages.append(
            {"role": "user" if turn.role == "client" else "assistant", "content": turn.text}
        )
    # the machine keeps the message among the recent turns (cut to its length there) unless the
    # line shows the answerer none
    last = request.recent[-1] if request.recent else None
    if last is None or last.role != "client" or not request.message.startswith(last.text):
        messages.append({"role": "user", "content": request.message})
    return messages


class LlmAnswererClient:
    """Asks one chat-completions endpoint; `answer` returns the action's JSON (not validated)."""

    kind = "llm"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        config: LlmAnswerer,
        api_key: str,
        knowledge: str = "",
    ) -> None:
        self.session = session
        self.config = config
        self.api_key = api_key
        self.system = config.system_prompt
        if knowledge:
            self.system += (
                f"\n\nKnowledge (answer only from this):\n{knowledge[:KNOWLEDGE_MAX_CHARS]}"
            )

    @staticmethod
    def read_knowledge(config: LlmAnswerer, base_dir: Path) -> str:
        """The knowledge file's text (its path relative to the scenario file), or ''."""
        if config.knowledge_path is None:
            return ""
        return (base_dir / config.knowledge_path).read_text(encoding="utf-8")

    def body(self, request: AnswerRequest) -> dict[str, Any]:
        """The chat-completions request for one question."""
        if self.config.response_format == "json_schema":
            schema = {"name": "bot_action", "strict": True, "schema": flat_schema(request)}
            response_format: dict[str, Any] = {"type": "json_schema", "json_schema": schema}
        else:
            response_format = {"type": "json_object"}
        return {
            "model": self.config.model,
            "messages": _messages(request, self.system),
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            "response_format": response_format,
        }

    async def answer(self, request: dict[str, Any], key: str) -> Any:
        """The action the model chose, as a dict; AnswererFailed when it gave none."""
        asked = AnswerRequest.model_validate(request)
        url = self.config.base_url.rstrip("/") + "/chat/completions"
        headers = {"Authorization": f"Bearer {self.api_key}", "X-Request-Id": key}
        try:
            async with self.session.post(url, json=self.body(asked), headers=headers) as resp:
                if resp.status != 200:
                    raise AnswererFailed("error", f"HTTP {resp.status}")
                completion = await resp.json(content_type=None)
        except aiohttp.ClientError as exc:
            raise AnswererFailed("error", f"{type(exc).__name__}: {exc}") from exc
        except ValueError:
            raise AnswererFailed("invalid", "the completion is not JSON") from None
        return _action_of(completion)


def _action_of(completion: Any) -> dict[str, Any]:
    """The action in a chat completion, with the keys its kind does not use left out."""
    try:
        message = completion["choices"][0]["message"]
        usage = completion.get("usage") or {}
    except (KeyError, IndexError, TypeError, AttributeError):
        raise AnswererFailed("invalid", "not a chat completion") from None
    for kind in ("prompt", "completion"):
        tokens = usage.get(f"{kind}_tokens")
        if isinstance(tokens, int) and tokens > 0:
            metrics.ANSWERER_TOKENS.labels(kind=kind).inc(tokens)
    if message.get("refusal") or not isinstance(message.get("content"), str):
        raise AnswererFailed("invalid", "the model refused or gave no content")
    try:
        flat = json.loads(message["content"])
    except ValueError:
        raise AnswererFailed("invalid", "the model's content is not JSON") from None
    if not isinstance(flat, dict) or flat.get("action") not in _KEEPS:
        raise AnswererFailed("invalid", "the model chose no known action")
    kept = _KEEPS[flat["action"]]
    return {"action": flat["action"], **{k: flat[k] for k in kept if flat.get(k) is not None}}
