"""Ollama Modelfiles: parse, build from /api/create fields, merge, and render for /api/show.

Pure functions, no I/O. The grammar follows Ollama's `parser/parser.go`: case-insensitive
instructions, `#` comment lines, values bare, "quoted" or \"\"\"triple-quoted\"\"\" (both quote
kinds may span lines; a value ends at the first line end where it is complete). Unlike Ollama,
every parse error names its 1-based line, so a user can find the typo in a long template.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from router.errors import BadRequest

# Ollama's api.Options + Runner, by JSON name. `stop` is the one list-valued option.
_OPTIONS: Mapping[str, type] = {
    "num_keep": int, "seed": int, "num_predict": int, "top_k": int, "top_p": float, "min_p": float,
    "typical_p": float, "repeat_last_n": int, "temperature": float, "repeat_penalty": float,
    "presence_penalty": float, "frequency_penalty": float, "stop": list,
    "num_ctx": int, "num_batch": int, "num_gpu": int, "main_gpu": int, "use_mmap": bool, "num_thread": int,
    "draft_num_predict": int,
    # Dropped from Options by newer Ollama but still found in published Modelfiles; Ollama warns and
    # continues, so refusing them would break copy-pasted files. They are kept (typed) and ignored downstream.
    "penalize_newline": bool, "low_vram": bool, "f16_kv": bool, "logits_all": bool, "vocab_only": bool,
    "use_mlock": bool, "mirostat": int, "mirostat_tau": float, "mirostat_eta": float, "numa": bool,
    "tfs_z": float,
}  # fmt: skip
_ROLES = ("system", "user", "assistant", "tool")
_INSTRUCTIONS = ("FROM", "PARAMETER", "TEMPLATE", "SYSTEM", "LICENSE", "MESSAGE", "REQUIRES")
# Ollama instructions Herd cannot honour: each changes which weights run, or names Ollama-internal code.
_UNSUPPORTED = {
    "ADAPTER": "LoRA adapters are not supported by Herd; merge the adapter into the weights and use FROM",
    "DRAFT": "draft models for speculative decoding are not supported by Herd",
    "RENDERER": "RENDERER names Ollama-internal prompt code, which Herd does not have; use TEMPLATE",
    "PARSER": "PARSER names Ollama-internal output code, which Herd does not have",
}

_INT = re.compile(r"[+-]?[0-9]+")  # Go strconv.ParseInt(s, 10, 64): no spaces, underscores or decimals
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_BOOLS = {"1": True, "t": True, "T": True, "true": True, "True": True, "TRUE": True}
_BOOLS |= {"0": False, "f": False, "F": False, "false": False, "False": False, "FALSE": False}
_SEMVER = re.compile(r"v?[0-9]+(\.[0-9]+){0,2}([-+][0-9A-Za-z.+-]+)?")
_HEAD = re.compile(r"([^ \t]*)(?:[ \t](.*))?", re.DOTALL)  # a name, then (after one blank) the rest


@dataclass(frozen=True)
class Modelfile:
    """One model's definition. `parameters` holds typed option values; `stop` is a list[str]."""

    base: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    system: str | None = None
    template: str | None = None
    license: tuple[str, ...] = ()
    messages: tuple[dict[str, str], ...] = ()


def parse_modelfile(text: str) -> Modelfile:
    """Parse Modelfile text; every error is a `BadRequest` starting "line N: "."""
    # Ollama counts "\r\n" as two lines and keeps "\r" inside values; normalise both away.
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    fields: dict[str, Any] = {"parameters": {}, "license": [], "messages": []}
    for lineno, name, rest in _instructions(lines):
        _apply(fields, lineno, name, rest)
    if "base" not in fields:
        end = max(1, len(lines) - (lines[-1] == ""))
        raise BadRequest(f"line {end}: no FROM line (every Modelfile needs exactly one)")
    return Modelfile(
        base=fields["base"],
        parameters=fields["parameters"],
        system=fields.get("system") or None,
        template=fields.get("template") or None,
        license=tuple(fields["license"]),
        messages=tuple(fields["messages"]),
    )


