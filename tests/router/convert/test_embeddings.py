from __future__ import annotations

import base64
import struct
from typing import Any

import pytest

from router.convert.embeddings import (
    base64_vector,
    ollama_dimensions,
    ollama_embed_body,
    ollama_inputs,
    openai_body,
    openai_check,
    openai_inputs,
)
from router.errors import BadRequest


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, []),
        ("", []),
        ([], []),
        ("hi", ["hi"]),
        (["a", "b"], ["a", "b"]),
        (["a", ""], ["a", ""]),  # Ollama embeds an empty item rather than dropping it
    ],
)
def test_ollama_inputs(value: Any, expected: list[str]) -> None:
    assert ollama_inputs(value) == expected


@pytest.mark.parametrize("value", [["a", 1], 5, {"text": "a"}, [["a"]], True])
def test_ollama_inputs_of_other_types_are_ollamas_400(value: Any) -> None:
    with pytest.raises(BadRequest, match="^invalid input type$"):
        ollama_inputs(value)


@pytest.mark.parametrize(("value", "expected"), [(None, None), (0, None), (8, 8)])
def test_ollama_dimensions_zero_means_unset(value: int | None, expected: int | None) -> None:
    assert ollama_dimensions(value) == expected


def test_ollama_negative_dimensions_are_rejected() -> None:
    with pytest.raises(BadRequest):
        ollama_dimensions(-1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("hi", ["hi"]),
        (["a", "b"], ["a", "b"]),
        ([101, 7592], [(101, 7592)]),
        ([[101], [7592, 2088]], [(101,), (7592, 2088)]),
        (["a", [5]], ["a", (5,)]),
    ],
)
def test_openai_inputs(value: Any, expected: list[Any]) -> None:
    assert openai_inputs(value) == expected


@pytest.mark.parametrize("value", ["", [], [""], [[]], [["a"]], [1.5], [True, False], None, 3, [[1], "", "x"]])
def test_openai_empty_or_malformed_inputs_are_400(value: Any) -> None:
    with pytest.raises(BadRequest) as info:
        openai_inputs(value)
    assert info.value.param == "input"


def test_openai_encoding_format_error_is_ollamas_text() -> None:
    with pytest.raises(BadRequest) as info:
        openai_check("binary", None)
    assert info.value.message == "Invalid value for 'encoding_format' = binary. Supported values: ['float', 'base64']."
    with pytest.raises(BadRequest):
        openai_check("float", 0)
    openai_check("base64", 3)


def test_base64_is_little_endian_float32() -> None:
    # 1.0 = 00 00 80 3f, -2.0 = 00 00 00 c0, 0.5 = 00 00 00 3f (IEEE 754 single, little-endian).
    expected = base64.b64encode(bytes.fromhex("0000803f000000c00000003f")).decode()
    assert base64_vector([1.0, -2.0, 0.5]) == expected == "AACAPwAAAMAAAAA/"
    raw = base64.b64decode(base64_vector([0.1, 0.2]))
    assert struct.unpack("<2f", raw) == pytest.approx((0.1, 0.2), rel=1e-7)


@pytest.mark.parametrize(("encoding", "embedding"), [("float", [1.0, -2.0, 0.5]), ("base64", "AACAPwAAAMAAAAA/")])
def test_openai_body(encoding: str, embedding: Any) -> None:
    assert openai_body("all-minilm", [(1.0, -2.0, 0.5)], encoding, 7) == {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": embedding}],
        "model": "all-minilm",
        "usage": {"prompt_tokens": 7, "total_tokens": 7},
    }


def test_ollama_embed_body_omits_zero_metrics() -> None:
    assert ollama_embed_body("m", [(0.6, 0.8), (1.0, 0.0)], 10, 0, 4) == {
        "model": "m",
        "embeddings": [[0.6, 0.8], [1.0, 0.0]],
        "total_duration": 10,
        "prompt_eval_count": 4,
    }
