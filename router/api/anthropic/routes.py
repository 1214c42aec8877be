"""Anthropic Messages API: `/v1/messages` and `/v1/messages/count_tokens`.

Requests become the same engine-neutral `GenerationRequest` as the other protocols: blocks turn
into chat-template messages (tool_use -> assistant tool_calls, tool_result -> tool messages), and
`tool_choice` maps onto the shared tool plan (auto -> the template, any/tool -> guided decoding).
Images, documents, thinking and server tools are refused on purpose with a 400. Errors before the
first byte render in Anthropic's shape in the app's `render_error`; after it, one `error` event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from router.api.anthropic import encode
from router.api.body import parse_json_body
from router.api.bounds import Caps
from router.api.frames import server_timing
from router.api.resolve import resolve_generation
from router.catalog.catalog import Catalog, ModelRecord
from router.convert.options import anthropic_sampling
from router.convert.tools import Reader, ToolPlan, guided, history_tool_calls, plan
from router.dispatch.choices import collect, steps
from router.dispatch.generation import EventStream, Generations
from router.errors import BadRequest
from router.ids import new_request_id, openai_id
from router.protocol import anthropic as wire
from router.protocol.anthropic import Block, CountTokensRequest, MessageParam, MessagesRequest
from router.timing import now_ns
from workers.events import ChatPrompt, GenerationRequest

SSE = "text/event-stream"
# Client tools have no `type` or "custom"; anything else (web_search_20250305, bash_..., ...) runs on
# Anthropic's servers.
CLIENT_TOOL_TYPES = (None, "custom")


def tool_use_id() -> str:
    return openai_id("toolu_")


class AnthropicApi:
    def __init__(self, catalog: Catalog, generations: Generations, caps: Caps) -> None:
        self._catalog = catalog
        self._generations = generations
        self._caps = caps

    async def messages(self, request: Request) -> Response:
        started = now_ns()
        req = parse_json_body(MessagesRequest, await request.body())
        record = await resolve_generation(self._catalog, request, req.model, "chat")
        tools = tool_plan(req)
        sampling = anthropic_sampling(
            max_tokens=req.max_tokens, temperature=req.temperature, top_p=req.top_p, top_k=req.top_k,
            stop=req.stop_sequences,
        )  # fmt: skip
        sampling = guided(self._caps.sampling(sampling, "max_tokens"), tools)
        greq = GenerationRequest(new_request_id(), chat_prompt(req, record, tools), sampling)
        events = await self._generations.open(record, greq, "anthropic", started)
        reader, message_id = tools.reader(tool_use_id), openai_id("msg_")
        if req.stream:
            frames = _frames(events, reader, encode.MessageStream(message_id, req.model))
            return StreamingResponse(frames, media_type=SSE)
        answer = await collect(events, reader)
        content = encode.content_blocks(answer.text, answer.calls)
        body = encode.message(message_id, req.model, content, answer.final, len(answer.calls))
        return JSONResponse(body, headers=server_timing(events.router_ns(), answer.final.worker_ns))

    async def count_tokens(self, request: Request) -> Response:
        """The prompt's tokens as the model sees it: chat template, tools and all, on the model's worker."""
        req = parse_json_body(CountTokensRequest, await request.body())
        record = await resolve_generation(self._catalog, request, req.model, "chat")
        greq = GenerationRequest(new_request_id(), chat_prompt(req, record, tool_plan(req)))
        counted: wire.TokenCount = {"input_tokens": await self._generations.count_tokens(record, greq)}
        return JSONResponse(counted)


def tool_plan(req: CountTokensRequest) -> ToolPlan:
    """Anthropic tools and tool_choice in the shared plan's (OpenAI) terms: any = required, tool = named."""
    functions = []
    for tool in req.tools or ():
        if tool.type not in CLIENT_TOOL_TYPES:
            raise BadRequest(
                f"server tool {tool.type!r} is not supported: Herd runs client tools (with an input_schema) only",
                param="tools",
            )
        function = {"name": tool.name, "description": tool.description or "", "parameters": tool.input_schema}
        functions.append({"type": "function", "function": function})
    choice, parallel = req.tool_choice, None
    if choice is None:
        return plan(functions)
    if choice.disable_parallel_tool_use:
        parallel = False
    if choice.type == "tool":
        return plan(functions, {"type": "function", "function": {"name": choice.name}}, parallel)
    return plan(functions, {"auto": "auto", "any": "required", "none": "none"}[choice.type], parallel)


