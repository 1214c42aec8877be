"""OpenAI Responses wire models: the request (pydantic, ordered as in OpenAI's API reference,
https://platform.openai.com/docs/api-reference/responses/create; unknown fields are ignored),
then the response, its output items and the in-band error (TypedDicts the encoder fills).

Input items stay loosely typed dicts: the handler maps messages, `function_call` and
`function_call_output` items and refuses every other item or content type with a clear 400.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextConfig(_Wire):
    # {"type": "text"} | {"type": "json_object"} | {"type": "json_schema", "name", "schema", "strict"}
    format: dict[str, Any] | None = None


class Reasoning(_Wire):
    effort: str | None = None
    summary: str | None = None


class ResponsesRequest(_Wire):
    model: str
    input: str | list[dict[str, Any]]
    background: bool | None = None
    include: list[str] | None = None
    instructions: str | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    max_tool_calls: int | None = None
    metadata: dict[str, str] | None = None
    parallel_tool_calls: bool | None = None
    previous_response_id: str | None = None
    reasoning: Reasoning | None = None
    store: bool = True
    stream: bool = False
    temperature: float | None = None
    text: TextConfig | None = None
    tool_choice: str | dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    top_logprobs: int | None = None
    top_p: float | None = None
    truncation: str | None = None
    user: str | None = None
    # Accepted and ignored, as chat completions does: hints for OpenAI's own service.
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    service_tier: str | None = None


# The response, its items and errors: TypedDicts, so the encoder builds plain dicts while mypy
# checks every key. Names follow the openai package's types; fields Herd never sends
# (annotations' contents, reasoning items, service_tier) are left out.

Status = Literal["in_progress", "completed", "incomplete"]


class InputTokensDetails(TypedDict):
    cached_tokens: int


class OutputTokensDetails(TypedDict):
    reasoning_tokens: int


class Usage(TypedDict):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class OutputText(TypedDict):
    type: Literal["output_text"]
    annotations: list[Any]  # always empty
    logprobs: list[Any]  # always empty (top_logprobs is refused)
    text: str


class MessageItem(TypedDict):
    id: str
    type: Literal["message"]
    status: Status
    role: Literal["assistant"]
    content: list[OutputText]


class FunctionCallItem(TypedDict):
    id: str
    type: Literal["function_call"]
    status: Status
    arguments: str  # JSON text, as the model wrote it
    call_id: str
    name: str


OutputItem = MessageItem | FunctionCallItem


class IncompleteDetails(TypedDict):
    reason: Literal["max_output_tokens"]


class ReasoningEcho(TypedDict):
    effort: None
    summary: None


class Response(TypedDict):
    """The response object: `POST` without stream, `GET`, and in `response.*` lifecycle events."""

    id: str
    object: Literal["response"]
    created_at: int
    status: Status
    error: None  # a failure after the first byte is an `error` event instead
    incomplete_details: IncompleteDetails | None
    instructions: str | None
    max_output_tokens: int | None
    model: str
    output: list[OutputItem]
    parallel_tool_calls: bool
    previous_response_id: str | None
    reasoning: ReasoningEcho
    store: bool
    temperature: float
    text: dict[str, Any]
    tool_choice: Any
    tools: list[dict[str, Any]]
    top_p: float
    truncation: Literal["disabled"]
    usage: Usage | None
    user: None
    metadata: dict[str, str]


class ErrorEvent(TypedDict):
    """The in-band `error` event's fields (its `type` and `sequence_number` are added when sent)."""

    code: str
    message: str
    param: str | None


class Deleted(TypedDict):
    id: str
    object: Literal["response.deleted"]
    deleted: bool
