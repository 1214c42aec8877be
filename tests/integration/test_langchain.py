"""LangChain's chat models (`langchain-openai`, `langchain-ollama`) against the real stack: tool binding,
streamed tool calls and logprobs, as LangChain users call them."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_ollama import ChatOllama
from langchain_openai import ChatOpenAI

from tests.integration.conftest import MODEL

pytestmark = pytest.mark.integration


@tool
def get_weather(city: str, unit: str) -> str:
    """Get the current weather in a city, in unit C or F."""
    return f"18{unit} in {city}"


SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}}}
ASK = [HumanMessage("What is the weather in Paris?")]


@pytest.fixture(scope="module")
def chat(herd: str) -> ChatOpenAI:
    return ChatOpenAI(base_url=f"{herd}/v1", api_key="any", model=MODEL, max_tokens=80, max_retries=0)  # type: ignore[arg-type]


def _check_calls(message: AIMessage) -> list[dict[str, Any]]:
    calls = [dict(c) for c in message.tool_calls]
    assert calls and not message.invalid_tool_calls
    for call in calls:
        assert call["name"] == "get_weather" and call["id"]
        jsonschema.validate(call["args"], SCHEMA | {"required": ["city", "unit"]})
    return calls


@pytest.mark.parametrize("choice", ["get_weather", "any"])  # LangChain's names for named and `required`
def test_openai_bind_tools(chat: ChatOpenAI, choice: str) -> None:
    reply = chat.bind_tools([get_weather], tool_choice=choice).invoke(ASK)
    assert isinstance(reply, AIMessage)
    calls = _check_calls(reply)
    assert reply.response_metadata["finish_reason"] == "tool_calls"
    # The call's result goes back and the model answers in text.
    follow = [*ASK, reply, ToolMessage(get_weather.invoke(calls[0]["args"]), tool_call_id=calls[0]["id"])]
    answer = chat.invoke(follow)
    assert isinstance(answer.content, str) and answer.content


def test_openai_streamed_tool_call_chunks_merge(chat: ChatOpenAI) -> None:
    merged: AIMessageChunk | None = None
    for chunk in chat.bind_tools([get_weather], tool_choice="get_weather").stream(ASK):
        assert isinstance(chunk, AIMessageChunk)
        merged = chunk if merged is None else merged + chunk
    assert merged is not None
    _check_calls(AIMessage(content=merged.content, tool_calls=merged.tool_calls))
    assert merged.response_metadata.get("finish_reason") == "tool_calls"


def test_openai_logprobs(chat: ChatOpenAI) -> None:
    reply = chat.bind(logprobs=True, top_logprobs=2).invoke(ASK)
    content = reply.response_metadata["logprobs"]["content"]
    assert content and "".join(t["token"] for t in content) == reply.content
    assert all(len(t["top_logprobs"]) == 2 for t in content)


def test_ollama_bind_tools(herd: str) -> None:
    few_shot: list[Any] = []
    for city in ("Rome", "Oslo", "Lima"):
        call = {"name": "get_weather", "args": {"city": city, "unit": "C"}, "id": f"call_{city.lower()}"}
        few_shot += [
            HumanMessage(f"What is the weather in {city}?"),
            AIMessage("", tool_calls=[call]),
            ToolMessage("18C", tool_call_id=call["id"], name="get_weather"),
            AIMessage(f"It is 18C in {city}."),
        ]
    for seed in range(8):  # whether this tiny model calls in `auto` is up to sampling
        llm = ChatOllama(base_url=herd, model=MODEL, temperature=0.7, seed=seed, num_predict=60)
        reply = llm.bind_tools([get_weather]).invoke([*few_shot, HumanMessage("What is the weather in Tokyo?")])
        assert isinstance(reply, AIMessage)
        if reply.tool_calls:
            _check_calls(reply)
            return
        assert isinstance(reply.content, str) and reply.content
    pytest.fail("no seed produced a tool call")


def test_embeddings_through_langchain(herd: str) -> None:
    """OpenAIEmbeddings as the README says to set it up (text, not tiktoken ids, which would need
    a download and are not this model's ids), and OllamaEmbeddings as it comes."""
    from langchain_ollama import OllamaEmbeddings
    from langchain_openai import OpenAIEmbeddings

    openai_style = OpenAIEmbeddings(
        model="all-minilm",
        base_url=f"{herd}/v1",
        api_key="unused",
        check_embedding_ctx_length=False,  # type: ignore[arg-type]
    )
    ollama_style = OllamaEmbeddings(model="all-minilm", base_url=herd)
    texts = ["a cat sits on the mat", "a kitten rests on a rug", "quarterly tax filing deadlines"]
    for embedder in (openai_style, ollama_style):
        cat, kitten, tax = embedder.embed_documents(texts)
        assert len(cat) == 384
        similar, unrelated = _cosine(cat, kitten), _cosine(cat, tax)
        assert similar > 0.5 > unrelated
    assert openai_style.embed_query(texts[0]) == pytest.approx(ollama_style.embed_query(texts[0]), abs=1e-4)


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (sum(x * x for x in a) ** 0.5 * sum(y * y for y in b) ** 0.5)
