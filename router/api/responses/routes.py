"""OpenAI Responses API: `POST /v1/responses`, `GET` and `DELETE /v1/responses/{id}`.

Input items become the same engine-neutral `GenerationRequest` as chat completions: messages,
`function_call` items (assistant tool calls) and `function_call_output` items (tool messages),
after the stored conversation that `previous_response_id` names. Tools and `tool_choice` go
through the shared tool plan; `text.format` through the shared sampling checks (guided decoding).
With `store` (OpenAI's default), the finished response and its conversation go to Redis before
the client sees it finish, so a follow-up may arrive at any router replica. Images, files,
hosted tools (web search, file search, ...), reasoning and background mode are refused with a 400.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from router.api.body import parse_json_body
from router.api.bounds import Caps
from router.api.frames import server_timing
from router.api.resolve import resolve_generation
from router.api.responses import encode
from router.catalog.catalog import Catalog
from router.catalog.responses import ResponseStore, Stored
from router.convert.options import openai_sampling, responses_format
from router.convert.tools import Reader, ToolCall, ToolPlan, arguments_object, guided, history_tool_calls, plan
from router.dispatch.choices import collect, steps
from router.dispatch.generation import EventStream, Generations
from router.errors import BadRequest, UnknownResponse
from router.ids import new_request_id, openai_call_id, openai_id
from router.protocol import responses as wire
from router.protocol.responses import ResponsesRequest
from router.timing import now_ns
from workers.events import ChatPrompt, GenerationRequest, Sampling

SSE = "text/event-stream"
TEXT_PARTS = ("input_text", "output_text", "text", "refusal")


class ResponsesApi:
    def __init__(self, catalog: Catalog, generations: Generations, store: ResponseStore, caps: Caps) -> None:
        self._catalog = catalog
        self._generations = generations
        self._store = store
        self._caps = caps

    async def create(self, request: Request) -> Response:
        started = now_ns()
        req = parse_json_body(ResponsesRequest, await request.body())
        record = await resolve_generation(self._catalog, request, req.model, "chat")
        _refuse(req)
        conversation = await self._history(req.previous_response_id)
        conversation += input_messages(req.input, conversation)
        tools = tool_plan(req)
        system = [{"role": "system", "content": req.instructions}] if req.instructions else []
        prompt = ChatPrompt(record.chat_messages([*system, *conversation]), tools.tools)
        sampling = guided(self._caps.sampling(_sampling(req), "max_output_tokens"), tools)
        greq = GenerationRequest(new_request_id(), prompt, sampling, truncate=_truncate(req))
        events = await self._generations.open(record, greq, "responses", started)
        head, reader = _head(req), tools.reader(openai_call_id)
        if req.stream:
            frames = self._frames(events, reader, encode.ResponseStream(head), conversation, req.store)
            return StreamingResponse(frames, media_type=SSE)
        answer = await collect(events, reader)
        body = head.final_body(encode.output_items(head, answer.text, answer.calls), answer.final)
        if req.store:
            await self._store.put(body, [*conversation, assistant_message(body["output"])])
        return JSONResponse(body, headers=server_timing(events.router_ns(), answer.final.worker_ns))

    async def get(self, request: Request) -> Response:
        return JSONResponse((await self._stored(request.path_params["response_id"])).response)

    async def delete(self, request: Request) -> Response:
        response_id = request.path_params["response_id"]
        if not await self._store.delete(response_id):
            raise UnknownResponse(f"Response with id '{response_id}' not found.")
        deleted: wire.Deleted = {"id": response_id, "object": "response.deleted", "deleted": True}
        return JSONResponse(deleted)

    async def _stored(self, response_id: str, param: str | None = None) -> Stored:
        stored = await self._store.get(response_id)
        if stored is None:
            raise UnknownResponse(f"Response with id '{response_id}' not found.", param=param)
        return stored

    async def _history(self, previous_response_id: str | None) -> list[dict[str, Any]]:
        if previous_response_id is None:
            return []
        return list((await self._stored(previous_response_id, "previous_response_id")).conversation)

    async def _frames(
        self,
        events: EventStream,
        reader: Reader,
        out: encode.ResponseStream,
        conversation: list[dict[str, Any]],
        store: bool,
    ) -> AsyncIterator[bytes]:
        yield out.start()
        try:
            async for step in steps(events, reader):
                frames = out.pieces(step.pieces)
                if step.final is not None:
                    end = out.finish(step.final)
                    if store and out.response is not None:  # stored before the client sees it finish
                        await self._store.put(out.response, [*conversation, assistant_message(out.output)])
                    frames += end
                if frames:
                    yield frames
        except Exception as exc:  # never leave a client hanging without an end
            yield out.error(events.failed(exc))


def _refuse(req: ResponsesRequest) -> None:
    if req.reasoning is not None and req.reasoning.effort not in (None, "none"):
        raise BadRequest("reasoning is not supported by this model", param="reasoning")
    if req.background:
        raise BadRequest("background responses are not supported", param="background")
    if req.top_logprobs:
        raise BadRequest("top_logprobs is not supported on /v1/responses", param="top_logprobs")


def _truncate(req: ResponsesRequest) -> bool:
    """`truncation: auto` drops the oldest messages that do not fit; OpenAI's default is a 400."""
    if req.truncation not in (None, "auto", "disabled"):
        raise BadRequest("truncation must be 'auto' or 'disabled'", param="truncation")
    return req.truncation == "auto"