def chat_prompt(req: CountTokensRequest, record: ModelRecord, tools: ToolPlan) -> ChatPrompt:
    if req.thinking and req.thinking.get("type") != "disabled":
        raise BadRequest("thinking is not supported by this model", param="thinking")
    system = _text(req.system, "system") if req.system is not None else ""
    head = [{"role": "system", "content": system}] if system else []
    names: dict[str, str] = {}  # tool_use id -> tool name, for the tool results that answer them
    messages = [m for message in req.messages for m in _messages(message, names)]
    return ChatPrompt(record.chat_messages([*head, *messages]), tools.tools)


def _messages(message: MessageParam, names: dict[str, str]) -> list[dict[str, Any]]:
    """One Anthropic message as chat-template messages: a user turn's tool results become tool
    messages (before its text, as Anthropic orders them); an assistant turn's tool_use blocks its calls."""
    if isinstance(message.content, str):
        return [{"role": message.role, "content": message.content}]
    blocks = message.content
    _refuse(blocks)
    text = "".join(b.text or "" for b in blocks if b.type == "text")
    if message.role == "assistant":
        uses = [{"id": b.id, "function": {"name": b.name, "arguments": b.input or {}}} for b in blocks
                if b.type == "tool_use"]  # fmt: skip
        out: dict[str, Any] = {"role": "assistant", "content": text}
        if calls := history_tool_calls(uses, arguments_as_text=False):
            out["tool_calls"] = calls
            names |= {c["id"]: c["function"]["name"] for c in calls}
        return [out]
    results = [_tool_result(b, names) for b in blocks if b.type == "tool_result"]
    return [*results, {"role": "user", "content": text}] if text or not results else results


def _tool_result(block: Block, names: dict[str, str]) -> dict[str, Any]:
    if not block.tool_use_id:
        raise BadRequest("messages: a tool_result block needs 'tool_use_id'", param="messages")
    content = block.content
    text = content if isinstance(content, str) or content is None else _text(_blocks(content), "messages")
    return {"role": "tool", "tool_call_id": block.tool_use_id, "name": names.get(block.tool_use_id, ""),
            "content": text or ""}  # fmt: skip


def _blocks(raw: list[dict[str, Any]]) -> list[Block]:
    try:
        return [Block.model_validate(b) for b in raw]
    except ValueError as exc:
        raise BadRequest("messages: each tool_result content item must be a content block", param="messages") from exc


def _text(value: str | Sequence[Block], param: str) -> str:
    if isinstance(value, str):
        return value
    _refuse(value, param)
    return "".join(b.text or "" for b in value if b.type == "text")


REFUSED = {
    "image": "image content is not supported: Herd serves text-only models",
    "document": "document content is not supported: Herd serves text-only models",
    "thinking": "thinking is not supported by this model",
    "redacted_thinking": "thinking is not supported by this model",
}
SERVED = ("text", "tool_use", "tool_result")


def _refuse(blocks: Sequence[Block], param: str = "messages") -> None:
    for block in blocks:
        if block.type in SERVED:
            continue
        reason = REFUSED.get(block.type, f"content blocks of type {block.type!r} are not supported")
        if block.type.startswith("server_tool") or block.type.endswith("_tool_result"):
            reason = "server tools are not supported: Herd runs client tools only"
        raise BadRequest(reason, param=param)


async def _frames(events: EventStream, reader: Reader, out: encode.MessageStream) -> AsyncIterator[bytes]:
    yield out.start()
    try:
        async for step in steps(events, reader):
            frames = out.pieces(step.pieces)
            if step.final is not None:
                frames += out.finish(step.final)
            if frames:
                yield frames
    except Exception as exc:  # never leave a client hanging without an end
        yield encode.error_event(events.failed(exc))
