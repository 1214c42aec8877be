"""Tool calling on any model: what the prompt offers, how output is constrained, and how model
text becomes tool calls again.

Modes (OpenAI's `tool_choice`; Ollama's `/api/chat` is always `auto`):
- `none`: tools are not offered; output is text.
- `auto`: tools go to the model's chat template (or the worker's Hermes-style system prompt for a
  template without tools), and `AutoReader` finds calls in the output: `<tool_call>{...}</tool_call>`
  blocks (the format of vLLM's `hermes` parser, which Qwen2.5, Hermes and SmolLM3 templates use),
  or a whole answer that is one bare `{"name", "arguments"|"parameters"}` object (Llama 3.1 style).
  Only names of offered tools count; anything else stays text.
- a named function: guided decoding constrains the output to that function's `parameters` schema,
  so every model produces valid arguments; they stream as argument fragments.
- `required`: guided decoding constrains the output to an array of `{"name", "arguments"}` objects
  (one per call, `anyOf` the tools); each call goes out whole as soon as its object closes.

Readers turn text deltas into `Text`, `CallStart` and `CallArgs` pieces; a call's `id` travels only
on its `CallStart`, as OpenAI's streamed deltas carry it only in the first delta of each call.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from router.errors import BadRequest
from router.ids import ollama_call_id
from workers.events import Sampling
from workers.tool_prompt import TOOL_CALL_CLOSE, TOOL_CALL_OPEN

OPEN, CLOSE = TOOL_CALL_OPEN, TOOL_CALL_CLOSE
_DECODER = json.JSONDecoder()
Mode = Literal["none", "auto", "named", "required"]


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class CallStart:
    index: int
    id: str
    name: str


@dataclass(frozen=True)
class CallArgs:
    index: int
    arguments: str


Piece = Text | CallStart | CallArgs


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as OpenAI sends it


@dataclass(frozen=True)
class ToolPlan:
    """What one request does with tools: the prompt's tools, the mode, and a guided-decoding schema."""

    tools: tuple[dict[str, Any], ...] = ()
    mode: Mode = "none"
    name: str | None = None
    schema: dict[str, Any] | None = None
    single: bool = False  # `parallel_tool_calls: false`: at most one call

    def reader(self, new_id: Callable[[], str]) -> Reader:
        if self.mode == "named":
            assert self.name is not None
            return NamedReader(new_id, self.name)
        if self.mode == "required":
            return RequiredReader(new_id, self._names())
        if self.mode == "auto":
            return AutoReader(new_id, self._names(), self.single)
        return Reader(new_id)

    def _names(self) -> frozenset[str]:
        return frozenset(t["function"]["name"] for t in self.tools)


def plan(tools: Sequence[Any] | None, tool_choice: Any = None, parallel_tool_calls: bool | None = None) -> ToolPlan:
    """Check `tools` and `tool_choice` (OpenAI's shapes; Ollama sends tools only) and pick the mode."""
    functions = tuple(_function_tool(t) for t in tools or ())
    names = [f["function"]["name"] for f in functions]
    if len(set(names)) != len(names):
        raise BadRequest("tools: function names must be unique", param="tools")
    choice = tool_choice if tool_choice is not None else ("auto" if functions else "none")
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = choice.get("allowed_tools") or {}
        keep = {(t.get("function") or {}).get("name") for t in allowed.get("tools") or () if isinstance(t, dict)}
        functions = tuple(f for f in functions if f["function"]["name"] in keep)
        choice = allowed.get("mode", "auto")
    if choice == "none" or (choice == "auto" and not functions):
        return ToolPlan()
    if not functions:
        raise BadRequest("tool_choice needs at least one function in 'tools'", param="tool_choice")
    if choice == "auto":
        return ToolPlan(functions, "auto", single=parallel_tool_calls is False)
    if choice == "required":
        items = [_call_schema(f["function"]) for f in functions]
        schema: dict[str, Any] = {"type": "array", "minItems": 1, "items": {"anyOf": items}}
        if parallel_tool_calls is False:
            schema["maxItems"] = 1
        return ToolPlan(functions, "required", schema=schema)
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        match = next((f for f in functions if f["function"]["name"] == name), None)
        if match is None:
            raise BadRequest(f"tool_choice names function {name!r}, which is not in 'tools'", param="tool_choice")
        return ToolPlan(functions, "named", name, _parameters(match["function"]))
    raise BadRequest(
        "tool_choice must be 'none', 'auto', 'required' or {'type': 'function', 'function': {'name': ...}}",
        param="tool_choice",
    )


