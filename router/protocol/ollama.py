"""Ollama wire models (requests). Field order follows Ollama's docs/api.md; unknown fields are ignored."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from router.protocol.ranges import TopLogprobs


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class GenerateRequest(_Wire):
    model: str = ""
    prompt: str = ""
    suffix: str | None = None
    system: str | None = None
    template: str | None = None
    context: list[int] | None = None
    stream: bool = True
    raw: bool = False
    format: str | dict[str, Any] | None = None
    keep_alive: str | float | None = None
    images: list[str] | None = None
    options: dict[str, Any] | None = None
    think: bool | str | None = None
    truncate: bool | None = None
    shift: bool | None = None
    logprobs: bool | None = None
    top_logprobs: TopLogprobs = None


class Message(_Wire):
    role: str
    # Ollama requires a string; ollama-python drops empty content, so it may be missing.
    content: str = ""
    thinking: str | None = None
    images: list[str] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None

    @field_validator("role")
    @classmethod
    def _lower(cls, role: str) -> str:
        return role.lower()


class ChatRequest(_Wire):
    model: str = ""
    messages: list[Message] = []
    tools: list[dict[str, Any]] | None = None
    format: str | dict[str, Any] | None = None
    options: dict[str, Any] | None = None
    stream: bool = True
    keep_alive: str | float | None = None
    think: bool | str | None = None
    truncate: bool | None = None
    shift: bool | None = None
    logprobs: bool | None = None
    top_logprobs: TopLogprobs = None


class ShowRequest(_Wire):
    model: str = ""
    name: str = ""  # the legacy field, still sent by older clients
    verbose: bool = False

    @property
    def target(self) -> str:
        return self.model or self.name


class EmbedRequest(_Wire):
    model: str = ""
    # A string or a list of strings; checked by `router.convert.embeddings.ollama_inputs` for Ollama's error text.
    input: Any = None
    truncate: bool | None = None  # Ollama's default (null too) is true
    dimensions: int | None = None
    keep_alive: str | float | None = None
    options: dict[str, Any] | None = None


class EmbeddingsRequest(_Wire):
    """The legacy single-prompt `/api/embeddings`."""

    model: str = ""
    prompt: str = ""
    options: dict[str, Any] | None = None
    keep_alive: str | float | None = None


class PullRequest(_Wire):
    model: str = ""
    name: str = ""  # the legacy field
    insecure: bool = False
    stream: bool = True
    # Herd extension: where the weights come from when the name alone does not say (see README).
    source: str | None = None

    @property
    def target(self) -> str:
        return self.model or self.name


class CreateRequest(_Wire):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    model: str = ""
    name: str = ""  # the legacy field
    from_: str | None = Field(None, alias="from")
    files: dict[str, str] | None = None
    adapters: dict[str, str] | None = None
    template: str | None = None
    license: str | list[str] | None = None
    system: str | None = None
    parameters: dict[str, Any] | None = None
    messages: list[dict[str, Any]] | None = None
    quantize: str | None = None
    stream: bool = True
    # The older forms: a Modelfile's text, or its path on the server.
    modelfile: str | None = None
    path: str | None = None

    @property
    def target(self) -> str:
        return self.model or self.name


class CopyRequest(_Wire):
    source: str = ""
    destination: str = ""


class DeleteRequest(_Wire):
    model: str = ""
    name: str = ""  # the legacy field

    @property
    def target(self) -> str:
        return self.model or self.name
