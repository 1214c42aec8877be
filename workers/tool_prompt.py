"""Tools for chat templates that cannot render them: a Hermes-style system prompt instead.

Templates that know tools (Qwen2.5, Hermes, Llama 3.1, ...) get `tools=` and the conversation as
is. A template that never mentions `tools` (SmolLM2's plain ChatML, for one) would silently drop
them, so the worker describes them in a system message in the format of vLLM's `hermes` parser
(`<tool_call>{"name": ..., "arguments": {...}}</tool_call>`), and writes earlier tool calls and
tool results into plain message text the same way. The router parses that format back
(`router.convert.tools`, with the tags defined here).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

# The tool-call format: what this prompt asks for, and what the router's reader looks for.
TOOL_CALL_OPEN, TOOL_CALL_CLOSE = "<tool_call>", "</tool_call>"

INSTRUCTIONS = (
    "You are a function calling AI model. You may call one or more functions to assist with the user query. "
    "The function signatures are within <tools></tools> XML tags:\n<tools>\n{tools}\n</tools>\n"
    "For each function call, return a JSON object with the function name and arguments within "
    '<tool_call></tool_call> XML tags:\n<tool_call>\n{{"name": <function-name>, "arguments": <args-json-object>}}\n'
    "</tool_call>"
)


def template_knows_tools(template: str | None) -> bool:
    return bool(template) and "tools" in str(template)


def uses_tools(messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]) -> bool:
    return bool(tools) or any(m.get("tool_calls") or m.get("role") == "tool" for m in messages)


def inline_tools(messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as plain system/user/assistant text messages for a template without tools."""
    out: list[dict[str, Any]] = []
    for m in messages:
        content = str(m.get("content") or "")
        if m.get("role") == "tool":
            # Generic templates may reject unknown roles; Hermes-style models read results as user turns.
            out.append({"role": "user", "content": f"<tool_response>\n{content}\n</tool_response>"})
            continue
        calls = [_call_text(call) for call in m.get("tool_calls") or ()]
        out.append({"role": m["role"], "content": "\n".join([content, *calls]).strip() if calls else content})
    if tools:
        text = INSTRUCTIONS.format(tools="\n".join(json.dumps(t) for t in tools))
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{text}".strip()}
        else:
            out.insert(0, {"role": "system", "content": text})
    return out


def _call_text(call: dict[str, Any]) -> str:
    function = call.get("function") or {}
    body = {"name": function.get("name"), "arguments": function.get("arguments") or {}}
    return f"{TOOL_CALL_OPEN}\n{json.dumps(body)}\n{TOOL_CALL_CLOSE}"