def guided(sampling: Sampling, tools: ToolPlan) -> Sampling:
    """A named or required tool choice constrains the output to its schema (guided decoding)."""
    if tools.schema is None:
        return sampling
    if sampling.json_schema is not None or sampling.json_object:
        raise BadRequest("response_format cannot be combined with a named or required tool_choice", param="tool_choice")
    return replace(sampling, json_schema=tools.schema)


def _function_tool(tool: Any) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(tool, dict) or tool.get("type", "function") != "function" or not isinstance(function, dict):
        raise BadRequest("tools: each tool must be {'type': 'function', 'function': {...}}", param="tools")
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequest("tools: every function needs a 'name'", param="tools")
    params = function.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise BadRequest(f"tools: the parameters of {name!r} must be a JSON schema object", param="tools")
    return {"type": "function", "function": {**function, "parameters": _parameters(function)}}


def _parameters(function: dict[str, Any]) -> dict[str, Any]:
    params = function.get("parameters")
    return params if isinstance(params, dict) and params else {"type": "object", "properties": {}}


def _call_schema(function: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"name": {"type": "string", "enum": [function["name"]]}, "arguments": _parameters(function)},
        "required": ["name", "arguments"],
    }


class Reader:
    """`tool_choice: none` (and no tools): text passes through."""

    def __init__(self, new_id: Callable[[], str]) -> None:
        self._new_id = new_id
        self.calls = 0

    def feed(self, text: str) -> list[Piece]:
        return [Text(text)] if text else []

    def finish(self) -> list[Piece]:
        return []

    def _call(self, name: str, arguments: Any) -> list[Piece]:
        index, self.calls = self.calls, self.calls + 1
        return [CallStart(index, self._new_id(), name), CallArgs(index, json.dumps(arguments))]


class NamedReader(Reader):
    """Guided output is the named function's arguments: stream them as fragments of call 0."""

    def __init__(self, new_id: Callable[[], str], name: str) -> None:
        super().__init__(new_id)
        self._name = name

    def feed(self, text: str) -> list[Piece]:
        pieces: list[Piece] = []
        if not self.calls:
            self.calls = 1
            pieces.append(CallStart(0, self._new_id(), self._name))
        return [*pieces, CallArgs(0, text)] if text else pieces

    def finish(self) -> list[Piece]:
        return [] if self.calls else self.feed("{}")


class RequiredReader(Reader):
    """Guided output is a JSON array of `{"name", "arguments"}`: each call goes out once its object
    is complete. Output cut short (max_tokens) keeps the calls completed before the cut."""

    def __init__(self, new_id: Callable[[], str], names: frozenset[str]) -> None:
        super().__init__(new_id)
        self._names = names
        self._text = ""
        self._pos = 0  # where the next array item starts
        self._opened = False

    def feed(self, text: str) -> list[Piece]:
        self._text += text
        pieces: list[Piece] = []
        while True:
            rest = self._text[self._pos :]
            item = rest.lstrip(" \t\r\n," if self._opened else " \t\r\n")
            if not item or item[0] == "]" or (not self._opened and item[0] != "["):
                return pieces
            start = self._pos + len(rest) - len(item)
            if not self._opened:
                self._opened, self._pos = True, start + 1
                continue
            try:
                value, size = _DECODER.raw_decode(item)
            except ValueError:
                return pieces  # the item is not complete yet
            self._pos = start + size
            pieces += [p for name, args in _calls_in(value, self._names) for p in self._call(name, args)]

    def finish(self) -> list[Piece]:
        # Not a single call (output cut before the first item closed): the client still gets the text.
        return [] if self.calls or not self._text else [Text(self._text)]