def _sampling(req: ResponsesRequest) -> Sampling:
    fmt = responses_format(req.text.format if req.text else None)
    return openai_sampling(
        max_tokens=req.max_output_tokens, temperature=req.temperature, top_p=req.top_p, seed=None, stop=None,
        presence_penalty=None, frequency_penalty=None, response_format=fmt,
    )  # fmt: skip


def _head(req: ResponsesRequest) -> encode.Head:
    return encode.Head(
        id=openai_id("resp_"),
        created_at=int(time.time()),
        model=req.model,
        instructions=req.instructions,
        max_output_tokens=req.max_output_tokens,
        parallel_tool_calls=req.parallel_tool_calls is not False,
        previous_response_id=req.previous_response_id,
        store=req.store,
        temperature=1.0 if req.temperature is None else req.temperature,
        text={"format": (req.text.format if req.text else None) or {"type": "text"}},
        tool_choice=req.tool_choice or "auto",
        tools=req.tools or [],
        top_p=1.0 if req.top_p is None else req.top_p,
        metadata=req.metadata or {},
    )


def tool_plan(req: ResponsesRequest) -> ToolPlan:
    """Responses' flat function tools and choices in the shared plan's (chat completions) shapes."""
    functions = []
    for tool in req.tools or ():
        if tool.get("type") != "function":
            raise BadRequest(
                f"tool type {tool.get('type')!r} is not supported: Herd runs function tools only", param="tools"
            )
        function = {k: tool[k] for k in ("name", "description", "parameters") if tool.get(k) is not None}
        functions.append({"type": "function", "function": function})
    return plan(functions, _tool_choice(req.tool_choice), req.parallel_tool_calls)


def _tool_choice(choice: Any) -> Any:
    if not isinstance(choice, dict):
        return choice
    if choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    if choice.get("type") == "allowed_tools":
        allowed = [{"type": "function", "function": {"name": t.get("name")}} for t in choice.get("tools") or ()]
        return {"type": "allowed_tools", "allowed_tools": {"mode": choice.get("mode", "auto"), "tools": allowed}}
    return choice  # a hosted tool's choice: the plan refuses it


def input_messages(items: str | list[dict[str, Any]], history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Input items as chat-template messages; consecutive function_call items form one assistant turn."""
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    names = {c["id"]: c["function"]["name"] for m in history for c in m.get("tool_calls") or ()}
    out: list[dict[str, Any]] = []
    for item in items:
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            out.append(_message(item))
        elif kind == "function_call":
            _add_call(out, item, names)
        elif kind == "function_call_output":
            call_id = str(item.get("call_id") or "")
            output = _content(item.get("output"))
            out.append({"role": "tool", "tool_call_id": call_id, "name": names.get(call_id, ""), "content": output})
        else:
            raise BadRequest(f"input items of type {kind!r} are not supported", param="input")
    return out


def _message(item: dict[str, Any]) -> dict[str, Any]:
    role = item.get("role")
    if role not in ("user", "system", "developer", "assistant"):
        raise BadRequest(f"input: unknown message role {role!r}", param="input")
    return {"role": "system" if role == "developer" else role, "content": _content(item.get("content"))}


def _add_call(out: list[dict[str, Any]], item: dict[str, Any], names: dict[str, str]) -> None:
    function = {"name": item.get("name"), "arguments": item.get("arguments")}
    [call] = history_tool_calls([{"id": item.get("call_id"), "function": function}], arguments_as_text=True) or []
    names[call["id"]] = call["function"]["name"]
    if not (out and out[-1]["role"] == "assistant" and out[-1].get("tool_calls")):
        out.append({"role": "assistant", "content": "", "tool_calls": []})
    out[-1]["tool_calls"].append(call)


def _content(content: Any) -> str:
    """A message's text: a string, or text parts; images and files are refused clearly."""
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for part in content if isinstance(content, list) else [content]:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in TEXT_PARTS:
            raise BadRequest(f"content parts of type {kind!r} are not supported by this model", param="input")
        texts.append(str(part.get("text") or part.get("refusal") or ""))
    return "".join(texts)


def assistant_message(output: list[wire.OutputItem]) -> dict[str, Any]:
    """A response's output as the assistant turn a follow-up continues from (arguments as objects)."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for item in output:
        if item["type"] == "message":
            texts += [part["text"] for part in item["content"]]
        else:
            arguments = arguments_object(ToolCall(item["call_id"], item["name"], item["arguments"]))
            calls.append(
                {"id": item["call_id"], "type": "function", "function": {"name": item["name"], "arguments": arguments}}
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts)}
    return message | {"tool_calls": calls} if calls else message
