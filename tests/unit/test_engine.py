"""The engine's embedding path without vLLM: special tokens, truncation, dimensions and error unwrapping."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from workers.engine import Engine, fit_dimensions
from workers.events import EmbedRequest, InvalidRequest, PromptTooLong

CLS, SEP = 101, 102


class _Tokenizer:
    """BERT-like: one id per word, [CLS] ... [SEP] around the text when asked."""

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        ids = [1000 + len(word) for word in text.split()]
        return [CLS, *ids, SEP] if add_special_tokens else ids


class _Llm:
    def get_tokenizer(self) -> _Tokenizer:
        return _Tokenizer()


def _engine(max_len: int = 6) -> Engine:
    return Engine(_Llm(), max_len)


@pytest.mark.parametrize(
    ("item", "truncate", "expected"),
    [
        ("a bb", True, [CLS, 1001, 1002, SEP]),
        ((7, 8), True, [CLS, 7, 8, SEP]),  # token ids get the same special tokens as text
        ("a bb ccc dddd eeeee", True, [CLS, 1001, 1002, 1003, 1004, SEP]),  # cut to max_len 6
        ((1, 2, 3, 4), False, [CLS, 1, 2, 3, 4, SEP]),  # exactly fits
    ],
)
def test_embed_token_ids(item: str | tuple[int, ...], truncate: bool, expected: list[int]) -> None:
    assert _engine().embed_token_ids(item, truncate) == expected


def test_too_long_without_truncate_is_prompt_too_long() -> None:
    with pytest.raises(PromptTooLong, match="^the input length exceeds the context length$"):
        _engine().embed_token_ids((1, 2, 3, 4, 5), truncate=False)


@pytest.mark.parametrize(
    ("vector", "dims", "normalize", "expected"),
    [
        ([0.6, 0.8, 0.0], None, True, (0.6, 0.8, 0.0)),
        ([3.0, 4.0, 12.0], 2, True, (0.6, 0.8)),  # cut, then renormalised
        ([3.0, 4.0, 12.0], 2, False, (3.0, 4.0)),  # raw vectors (legacy endpoint) stay raw
        ([0.0, 0.0, 1.0], 2, True, (0.0, 0.0)),  # a zero prefix cannot be normalised; no division by zero
        ([1.0, 2.0], 2, True, (1.0, 2.0)),  # the full size is a no-op
    ],
)
def test_fit_dimensions(vector: list[float], dims: int | None, normalize: bool, expected: tuple[float, ...]) -> None:
    assert fit_dimensions(vector, dims, normalize) == pytest.approx(expected)


@pytest.mark.parametrize("dims", [0, 4])
def test_fit_dimensions_out_of_range(dims: int) -> None:
    with pytest.raises(InvalidRequest, match="between 1 and 3"):
        fit_dimensions([1.0, 0.0, 0.0], dims, True)


def test_embed_keeps_input_order_and_counts_prompt_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _engine(max_len=16)

    async def pool(ids: list[int], normalize: bool, request_id: str) -> list[float]:
        # Later inputs finish first: results must still come back in input order.
        await asyncio.sleep(0.01 / len(ids))
        return [float(len(ids)), 0.0, 4.0]

    monkeypatch.setattr(engine, "_pool", pool)
    result = asyncio.run(engine.embed(EmbedRequest("r", ("a", "a bb ccc"))))
    assert result.vectors == ((3.0, 0.0, 4.0), (5.0, 0.0, 4.0))
    assert result.prompt_tokens == 3 + 5 and result.worker_ns > 0
    cut = asyncio.run(engine.embed(EmbedRequest("r", ("a",), dimensions=2))).vectors[0]
    assert cut == (1.0, 0.0) and math.isclose(math.hypot(*cut), 1.0)


def test_embed_raises_the_first_failure_itself_and_cancels_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _engine()
    cancelled: list[str] = []

    async def pool(ids: list[int], normalize: bool, request_id: str) -> Any:
        if request_id.endswith("-0"):
            raise InvalidRequest("Token id 99999 is out of vocabulary")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(request_id)
            raise

    monkeypatch.setattr(engine, "_pool", pool)
    with pytest.raises(InvalidRequest, match="out of vocabulary"):
        asyncio.run(engine.embed(EmbedRequest("r", ((99999,), "a"))))
    assert cancelled == ["r-1"]