class AutoReader(Reader):
    """Text, with `<tool_call>` blocks (and a whole-answer bare JSON call) turned into calls.

    Text that may still become a call is held back: a tail that could open `<tool_call>`, a block
    until it closes, and an answer that starts with `{` until the end.
    """

    def __init__(self, new_id: Callable[[], str], names: frozenset[str], single: bool = False) -> None:
        super().__init__(new_id)
        self._names = names
        self._single = single
        self._held = ""
        self._in_call = False
        self._wrote = False  # text (not just whitespace) already went out

    def feed(self, text: str) -> list[Piece]:
        self._held += text
        pieces: list[Piece] = []
        while True:
            if self._in_call:
                end = self._held.find(CLOSE)
                if end < 0:
                    return pieces
                pieces += self._block(self._held[:end])
                self._held = self._held[end + len(CLOSE) :]
                self._in_call = False
                continue
            start = self._held.find(OPEN)
            if start >= 0:
                pieces += self._text(self._held[:start])
                self._held = self._held[start + len(OPEN) :]
                self._in_call = True
                continue
            if not self._wrote and (not self._held.strip() or self._held.lstrip().startswith(("{", "["))):
                return pieces  # may be a bare JSON call: decided at the end
            keep = _partial_tail(self._held, OPEN)
            pieces += self._text(self._held[: len(self._held) - keep])
            self._held = self._held[len(self._held) - keep :]
            return pieces

    def finish(self) -> list[Piece]:
        held, self._held = self._held, ""
        if self._in_call:  # a block the model never closed (it stopped first)
            return self._block(held, closed=False)
        if not self._wrote and (calls := _calls_in(_loads(held), self._names)):
            return self._calls(calls)
        return self._text(held)

    def _block(self, body: str, closed: bool = True) -> list[Piece]:
        calls = _calls_in(_loads(body), self._names)
        if not calls:
            return self._text(f"{OPEN}{body}{CLOSE if closed else ''}")
        return self._calls(calls)

    def _calls(self, calls: list[tuple[str, dict[str, Any]]]) -> list[Piece]:
        if self._single:  # the model went on calling after its one allowed call: drop the rest
            calls = calls[: max(1 - self.calls, 0)]
        return [p for name, args in calls for p in self._call(name, args)]

    def _text(self, text: str) -> list[Piece]:
        if not text:
            return []
        self._wrote = self._wrote or bool(text.strip())
        return [Text(text)]


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _calls_in(value: Any, names: frozenset[str]) -> list[tuple[str, dict[str, Any]]]:
    """`{"name", "arguments"|"parameters"}` objects (one or a list) naming offered tools; else []."""
    items = value if isinstance(value, list) else [value]
    calls = []
    for item in items:
        if not isinstance(item, dict) or item.get("name") not in names:
            return []
        args = item.get("arguments", item.get("parameters", {}))
        if isinstance(args, str):  # some models write the arguments as a JSON string
            args = _loads(args)
        if not isinstance(args, dict):
            return []
        calls.append((str(item["name"]), args))
    return calls


def _partial_tail(text: str, marker: str) -> int:
    """Length of the longest end of `text` that is a proper start of `marker`."""
    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if marker.startswith(text[-size:]):
            return size
    return 0


def assemble(pieces: Sequence[Piece]) -> tuple[str, list[ToolCall]]:
    """Whole text and whole calls from a reader's pieces (non-streaming answers)."""
    text: list[str] = []
    starts: dict[int, CallStart] = {}
    args: dict[int, list[str]] = {}
    for piece in pieces:
        if isinstance(piece, Text):
            text.append(piece.text)
        elif isinstance(piece, CallStart):
            starts[piece.index] = piece
            args[piece.index] = []
        else:
            args[piece.index].append(piece.arguments)
    calls = [ToolCall(s.id, s.name, "".join(args[i])) for i, s in sorted(starts.items())]
    return "".join(text), calls


def arguments_object(call: ToolCall) -> dict[str, Any]:
    """Ollama's arguments are an object; guided output cut short by max_tokens is `{}` rather than a crash."""
    value = _loads(call.arguments)
    return value if isinstance(value, dict) else {}


def history_tool_calls(calls: Sequence[Any] | None, *, arguments_as_text: bool) -> list[dict[str, Any]] | None:
    """Assistant `tool_calls` from a request's history, as chat templates want them (arguments objects).

    OpenAI sends `arguments` as a JSON string, Ollama as an object; a wrong type gets the 400 each
    protocol gives.
    """
    if not calls:
        return None
    out = []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise BadRequest("messages: each tool call needs function.name", param="messages")
        args = function.get("arguments", "{}" if arguments_as_text else {})
        if arguments_as_text:
            parsed = _loads(args) if isinstance(args, str) else None
            if not isinstance(parsed, dict):
                raise BadRequest("messages: tool call arguments must be a JSON object encoded as a string")
            args = parsed
        elif not isinstance(args, dict):
            raise BadRequest("json: cannot unmarshal string into Go value of type api.ToolCallFunctionArguments")
        entry = {"type": "function", "function": {"name": function["name"], "arguments": args}}
        out.append({"id": str(call.get("id") or ollama_call_id()), **entry})
    return out
