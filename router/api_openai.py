"""OpenAI-compatible API: `/v1/chat/completions`, `/v1/completions`, `/v1/models`.

SSE streams follow OpenAI's sequence: a role chunk, content chunks with `finish_reason:null`, a
separate empty-delta finish chunk, an optional `choices:[]` usage chunk, then `data: [DONE]`.
A failure after the first byte is one error frame, still followed by `[DONE]`.
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
from router.options import openai_sampling
from router.protocol.body import parse_json_body
from router.protocol.openai import ChatCompletionRequest, CompletionRequest, text_content
from workers.events import ChatPrompt, Delta, Final, GenerationRequest, Sampling, TextPrompt

SSE = "text/event-stream"


class OpenAIApi:
    def __init__(self, catalog: Catalog, generations: Generations) -> None:
        self._catalog = catalog
        self._generations = generations

    async def chat_completions(self, request: Request) -> Response:
        started = now_ns()
        req = parse_json_body(ChatCompletionRequest, await request.body())
        record = await self._catalog.resolve_for(request, req.model)
        record.require_generation(req.model, "chat")
        _unsupported(n=req.n, logprobs=req.logprobs, tools=req.tools and req.tool_choice != "none")
        messages = record.chat_messages(
            [
                {"role": "system" if m.role == "developer" else m.role, "content": text_content(m.content)}
                for m in req.messages
            ]
        )
        greq = GenerationRequest(new_request_id(), ChatPrompt(messages), _sampling(req, req.max_completion_tokens))
        events = await self._generations.open(record, greq, "openai", started)
        rid, created = stream.new_id("chatcmpl-"), int(time.time())
        if req.stream:
            chunks = stream.ChatChunks(rid, created, req.model, _include_usage(req))
            return _sse(events, chunks, chunks.content, first=chunks.role())
        text, final = await events.collect()
        body = stream.chat_completion(
            rid, created, req.model, text, final.finish_reason, final.prompt_tokens, final.output_tokens
        )
        return _json_body(body, events, final)

    async def completions(self, request: Request) -> Response:
        started = now_ns()
        req = parse_json_body(CompletionRequest, await request.body())
        record = await self._catalog.resolve_for(request, req.model)
        record.require_generation(req.model, "generate")
        _unsupported(n=req.n, logprobs=req.logprobs, suffix=req.suffix, echo=req.echo)
        prompt, prefix = _completion_prompt(req.prompt)
        greq = GenerationRequest(new_request_id(), prompt, _sampling(req, None), prefix_token_ids=prefix)
        events = await self._generations.open(record, greq, "openai", started)
        rid, created = stream.new_id("cmpl-"), int(time.time())
        if req.stream:
            chunks = stream.CompletionChunks(rid, created, req.model, _include_usage(req))
            return _sse(events, chunks, chunks.text)
        text, final = await events.collect()
        body = stream.text_completion(
            rid, created, req.model, text, final.finish_reason, final.prompt_tokens, final.output_tokens
        )
        return _json_body(body, events, final)

    async def models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [_model(r) for r in await self._catalog.records()]})

    async def model(self, request: Request) -> Response:
        return JSONResponse(_model(await self._catalog.resolve(request.path_params["model"])))


def _json_body(body: dict[str, Any], events: EventStream, final: Final) -> JSONResponse:
    router_ns = events.router_ns()
    return JSONResponse(body | stream.router_ms(router_ns), headers=stream.server_timing(router_ns, final.worker_ns))


def _model(r: ModelRecord) -> dict[str, Any]:
    return {"id": r.name, "object": "model", "created": r.modified_ns // 1_000_000_000, "owned_by": "library"}


def _sampling(req: ChatCompletionRequest | CompletionRequest, max_completion_tokens: int | None) -> Sampling:
    return openai_sampling(
        max_tokens=max_completion_tokens or req.max_tokens,
        temperature=req.temperature,
        top_p=req.top_p,
        seed=req.seed,
        stop=req.stop,
        presence_penalty=req.presence_penalty,
        frequency_penalty=req.frequency_penalty,
        response_format=getattr(req, "response_format", None),
    )


def _include_usage(req: ChatCompletionRequest | CompletionRequest) -> bool:
    return bool(req.stream_options and req.stream_options.include_usage)


def _unsupported(**fields: Any) -> None:
    """Fields Herd does not implement yet get a clear 400 instead of being silently dropped."""
    for name, value in fields.items():
        if name == "n" and value in (None, 1):
            continue
        if value not in (None, False, [], ""):
            raise BadRequest(f"'{name}' is not supported yet", param=name)


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
    events: EventStream, chunks: Any, content: Callable[[str], bytes], first: bytes | None = None
) -> StreamingResponse:
    return StreamingResponse(_frames(events, chunks, content, first), media_type=SSE)


async def _frames(
    events: EventStream, chunks: Any, content: Callable[[str], bytes], first: bytes | None
) -> AsyncIterator[bytes]:
    if first is not None:
        yield first
    try:
        async for event in events:
            if isinstance(event, Delta):
                if event.text:
                    yield content(event.text)
            else:
                yield chunks.finish(event.finish_reason, events.router_ns())
                if chunks.include_usage:
                    yield chunks.usage(event.prompt_tokens, event.output_tokens)
    except HerdError as err:
        yield stream.sse_error(err)
    except Exception as exc:
        yield stream.sse_error(EngineError(str(exc)))
    yield stream.DONE