def from_fields(
    *,
    base: str,
    system: str | None,
    template: str | None,
    parameters: Mapping[str, Any] | None,
    messages: Sequence[Mapping[str, Any]] | None,
    license: str | Sequence[str] | None,
) -> Modelfile:
    """Build a Modelfile from /api/create's JSON fields (`from`, `system`, ...), checked like a parsed file.

    JSON types apply (numbers, booleans, string arrays); `""` for system/template means unset, as in Ollama.
    Message roles are lower-cased, as Ollama does for JSON messages; keys besides role/content are dropped.
    """
    if not isinstance(base, str) or not base.strip():
        raise BadRequest("from is required: a model name or a weights source", param="from")
    if license is not None and not isinstance(license, str | Sequence):
        raise BadRequest("license must be a string or an array of strings", param="license")
    licenses = [license] if isinstance(license, str) else list(license or ())
    mf = Modelfile(
        base=base.strip(),
        parameters=_json_parameters(parameters or {}),
        system=_text("system", system) or None,
        template=_text("template", template) or None,
        license=tuple(_text("license", s) for s in licenses if s != ""),
        messages=tuple(_json_message(m) for m in messages or ()),
    )
    for where, value in _texts(mf):
        if _unquotable(value):
            raise BadRequest(f'{where} has a line ending in """, which a Modelfile cannot represent')
    return mf


def merge(base: Modelfile, child: Modelfile) -> Modelfile:
    """The effective Modelfile of `child`, a model derived `FROM` the model that `base` describes.

    The child's system/template win when set; parameters merge key by key (a child `stop` replaces the
    whole list); messages and license are replaced only when the child has some. The result keeps the
    parent's `base`: the child's FROM only names the parent, while the weights come from the parent's source.
    """
    return Modelfile(
        base=base.base or child.base,
        # Lists are copied so the derived model never shares a mutable `stop` with its parent.
        parameters={k: list(v) if isinstance(v, list) else v for k, v in (base.parameters | child.parameters).items()},
        system=base.system if child.system is None else child.system,
        template=base.template if child.template is None else child.template,
        license=child.license or base.license,
        messages=child.messages or base.messages,
    )


def render(name: str, mf: Modelfile) -> str:
    """The `modelfile` text of /api/show; `parse_modelfile` reads it back to an equal Modelfile."""
    out = [
        '# Modelfile generated by "herd show"',
        "# To build a new Modelfile based on this, replace FROM with:",
        f"# FROM {name}",
        "",
        f"FROM {_quote(mf.base)}",
    ]
    if mf.template is not None:
        out.append(f'TEMPLATE """{mf.template}"""')
    if mf.system is not None:
        out.append(f'SYSTEM """{mf.system}"""')
    out += [f"PARAMETER {key} {_quote(_modelfile_value(v))}" for key, v in _parameter_lines(mf.parameters)]
    out += [f"MESSAGE {m['role']} {_quote(m['content'])}" for m in mf.messages]
    out += [f'LICENSE """{text}"""' for text in mf.license]
    return "\n".join(out) + "\n"


def parameters_text(parameters: Mapping[str, Any]) -> str:
    """The `parameters` block of /api/show: Go's `%-30s %#v` per value, one line per stop string."""
    return "\n".join(f"{key:<30} {_go_value(v)}" for key, v in _parameter_lines(parameters))


# --- parsing -------------------------------------------------------------------------------------


def _instructions(lines: list[str]) -> Iterator[tuple[int, str, str]]:
    """Yield (line number, upper-cased instruction, the whole value text) with quoted values joined."""
    i = 0
    while i < len(lines):
        lineno, line = i + 1, lines[i].lstrip(" \t")
        i += 1
        if not line or line.startswith("#"):
            continue
        head = _HEAD.fullmatch(line)
        assert head is not None  # the pattern matches any single line
        name, rest = head.group(1).upper(), head.group(2) or ""
        if name not in _INSTRUCTIONS:
            if name in _UNSUPPORTED:
                raise BadRequest(f"line {lineno}: {_UNSUPPORTED[name]}")
            raise BadRequest(
                f'line {lineno}: unknown instruction "{head.group(1)}" (expected {", ".join(_INSTRUCTIONS)})'
            )
        if name in ("PARAMETER", "MESSAGE"):
            # The value proper starts after the parameter name / role; quoting applies to it alone.
            key, rest = _split_key(lineno, name, rest)
            value, i = _read_value(lines, i, lineno, rest)
            yield lineno, name, f"{key} {value}"
        else:
            value, i = _read_value(lines, i, lineno, rest)
            yield lineno, name, value


