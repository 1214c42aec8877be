"""Ollama `template` overrides: the subset of Go's text/template that prompt templates use.

Supported: `{{ .System }}`, `{{ .Prompt }}`, `{{ .Response }}`, `{{ if .X }}…{{ else }}…{{ end }}`
and the `{{-`/`-}}` whitespace trims. Anything else is a clear 400, not a silently wrong prompt.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from router.errors import BadRequest

_ACTION = re.compile(r"{{(-?)\s*(.*?)\s*(-?)}}", re.S)
_FIELD = re.compile(r"\.(System|Prompt|Response)")


def render(template: str, values: Mapping[str, str]) -> str:
    """Render `template` with `.System`, `.Prompt` and `.Response` taken from `values`."""
    out: list[str] = []
    # Each frame: (this block is emitted, some branch of this `if` already matched).
    stack: list[tuple[bool, bool]] = []
    emitting = True
    pos = 0
    for m in _ACTION.finditer(template):
        trim_left, action, trim_right = m.groups()
        text = template[pos : m.start()]
        if emitting:
            out.append(text.rstrip() if trim_left else text)
        pos = m.end()
        if trim_right:
            pos += len(template[pos:]) - len(template[pos:].lstrip())
        emitting = _apply(action, values, stack, out, emitting)
    if stack:
        raise BadRequest("template: unclosed {{ if }}")
    if emitting:
        out.append(template[pos:])
    return "".join(out)


def _apply(action: str, values: Mapping[str, str], stack: list[tuple[bool, bool]], out: list[str], on: bool) -> bool:
    if field := _FIELD.fullmatch(action):
        if on:
            out.append(values.get(field.group(1), ""))
        return on
    if cond := re.fullmatch(r"if\s+\.(System|Prompt|Response)", action):
        taken = bool(values.get(cond.group(1)))
        stack.append((on, taken))
        return on and taken
    if action == "else":
        if not stack:
            raise BadRequest("template: {{ else }} without {{ if }}")
        outer, taken = stack[-1]
        stack[-1] = (outer, True)
        return outer and not taken
    if action == "end":
        if not stack:
            raise BadRequest("template: {{ end }} without {{ if }}")
        return stack.pop()[0]
    raise BadRequest(f"template: unsupported action {{{{ {action} }}}}")
