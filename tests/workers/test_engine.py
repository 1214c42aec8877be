"""The engine's embedding path without vLLM: special tokens, truncation, dimensions and error unwrapping."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any

import pytest

from workers.engine import Engine, _logprobs, fit_dimensions
from workers.events import ChatPrompt, EmbedRequest, GenerationRequest, InvalidRequest, PromptTooLong, TokenLogprob

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


class _ChatTokenizer(_Tokenizer):
    """Renders what the chat template receives, so tests can see how tools reach it."""

    def __init__(self, template: str) -> None:
        self.chat_template = template
        self.seen: list[tuple[list[dict[str, Any]], Any]] = []

    def apply_chat_template(self, messages: list[dict[str, Any]], tools: Any = None, **kw: Any) -> str:
        self.seen.append((messages, tools))
        if any(m["role"] == "bad" for m in messages):
            raise ValueError("Conversation roles must alternate")
        return " ".join(m["content"] for m in messages)


def _chat_engine(template: str) -> tuple[Engine, _ChatTokenizer]:
    tokenizer = _ChatTokenizer(template)

    class Llm:
        def get_tokenizer(self) -> _ChatTokenizer:
            return tokenizer

    return Engine(Llm(), 64), tokenizer


TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
HISTORY = (
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {}}}]},
    {"role": "tool", "content": "2", "name": "f", "tool_call_id": "c"},
)


def test_a_template_with_tools_gets_them_and_the_history_as_is() -> None:
    engine, tokenizer = _chat_engine("{% if tools %}{{ tools }}{% endif %}")
    engine.prompt_token_ids(GenerationRequest("r", ChatPrompt(HISTORY, (TOOL,))))
    assert tokenizer.seen == [(list(HISTORY), [TOOL])]


def test_a_template_without_tools_gets_a_tool_system_prompt() -> None:
    engine, tokenizer = _chat_engine("{{ message['content'] }}")
    engine.prompt_token_ids(GenerationRequest("r", ChatPrompt(HISTORY, (TOOL,))))
    ((messages, tools),) = tokenizer.seen
    assert tools is None and [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert "<tools>" in messages[0]["content"] and "<tool_call>" in messages[2]["content"]
    # Without tools or tool turns, the conversation is untouched.
    engine.prompt_token_ids(GenerationRequest("r", ChatPrompt(HISTORY[:1])))
    assert tokenizer.seen[-1] == ([HISTORY[0]], None)


def test_a_template_that_refuses_the_conversation_is_a_client_error() -> None:
    engine, _ = _chat_engine("")
    with pytest.raises(InvalidRequest, match="chat template cannot render"):
        engine.prompt_token_ids(GenerationRequest("r", ChatPrompt(({"role": "bad", "content": "x"},))))


@dataclass
class _Logprob:
    logprob: float
    rank: int | None
    decoded_token: str | None


@dataclass
class _Completion:
    token_ids: list[int]
    logprobs: list[dict[int, _Logprob]] | None


def test_logprobs_keep_the_sampled_token_and_the_top_ranks_in_order() -> None:
    positions = [
        # The sampled token (5) is the 3rd most likely; with top 2 it is not an alternative.
        {5: _Logprob(-2.0, 3, " c"), 7: _Logprob(-0.1, 1, " a"), 9: _Logprob(-1.0, 2, " b")},
        {4: _Logprob(float("-inf"), 1, "!")},
    ]
    out = _logprobs(_Completion([5, 4], positions), 2)
    assert out == (
        TokenLogprob(" c", -2.0, (TokenLogprob(" a", -0.1), TokenLogprob(" b", -1.0))),
        TokenLogprob("!", -9999.0, (TokenLogprob("!", -9999.0),)),  # JSON has no -Infinity
    )
    assert _logprobs(_Completion([5], positions[:1]), None) == ()
    assert _logprobs(_Completion([5], None), 0) == ()


def _turn(role: str, text: str) -> dict[str, str]:
    return {"role": role, "content": text}


@pytest.mark.parametrize(
    ("messages", "truncate", "expected"),
    [
        # Fits (7 of 8 tokens): untouched. (Token ids are word lengths, so each role's words differ.)
        ([_turn("system", "s s"), _turn("user", "qqqq qqqq qqqq qqqq qqqq")], True, "s s qqqq qqqq qqqq qqqq qqqq"),
        # 8 tokens: the oldest non-system turn goes, until 6 (a quarter of the context stays free).
        (
            [_turn("system", "s s"), _turn("user", "oo oo"), _turn("assistant", "aaa aaa"), _turn("user", "qqqq qqqq")],
            True,
            "s s aaa aaa qqqq qqqq",
        ),
        # Only the system message and the last turn are left: the oldest tokens go.
        ([_turn("system", "s s"), _turn("user", " ".join(["qqqq"] * 8))], True, " ".join(["qqqq"] * 6)),
        # OpenAI: no truncation here; the engine answers PromptTooLong later.
        ([_turn("user", " ".join(["qqqq"] * 9))], False, " ".join(["qqqq"] * 9)),
    ],
)
def test_ollama_truncation_drops_old_turns_then_old_tokens(
    messages: list[dict[str, str]], truncate: bool, expected: str
) -> None:
    engine, _ = _chat_engine("")
    engine.max_model_len = 8
    request = GenerationRequest("r", ChatPrompt(tuple(messages)), truncate=truncate)
    assert engine.fitted_prompt_ids(request) == engine.tokenize(expected)