def _split_key(lineno: int, name: str, rest: str) -> tuple[str, str]:
    head = re.fullmatch(r"[ \t]*([A-Za-z0-9_]+)[ \t](.*)", rest, re.DOTALL)
    if head is None:
        what = "a parameter name and a value" if name == "PARAMETER" else "a role and content"
        raise BadRequest(f"line {lineno}: {name} needs {what}")
    return head.group(1), head.group(2)


def _read_value(lines: list[str], i: int, lineno: int, text: str) -> tuple[str, int]:
    """Unquote a value, pulling in following lines until its quote closes at a line end (as Ollama)."""
    while True:
        s = text.strip()
        quote = '"""' if s.startswith('"""') else '"' if s.startswith('"') else ""
        if not quote:
            return s, i
        if len(s) >= 2 * len(quote) and s.endswith(quote):
            return s[len(quote) : -len(quote)], i
        if i >= len(lines):
            raise BadRequest(f"line {lineno}: unterminated {quote} quote (opened here)")
        text, i = f"{text}\n{lines[i]}", i + 1


def _apply(fields: dict[str, Any], lineno: int, name: str, value: str) -> None:
    if name == "FROM":
        if "base" in fields:
            raise BadRequest(f"line {lineno}: a second FROM line (Herd builds a model from exactly one)")
        if not value:
            raise BadRequest(f"line {lineno}: FROM needs a model name or a path")
        fields["base"] = value
    elif name == "PARAMETER":
        key, raw = value.split(" ", 1)
        _set_parameter(fields["parameters"], key, _typed(lineno, key, raw))
    elif name == "MESSAGE":
        role, content = value.split(" ", 1)
        if role not in _ROLES:  # case-sensitive, as in Ollama
            raise BadRequest(f'line {lineno}: invalid message role "{role}" (expected {", ".join(_ROLES)})')
        fields["messages"].append({"role": role, "content": content})
    elif name == "LICENSE":
        fields["license"].append(value)
    elif name == "REQUIRES":
        # A minimum Ollama version; meaningless for Herd, but a malformed one is still a typo worth reporting.
        if not _SEMVER.fullmatch(value):
            raise BadRequest(f"line {lineno}: requires must be a valid semver (e.g. 0.14.0)")
    else:  # SYSTEM, TEMPLATE: the last one wins, as in Ollama
        fields[name.lower()] = value


def _typed(lineno: int, key: str, raw: str) -> Any:
    kind = _OPTIONS.get(key)
    if kind is None:  # option names are case-sensitive JSON names, as in Ollama
        raise BadRequest(f'line {lineno}: unknown parameter "{key}"')
    if kind is list:
        return raw
    if kind is bool and raw in _BOOLS:
        return _BOOLS[raw]
    if kind is int and _INT.fullmatch(raw) and -(2**63) <= int(raw) < 2**63:
        return int(raw)
    if kind is float and _FLOAT.fullmatch(raw) and math.isfinite(float(raw)):
        return float(raw)
    raise BadRequest(f'line {lineno}: parameter "{key}" must be {_KIND_TEXT[kind]}, got "{raw}"')


_KIND_TEXT = {int: "an integer", float: "a number", bool: "a boolean (true or false)", list: "a string"}


def _set_parameter(params: dict[str, Any], key: str, value: Any) -> None:
    if key == "stop":  # stop accumulates; any other repeated parameter is last-wins, as in Ollama
        params.setdefault("stop", []).append(value)
    else:
        params[key] = value


# --- /api/create JSON fields ---------------------------------------------------------------------


