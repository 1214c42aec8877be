"""Ollama native API: `/api/generate`, `/api/chat` and `/api/version` (models: router/api/models.py).

Handlers parse, build one engine-neutral `GenerationRequest`, and render events with the pure
encoders in `router.api.ollama.encode`. Errors before the first byte become a real status (app-level
handler); after it, one in-band `{"error": ...}` line.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from router.api import frames
from router.api.access import usage_of
from router.api.body import parse_json_body
from router.api.bounds import Caps
from router.api.ollama import encode as ollama_encode
from router.api.resolve import resolve_generation
from router.catalog.catalog import Catalog, ModelRecord
from router.convert.options import ollama_sampling
from router.convert.template import render
from router.convert.tools import (
    Piece,
    Reader,
    Text,
    ToolCall,
    ToolPlan,
    assemble,
    history_tool_calls,
    plan,
)
from router.dispatch.choices import collect, steps
from router.dispatch.generation import EventStream, Generations
from router.errors import BadRequest
from router.ids import new_request_id, ollama_call_id
from router.protocol import ollama as wire
from router.protocol.ollama import ChatRequest, GenerateRequest, Message
from router.timing import added_ns, now_ns
from workers.events import ChatPrompt, Final, GenerationRequest, Sampling, TextPrompt, TokenLogprob

NDJSON = "application/x-ndjson"


def created_at() -> str:
    return frames.rfc3339_nano(time.time_ns())


def metrics(final: Final, started_ns: int) -> ollama_encode.OllamaMetrics:
    """Ollama's durations: worker-measured prefill/decode; load = time before the worker had it.

    `router_duration` (Herd's own field) is the router's added time: all of the request's time
    outside the worker.
    """
    outside_worker = added_ns(started_ns, final.worker_ns)
    return ollama_encode.OllamaMetrics(
        total_duration=final.worker_ns + outside_worker,
        load_duration=outside_worker,
        prompt_eval_count=final.prompt_tokens,
        prompt_eval_duration=final.prompt_eval_ns,
        eval_count=final.output_tokens,
        eval_duration=final.eval_ns,
        router_duration=outside_worker,
    )


class OllamaApi:
    def __init__(self, catalog: Catalog, generations: Generations, version: str, caps: Caps) -> None:
        self._catalog = catalog
        self._generations = generations
        self._version = version
        self._caps = caps

    async def generate(self, request: Request) -> Response:
        started = now_ns()
        req = parse_json_body(GenerateRequest, await request.body())
        record = await resolve_generation(self._catalog, request, req.model, "generate")
        if not req.prompt and not req.context:
            return await self._load(record, req.model, req.keep_alive, chat=False)
        if req.raw and (req.template or req.system or req.context):
            raise BadRequest("raw mode does not support template, system, or context")
        _check_features(req.model, req.think, images=req.images, insert=req.suffix)
        sampling = self._caps.sampling(_sampling(req, record), "num_predict")
        greq = GenerationRequest(
            new_request_id(),
            _generate_prompt(req, record),
            sampling,
            prefix_token_ids=tuple(req.context or ()),
            return_token_ids=not req.raw,
            truncate=req.truncate is not False,
        )
        events = await self._generations.open(record, greq, "ollama", started, req.keep_alive, usage_of(request))
        top = req.top_logprobs or 0

        def chunk(text: str, calls: Sequence[ToolCall], logprobs: Sequence[TokenLogprob]) -> bytes:
            return ollama_encode.generate_chunk(req.model, created_at(), text, logprobs, top)

        def final(text: str, calls: Sequence[ToolCall], logprobs: Sequence[TokenLogprob], f: Final) -> bytes:
            ctx = None if req.raw else f.token_ids
            m = metrics(f, started)
            return ollama_encode.generate_final(req.model, created_at(), text, f.finish_reason, m, ctx, logprobs, top)

        return await _respond(req.stream, events, Reader(ollama_call_id), chunk, final)

    async def chat(self, request: Request) -> Response:
        started = now_ns()
        return await self.chat_request(request, parse_json_body(ChatRequest, await request.body()), started)

    async def chat_request(self, request: Request, req: ChatRequest, started: int) -> Response:
        """A parsed chat request (RAG chat merges its passages into `req` first)."""
        record = await resolve_generation(self._catalog, request, req.model, "chat")
        if not req.messages:
            return await self._load(record, req.model, req.keep_alive, chat=True)
        images = [image for m in req.messages for image in m.images or ()]
        _check_features(req.model, req.think, images=images)
        tools = plan(req.tools)
        greq = GenerationRequest(
            new_request_id(),
            _chat_prompt(req, record, tools),
            self._caps.sampling(_sampling(req, record), "num_predict"),
            truncate=req.truncate is not False,
        )
        events = await self._generations.open(record, greq, "ollama", started, req.keep_alive, usage_of(request))
        top = req.top_logprobs or 0

        def chunk(text: str, calls: Sequence[ToolCall], logprobs: Sequence[TokenLogprob]) -> bytes:
            return ollama_encode.chat_chunk(req.model, created_at(), text, calls, logprobs, top)

        def final(text: str, calls: Sequence[ToolCall], logprobs: Sequence[TokenLogprob], f: Final) -> bytes:
            m = metrics(f, started)
            return ollama_encode.chat_final(req.model, created_at(), text, f.finish_reason, m, calls, logprobs, top)

        return await _respond(req.stream, events, tools.reader(ollama_call_id), chunk, final)

    async def _load(self, record: ModelRecord, model: str, keep_alive: Any, *, chat: bool) -> Response:
        """Empty prompt/messages: Ollama loads the model (or with keep_alive 0 unloads it) and
        answers one object, even when streaming."""
        leases = self._generations.leases
        keep_alive_ns = leases.keep_alive_ns(keep_alive)
        unload = keep_alive_ns == 0
        if unload:
            await leases.unload(record)
        else:
            await leases.load(record, keep_alive_ns)
        reason = "unload" if unload else "load"
        return JSONResponse(ollama_encode.loaded(model, created_at(), reason, chat=chat))

    async def version(self, request: Request) -> Response:
        body: wire.VersionResponse = {"version": self._version}
        return JSONResponse(body)


def _check_features(model: str, think: bool | str | None, **features: Any) -> None:
    """Features this text-only model or Herd cannot serve yet get Ollama's clear 400, never silence."""
    if think not in (None, False):
        if think not in (True, "low", "medium", "high", "max"):
            raise BadRequest(f"invalid think value: {think!r}")
        raise BadRequest(f'"{model}" does not support thinking')
    for feature, value in features.items():
        if value:
            raise BadRequest(f'"{model}" does not support {feature}')


def _generate_prompt(req: GenerateRequest, record: ModelRecord) -> ChatPrompt | TextPrompt:
    if req.raw:
        return TextPrompt(req.prompt)
    system = req.system if req.system is not None else record.system
    template = req.template or record.template
    if template:
        return TextPrompt(render(template, {"System": system or "", "Prompt": req.prompt}))
    head = [{"role": "system", "content": system}] if system else []
    return ChatPrompt((*head, *record.messages, {"role": "user", "content": req.prompt}))


def _sampling(req: GenerateRequest | ChatRequest, record: ModelRecord) -> Sampling:
    sampling = ollama_sampling(req.options, req.format, base=record.parameters)
    # Only the request's own num_ctx: a Modelfile's larger default must not refuse every request.
    num_ctx = (req.options or {}).get("num_ctx")
    if isinstance(num_ctx, int | float) and num_ctx > record.context_length:
        # vLLM fixes the context window when the engine starts; a larger one cannot be honoured.
        raise BadRequest(f"num_ctx {int(num_ctx)} exceeds the model's context length of {record.context_length} tokens")
    return replace(sampling, logprobs=(req.top_logprobs or 0) if req.logprobs else None)


def _chat_prompt(req: ChatRequest, record: ModelRecord, tools: ToolPlan) -> ChatPrompt:
    return ChatPrompt(record.chat_messages([_message(m) for m in req.messages]), tools.tools)


def _message(m: Message) -> dict[str, Any]:
    """Ollama's message as the chat template wants it: tool results named (`tool_name`), calls with
    argument objects."""
    message: dict[str, Any] = {"role": m.role, "content": m.content}
    if calls := history_tool_calls(m.tool_calls, arguments_as_text=False):
        message["tool_calls"] = calls
    if m.role == "tool":
        message |= {"name": m.tool_name or "", "tool_call_id": m.tool_call_id or ""}
    return message


Chunk = Callable[[str, Sequence[ToolCall], Sequence[TokenLogprob]], bytes]
FinalLine = Callable[[str, Sequence[ToolCall], Sequence[TokenLogprob], Final], bytes]


async def _respond(streaming: bool, events: EventStream, reader: Reader, chunk: Chunk, final: FinalLine) -> Response:
    if streaming:
        return StreamingResponse(_ndjson(events, reader, chunk, final), media_type=NDJSON)
    answer = await collect(events, reader)
    headers = frames.server_timing(events.router_ns(), answer.final.worker_ns)
    body = final(answer.text, answer.calls, answer.logprobs, answer.final)
    return Response(body, media_type="application/json", headers=headers)


async def _ndjson(events: EventStream, reader: Reader, chunk: Chunk, final: FinalLine) -> AsyncIterator[bytes]:
    """Text as it comes; tool calls whole (Ollama never fragments them) in a chunk before the final one."""
    calls: list[Piece] = []
    try:
        async for step in steps(events, reader):
            text = "".join(p.text for p in step.pieces if isinstance(p, Text))
            calls += [p for p in step.pieces if not isinstance(p, Text)]
            if text or step.logprobs:
                yield chunk(text, (), step.logprobs)
            if step.final is not None:
                if calls:
                    yield chunk("", assemble(calls)[1], ())
                yield final("", (), (), step.final)
    except Exception as exc:  # never leave a client hanging without a final line
        yield ollama_encode.error(events.failed(exc))
