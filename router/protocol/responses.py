"""OpenAI Responses wire models (requests), ordered as in OpenAI's API reference
(https://platform.openai.com/docs/api-reference/responses/create); unknown fields are ignored.

Input items stay loosely typed dicts: the handler maps messages, `function_call` and
`function_call_output` items and refuses every other item or content type with a clear 400.
"""

from __future__ import annotations

from typing import Any

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