def _json_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(parameters, Mapping):
        raise BadRequest("parameters must be an object", param="parameters")
    out: dict[str, Any] = {}
    for key, value in parameters.items():
        kind = _OPTIONS.get(key)
        if kind is None:
            raise BadRequest(f'unknown parameter "{key}"', param="parameters")
        if value is None:  # Ollama's Options.FromMap skips nulls
            continue
        typed = _json_typed(key, kind, value)
        if typed != []:  # an empty stop list says nothing, and would not survive a render
            out[key] = typed
    return out


def _json_typed(key: str, kind: type, value: Any) -> Any:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and number and math.isfinite(value) and value == int(value):
        return int(value)
    if kind is float and number and math.isfinite(value):
        return float(value)
    if kind is list and isinstance(value, str):
        return [value]
    if kind is list and isinstance(value, list) and all(isinstance(s, str) for s in value):
        return list(value)
    kinds = {**_KIND_TEXT, list: "a string or an array of strings"}
    raise BadRequest(f'parameter "{key}" must be {kinds[kind]}', param="parameters")


def _json_message(message: Mapping[str, Any]) -> dict[str, str]:
    role = message.get("role") if isinstance(message, Mapping) else None
    if not isinstance(role, str) or role.lower() not in _ROLES:
        raise BadRequest(f"invalid message role {role!r} (expected {', '.join(_ROLES)})", param="messages")
    return {"role": role.lower(), "content": _text("message content", message.get("content", ""))}


def _text(what: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"{what} must be a string", param="messages" if what.startswith("message") else what)
    # Line ends as a Modelfile has them (see parse_modelfile), so /api/show's text reads back equal.
    return value.replace("\r\n", "\n").replace("\r", "\n")


def _texts(mf: Modelfile) -> Iterator[tuple[str, str]]:
    yield from (("system", mf.system or ""), ("template", mf.template or ""))
    yield from (("license", s) for s in mf.license)
    yield from (("message content", m["content"]) for m in mf.messages)
    yield from (("stop", s) for s in mf.parameters.get("stop", []))


def _unquotable(text: str) -> bool:
    # A quoted value ends at the first line end where it is complete, and Ollama has no escapes.
    return any(line.rstrip().endswith('"""') for line in text.split("\n")[:-1])


# --- rendering -----------------------------------------------------------------------------------


def _parameter_lines(parameters: Mapping[str, Any]) -> list[tuple[str, Any]]:
    # Sorted, so equal Modelfiles render to identical text (Ollama's order is Go's random map order).
    return [(k, item) for k, v in sorted(parameters.items()) for item in (v if isinstance(v, list) else [v])]


def _quote(s: str) -> str:
    """The plainest spelling of `s` that `_read_value` reads back unchanged."""
    if s and "\n" not in s and s == s.strip() and not s.startswith('"'):
        return s
    return f'"{s}"' if '"' not in s else f'"""{s}"""'


def _modelfile_value(value: Any) -> str:
    return value if isinstance(value, str) else _go_value(value)


def _go_value(value: Any) -> str:
    """Go's `%#v`, which Ollama uses for /api/show values."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    return _go_quote(str(value))


def _go_float(value: float) -> str:
    # strconv 'g' with shortest digits: exponent form below 1e-4 or from 1e6 up ("1e+06"), else plain.
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    d = Decimal(repr(value)).normalize()
    exp = d.adjusted()
    if -4 <= exp < 6:
        return f"{d:f}"
    digits = "".join(map(str, d.as_tuple().digits))
    mantissa = digits[0] + (f".{digits[1:]}" if len(digits) > 1 else "")
    return f"{'-' if d < 0 else ''}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


_GO_ESCAPES = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r"}
_GO_ESCAPES |= {"\t": "\\t", "\v": "\\v"}


def _go_quote(s: str) -> str:
    """Go's strconv.Quote: printable characters as they are, the rest escaped."""
    return '"' + "".join(_go_escape(c) for c in s) + '"'


def _go_escape(c: str) -> str:
    if c in _GO_ESCAPES:
        return _GO_ESCAPES[c]
    if c.isprintable():
        return c
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x20 or code == 0x7F else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
