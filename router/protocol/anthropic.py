"""Anthropic Messages wire models: requests (pydantic, ordered as in Anthropic's API reference,
https://docs.anthropic.com/en/api/messages; unknown fields are ignored), then the message,
its blocks and errors (TypedDicts the encoder fills).

Content blocks keep every type the API has, so the handler can refuse what Herd does not serve
(images, documents, thinking, server tools) with a clear 400 rather than a validation error.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Block(_Wire):
    """One content block: `text`, `tool_use` and `tool_result` are served; any other type is refused."""

    type: str
    text: str | None = None
    # tool_use
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None
    # tool_result: a string or text blocks
    tool_use_id: str | None = None
    content: str | list[dict[str, Any]] | None = None
    is_error: bool | None = None


class MessageParam(_Wire):
    role: Literal["user", "assistant"]
    content: str | list[Block]


class Tool(_Wire):
    """A client tool (`type` absent or "custom"); a versioned `type` is a server tool (web search, bash...)."""

    type: str | None = None
    name: str
    description: str | None = None
    input_schema: dict[str, Any] | None = None


class ToolChoice(_Wire):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class CountTokensRequest(_Wire):
    """`POST /v1/messages/count_tokens`: the prompt part of a Messages request."""

    model: str
    messages: list[MessageParam] = Field(min_length=1)
    system: str | list[Block] | None = None
    thinking: dict[str, Any] | None = None
    tool_choice: ToolChoice | None = None
    tools: list[Tool] | None = None


class MessagesRequest(CountTokensRequest):
    max_tokens: int = Field(ge=1)
    metadata: dict[str, Any] | None = None
    stop_sequences: list[str] | None = None
    stream: bool = False
    temperature: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0)
    top_p: float | None = Field(None, ge=0, le=1)
    # Accepted and ignored: routing and billing hints of Anthropic's own service.
    service_tier: str | None = None
    container: Any = None


# The message, its blocks and errors: TypedDicts, so the encoder builds plain dicts while mypy
# checks every key. Names follow the anthropic package's types; fields Herd never sends
# (container, cache and server-tool usage, citations) are left out.


class Usage(TypedDict):
    input_tokens: int
    output_tokens: int


class TextBlock(TypedDict):
    type: Literal["text"]
    text: str


class ToolUseBlock(TypedDict):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


ContentBlock = TextBlock | ToolUseBlock
StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use"]


class Message(TypedDict):
    """The non-streamed answer, and (empty, no stop reason yet) the one `message_start` carries."""

    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    content: list[ContentBlock]
    stop_reason: StopReason | None
    stop_sequence: str | None
    usage: Usage


class ErrorObject(TypedDict):
    type: str  # invalid_request_error, not_found_error, overloaded_error, timeout_error, api_error
    message: str


class ErrorResponse(TypedDict):
    """Every error body, and the in-band `event: error` data after the first byte."""

    type: Literal["error"]
    error: ErrorObject


class TokenCount(TypedDict):
    input_tokens: int
