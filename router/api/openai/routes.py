"""OpenAI-compatible API: `/v1/chat/completions`, `/v1/completions`, `/v1/models`.

SSE streams follow OpenAI's sequence: a role chunk, content chunks with `finish_reason:null`, a
separate empty-delta finish chunk, an optional `choices:[]` usage chunk, then `data: [DONE]`.
A failure after the first byte is one error frame, still followed by `[DONE]`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from router import ids
from router.api import frames
from router.api.access import usage_of, visible
from router.api.body import parse_json_body
from router.api.bounds import Caps
from router.api.openai import encode as openai_encode
from router.api.resolve import resolve_generation, resolve_model
from router.catalog.catalog import Catalog, ModelRecord
from router.convert.options import openai_sampling
from router.convert.tools import CallStart, Reader, Text, guided, history_tool_calls, plan
from router.dispatch.choices import Answer, collect_all, merge, steps
from router.dispatch.generation import EventStream, Generations
from router.errors import BadRequest
from router.ids import new_request_id, openai_call_id
from router.protocol import openai as wire
from router.protocol.openai import ChatCompletionRequest, ChatMessage, CompletionRequest
from router.timing import now_ns
from workers.events import ChatPrompt, Final, GenerationRequest, Sampling, TextPrompt

SSE = "text/event-stream"


class OpenAIApi:
    def __init__(self, catalog: Catalog, generations: Generations, caps: Caps) -> None:
        self._catalog = catalog
        self._generations = generations
        self._caps = caps

    async def chat_completions(self, request: Request) -> Response:
        started = now_ns()
        return await self.chat(request, parse_json_body(ChatCompletionRequest, await request.body()), started)

    async def chat(self, request: Request, req: ChatCompletionRequest, started: int) -> Response:
        """A parsed chat request (RAG chat merges its passages into `req` first)."""
        record = await resolve_generation(self._catalog, request, req.model, "chat")
        tools = plan(req.tools, req.tool_choice, req.parallel_tool_calls)
        sampling = _sampling(req, req.max_completion_tokens, _chat_logprobs(req))
        sampling = guided(self._caps.sampling(sampling, "max_tokens"), tools)
        messages = record.chat_messages(_messages(req.messages))
        greq = GenerationRequest(new_request_id(), ChatPrompt(messages, tools.tools), sampling)
        streams = await self._generations.open_choices(
            record, greq, self._caps.choices(req.n), "openai", started, usage_of(request)
        )
        readers = [tools.reader(openai_call_id) for _ in streams]
        rid, created = ids.openai_id("chatcmpl-"), int(time.time())
        if req.stream:
            chunks = openai_encode.ChatChunks(rid, created, req.model, _include_usage(req))
            sources = [_chat_frames(i, s, r, chunks) for i, (s, r) in enumerate(zip(streams, readers, strict=True))]
            return _sse(streams, sources, chunks)
        answers = await collect_all(streams, readers)
        logprobs = sampling.logprobs is not None
        choices = [
            openai_encode.chat_choice(i, a.text, a.calls, a.finish_reason, a.logprobs if logprobs else None)
            for i, a in enumerate(answers)
        ]
        return _json_body(openai_encode.chat_completion(rid, created, req.model, choices, *_usage(answers)), streams)

    async def completions(self, request: Request) -> Response:
        started = now_ns()
        req = parse_json_body(CompletionRequest, await request.body())
        record = await resolve_generation(self._catalog, request, req.model, "generate")
        if req.suffix:
            raise BadRequest(
                f'"{req.model}" does not support insert (it has no fill-in-the-middle template)', param="suffix"
            )
        if req.echo:
            raise BadRequest("'echo' is not supported", param="echo")
        prompt, prefix = _completion_prompt(req.prompt)
        sampling = self._caps.sampling(_sampling(req, None, req.logprobs), "max_tokens")
        greq = GenerationRequest(new_request_id(), prompt, sampling, prefix_token_ids=prefix)
        streams = await self._generations.open_choices(
            record, greq, self._caps.choices(req.n), "openai", started, usage_of(request)
        )
        readers = [Reader(openai_call_id) for _ in streams]
        rid, created = ids.openai_id("cmpl-"), int(time.time())
        if req.stream:
            chunks = openai_encode.CompletionChunks(rid, created, req.model, _include_usage(req))
            sources = [_text_frames(i, s, chunks, req.logprobs is not None) for i, s in enumerate(streams)]
            return _sse(streams, sources, chunks)
        answers = await collect_all(streams, readers)
        choices = [
            openai_encode.completion_choice(
                i,
                a.text,
                a.finish_reason,
                openai_encode.completion_logprobs(a.logprobs) if req.logprobs is not None else None,
            )
            for i, a in enumerate(answers)
        ]
        return _json_body(openai_encode.text_completion(rid, created, req.model, choices, *_usage(answers)), streams)

    async def models(self, request: Request) -> Response:
        body: wire.ModelList = {
            "object": "list",
            "data": [_model(r) for r in visible(request, await self._catalog.records())],
        }
        return JSONResponse(body)

    async def model(self, request: Request) -> Response:
        return JSONResponse(_model(await resolve_model(self._catalog, request, request.path_params["model"])))


def _json_body(body: wire.ChatCompletion | wire.TextCompletion, streams: Sequence[EventStream]) -> JSONResponse:
    router_ns = min(s.router_ns() for s in streams)
    worker_ns = max(s.final.worker_ns if s.final else 0 for s in streams)
    body["router_duration_ms"] = frames.router_ms(router_ns)  # a fresh body: setting it copies nothing
    return JSONResponse(body, headers=frames.server_timing(router_ns, worker_ns))


def _usage(answers: Sequence[Answer]) -> tuple[int, int]:
    """The prompt counts once (every choice shares it); completion tokens add up over choices."""
    return answers[0].final.prompt_tokens, sum(a.final.output_tokens for a in answers)


def _model(r: ModelRecord) -> wire.Model:
    return {"id": r.name, "object": "model", "created": r.modified_ns // 1_000_000_000, "owned_by": "library"}


def _sampling(
    req: ChatCompletionRequest | CompletionRequest, max_completion_tokens: int | None, logprobs: int | None
) -> Sampling:
    sampling = openai_sampling(
        max_tokens=max_completion_tokens or req.max_tokens,
        temperature=req.temperature,
        top_p=req.top_p,
        seed=req.seed,
        stop=req.stop,
        presence_penalty=req.presence_penalty,
        frequency_penalty=req.frequency_penalty,
        response_format=getattr(req, "response_format", None),
        logit_bias=req.logit_bias,
    )
    return replace(sampling, logprobs=logprobs)


def _chat_logprobs(req: ChatCompletionRequest) -> int | None:
    """How many alternatives per token (`top_logprobs`), or None when `logprobs` is off."""
    if not req.logprobs:
        if req.top_logprobs:
            raise BadRequest("top_logprobs needs logprobs set to true", param="top_logprobs")
        return None
    return req.top_logprobs or 0


def _include_usage(req: ChatCompletionRequest | CompletionRequest) -> bool:
    return bool(req.stream_options and req.stream_options.include_usage)


def _messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """OpenAI messages for the chat template: `developer` is the system role, tool calls carry
    argument objects, and a tool result without `name` takes it from the call it answers."""
    names: dict[str, str] = {}
    out = []
    for m in messages:
        message: dict[str, Any] = {"role": "system" if m.role == "developer" else m.role}
        message["content"] = text_content(m.content)
        if calls := history_tool_calls(m.tool_calls, arguments_as_text=True):
            message["tool_calls"] = calls
            names |= {c["id"]: c["function"]["name"] for c in calls}
        if m.role == "tool":
            if not m.tool_call_id:
                raise BadRequest("messages: a tool message needs 'tool_call_id'", param="messages")
            message["tool_call_id"] = m.tool_call_id
            message["name"] = m.name or names.get(m.tool_call_id, "")
        out.append(message)
    return out


def _completion_prompt(prompt: Any) -> tuple[TextPrompt, tuple[int, ...]]:
    """A string, a one-item list of strings, or a token-id list (sent as prefix ids)."""
    if isinstance(prompt, list) and len(prompt) == 1 and not isinstance(prompt[0], int):
        prompt = prompt[0]
    if isinstance(prompt, str):
        return TextPrompt(prompt), ()
    if isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
        return TextPrompt(""), tuple(prompt)
    raise BadRequest("'prompt' must be a string, one string in a list, or a list of token ids", param="prompt")


def _sse(
    streams: Sequence[EventStream],
    sources: list[AsyncGenerator[bytes]],
    chunks: openai_encode.ChatChunks | openai_encode.CompletionChunks,
) -> StreamingResponse:
    return StreamingResponse(_frames(streams, sources, chunks), media_type=SSE)


async def _frames(
    streams: Sequence[EventStream],
    sources: list[AsyncGenerator[bytes]],
    chunks: openai_encode.ChatChunks | openai_encode.CompletionChunks,
) -> AsyncIterator[bytes]:
    try:
        # Closed at once when the client leaves, so every choice's engine request stops now.
        async with aclosing(merge(sources)) as frames:
            async for frame in frames:
                yield frame
        if chunks.include_usage:
            finals = [s.final for s in streams if s.final is not None]
            yield chunks.usage(finals[0].prompt_tokens, sum(f.output_tokens for f in finals))
    except Exception as exc:  # one in-band error for the request (its choices share model and API)
        yield openai_encode.error_frame(streams[0].failed(exc))
    yield openai_encode.DONE


async def _chat_frames(
    index: int, events: EventStream, reader: Reader, chunks: openai_encode.ChatChunks
) -> AsyncGenerator[bytes]:
    """One choice: its role chunk, content or tool-call deltas (logprobs ride on content), its finish."""
    yield chunks.role(index)
    async for step in steps(events, reader):
        logprobs = step.logprobs
        for piece in step.pieces:
            if isinstance(piece, Text):
                yield chunks.content(piece.text, index, logprobs)
                logprobs = ()
            elif isinstance(piece, CallStart):
                yield chunks.tool_call_start(piece.index, piece.id, piece.name, index)
            else:
                yield chunks.tool_call_arguments(piece.index, piece.arguments, index)
        if logprobs:  # the text is held back (it may be a tool call); its tokens' logprobs are not
            yield chunks.content("", index, logprobs)
        if step.final is not None:
            yield chunks.finish(_finish_reason(step.final, reader), events.router_ns(), index)


async def _text_frames(
    index: int, events: EventStream, chunks: openai_encode.CompletionChunks, logprobs: bool
) -> AsyncGenerator[bytes]:
    offset = 0
    async for step in steps(events, Reader(openai_call_id)):
        text = "".join(p.text for p in step.pieces if isinstance(p, Text))
        if text or step.logprobs:
            lp = openai_encode.completion_logprobs(step.logprobs, offset) if logprobs else None
            yield chunks.text(text, index, lp)
            offset += len(text)
        if step.final is not None:
            yield chunks.finish(step.final.finish_reason, events.router_ns(), index)


def _finish_reason(final: Final, reader: Reader) -> str:
    return "tool_calls" if reader.calls else final.finish_reason


def text_content(content: str | list[dict[str, Any]] | None) -> str:
    """A message's text: a string, or the `text` parts of an array (other parts are refused clearly)."""
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for part in content:
        if part.get("type") != "text":
            raise BadRequest(
                f"content parts of type {part.get('type')!r} are not supported by this model", param="messages"
            )
        texts.append(str(part.get("text", "")))
    return "".join(texts)
