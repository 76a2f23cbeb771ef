"""A line's answerer, as its scenario configures it: which one decides the bot's replies, what
happens when it fails, and its budget (docs/answerers.md).

Secrets never sit in the scenario file: it names the environment variables that hold them, and
the workers refuse to start when one is unset (orchestrator/handler/answerers/pool.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["AnswererConfig", "HttpAnswerer", "LlmAnswerer"]

_ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpAnswerer(_Strict):
    """The contact center's own service: we POST the request as JSON, signed with HMAC-SHA256
    over the shared secret, and take one action back."""

    url: str = Field(pattern=r"^https?://[^\s/]+", description="where the requests are POSTed")
    secret_env: str = Field(default="ANSWERER_SECRET", pattern=_ENV_NAME)
    # tries again only when the request never reached the service (connection refused); an
    # answer that timed out or failed may have been worked on, and asking again costs a turn
    retries: int = Field(default=1, ge=0, le=3)


class LlmAnswerer(_Strict):
    """An OpenAI-compatible chat-completions endpoint, asked for one action as structured output."""

    base_url: str = Field(
        pattern=r"^https?://[^\s/]+", description="e.g. https://api.openai.com/v1"
    )
    model: str = Field(min_length=1)
    api_key_env: str = Field(default="OPENAI_API_KEY", pattern=_ENV_NAME)
    system_prompt: str = Field(
        default="You are the first-line support bot of a contact center. Be brief and polite.",
        min_length=1,
    )
    # a small FAQ or knowledge text, put into the system prompt; relative to the scenario file
    knowledge_path: str | None = None
    temperature: float = Field(default=0.2, ge=0, le=2)
    max_tokens: int = Field(default=400, ge=16, le=4000)
    # json_schema: the endpoint enforces our schema (OpenAI, vLLM, llama.cpp, Ollama);
    # json_object: it only promises JSON, and our validation does the rest
    response_format: Literal["json_schema", "json_object"] = "json_schema"


class AnswererConfig(_Strict):
    """Which answerer decides on a line, and its limits."""

    kind: Literal["rules", "http", "llm"] = "rules"
    # when the answerer times out, fails or answers something invalid: the scenario's rules
    # answer that message, or the dialog goes to people
    on_failure: Literal["rules", "handoff"] = "rules"
    max_answers: int = Field(default=30, ge=1, le=1000, description="per session; then rules")
    timeout_s: float = Field(default=8.0, gt=0, le=60)
    recent_turns: int = Field(default=10, ge=0, le=50)
    # an answer still pending after this long shows the client that the bot is typing (again
    # every few seconds while it waits, never more often per dialog); None: never
    typing_after_s: float | None = Field(default=1.0, ge=0, le=60)
    http: HttpAnswerer | None = None
    llm: LlmAnswerer | None = None

    @model_validator(mode="after")
    def _configured(self) -> AnswererConfig:
        if self.kind == "http" and self.http is None:
            raise ValueError("kind http needs an 'http' section (url, secret_env)")
        if self.kind == "llm" and self.llm is None:
            raise ValueError("kind llm needs an 'llm' section (base_url, model, api_key_env)")
        return self

    @property
    def remote(self) -> bool:
        """Whether answers come from outside the machine (an effect), not from the rules."""
        return self.kind != "rules"
