"""Ranges both APIs share, validated once in the wire models (and shown in the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field


def _within(low: int, high: int) -> Any:
    def check(value: int | None) -> int | None:
        if value is not None and not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")  # Ollama's own text
        return value

    return AfterValidator(check)


def _bounds(low: int, high: int) -> Any:
    return Field(json_schema_extra={"minimum": low, "maximum": high})


# Alternatives per token: OpenAI's chat `top_logprobs` and legacy `logprobs`, Ollama's `top_logprobs`.
TopLogprobs = Annotated[int | None, _within(0, 20), _bounds(0, 20)]
# OpenAI's `n`: independent choices per request.
Choices = Annotated[int | None, _within(1, 128), _bounds(1, 128)]
