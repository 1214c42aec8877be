"""Ollama native API: `/api/generate`, `/api/chat` and `/api/version` (models: router/api_models.py).

Handlers parse, build one engine-neutral `GenerationRequest`, and render events with the pure
encoders in `router.stream`. Errors before the first byte become a real status (app-level
handler); after it, one in-band `{"error": ...}` line.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from router import stream
from router.catalog import Catalog, ModelRecord
from router.errors import BadRequest, EngineError, HerdError
from router.generation import EventStream, Generations, new_request_id, now_ns
from router.options import ollama_sampling
from router.protocol.body import parse_json_body
from router.protocol.ollama import ChatRequest, GenerateRequest
from router.template import render
from workers.events import ChatPrompt, Delta, Final, GenerationRequest, TextPrompt

NDJSON = "application/x-ndjson"


def created_at() -> str:
    return stream.rfc3339_nano(time.time_ns())


def metrics(final: Final, started_ns: int) -> stream.OllamaMetrics:
    """Ollama's durations: worker-measured prefill/decode; load = time before the worker had it.

    `router_duration` (Herd's own field) is the router's added time: all of the request's time
    outside the worker.
    """
    total = max(now_ns() - started_ns, final.worker_ns + 1)
    outside_worker = max(total - final.worker_ns, 1)
    return stream.OllamaMetrics(
        total_duration=total,
        load_duration=outside_worker,
        prompt_eval_count=final.prompt_tokens,
        prompt_eval_duration=final.prompt_eval_ns,
        eval_count=final.output_tokens,
        eval_duration=final.eval_ns,
        router_duration=outside_worker,
    )


class OllamaApi:
    def __init__(self, catalog: Catalog, generations: Generations, version: str) -> None:
        self._catalog = catalog
        self._generations = generations
        self._version = version

    async def generate(self, request: Request) -> Response:
        started = now_ns()
        req = parse_json_body(GenerateRequest, await request.body())
        record = await self._catalog.resolve_for(request, req.model)
        record.require_generation(req.model, "generate")
        if not req.prompt and not req.context:
            return await self._load(record, req.model, req.keep_alive, chat=False)
        if req.raw and (req.template or req.system or req.context):
            raise BadRequest("raw mode does not support template, system, or context")
        _check_features(
            req.model, req.think, req.top_logprobs, logprobs=req.logprobs, images=req.images, insert=req.suffix
        )
        sampling = ollama_sampling(req.options, req.format, base=record.parameters)
        greq = GenerationRequest(
            new_request_id(),
            _generate_prompt(req, record),
            sampling,
            prefix_token_ids=tuple(req.context or ()),
            return_token_ids=not req.raw,
        )
        events = await self._generations.open(record, greq, "ollama", started, req.keep_alive)

        def final(text: str, f: Final) -> bytes:
            ctx = None if req.raw else f.token_ids
            return stream.ollama_generate_final(
                req.model, created_at(), text, f.finish_reason, metrics(f, started), ctx
            )

        return await _respond(
            req.stream, events, lambda text: stream.ollama_generate_chunk(req.model, created_at(), text), final
        )

    async def chat(self, request: Request) -> Response:
        started = now_ns()
        req = parse_json_body(ChatRequest, await request.body())
        record = await self._catalog.resolve_for(request, req.model)
        record.require_generation(req.model, "chat")
        if not req.messages:
            return await self._load(record, req.model, req.keep_alive, chat=True)
        images = [image for m in req.messages for image in m.images or ()]
        _check_features(req.model, req.think, req.top_logprobs, logprobs=req.logprobs, images=images, tools=req.tools)
        sampling = ollama_sampling(req.options, req.format, base=record.parameters)
        greq = GenerationRequest(new_request_id(), _chat_prompt(req, record), sampling)
        events = await self._generations.open(record, greq, "ollama", started, req.keep_alive)

        def final(text: str, f: Final) -> bytes:
            return stream.ollama_chat_final(req.model, created_at(), text, f.finish_reason, metrics(f, started))

        return await _respond(
            req.stream, events, lambda text: stream.ollama_chat_chunk(req.model, created_at(), text), final
        )

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
        body: dict[str, Any] = {"model": model, "created_at": created_at()}
        body |= {"message": {"role": "assistant", "content": ""}} if chat else {"response": ""}
        body |= {"done": True, "done_reason": "unload" if unload else "load"}
        return JSONResponse(body)

    async def version(self, request: Request) -> Response:
        return JSONResponse({"version": self._version})


def _check_features(model: str, think: bool | str | None, top_logprobs: int | None, **features: Any) -> None:
    """Features this text-only model or Herd cannot serve yet get Ollama's clear 400, never silence."""
    if top_logprobs is not None and not 0 <= top_logprobs <= 20:
        raise BadRequest("top_logprobs must be between 0 and 20")
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


def _chat_prompt(req: ChatRequest, record: ModelRecord) -> ChatPrompt:
    return ChatPrompt(record.chat_messages([{"role": m.role, "content": m.content} for m in req.messages]))


async def _respond(
    streaming: bool, events: EventStream, chunk: Callable[[str], bytes], final: Callable[[str, Final], bytes]
) -> Response:
    if streaming:
        return StreamingResponse(_ndjson(events, chunk, final), media_type=NDJSON)
    text, last = await events.collect()
    headers = stream.server_timing(events.router_ns(), last.worker_ns)
    return Response(final(text, last), media_type="application/json", headers=headers)


async def _ndjson(
    events: EventStream, chunk: Callable[[str], bytes], final: Callable[[str, Final], bytes]
) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            if isinstance(event, Delta):
                if event.text:
                    yield chunk(event.text)
            else:
                yield final("", event)
    except HerdError as err:
        yield stream.ollama_error(err)
    except Exception as exc:  # never leave a client hanging without a final line
        yield stream.ollama_error(EngineError(str(exc)))
