"""Ollama's `keep_alive`: how long a model stays loaded after a request.

A JSON number or an integer string is seconds; other strings are Go durations ("5m", "1h30m",
"300ms"). Negative
means forever, zero means unload as soon as the request ends.
"""

from __future__ import annotations

import re
import time
from typing import Any

from router.errors import BadRequest

_UNITS_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def keep_alive_ns(value: Any, default: Any) -> int | None:
    """Nanoseconds to stay loaded after the request (None: forever); `default` when `value` is None."""
    if value is None:
        value = default
    if isinstance(value, bool):
        raise BadRequest(f"invalid keep_alive: {value!r}")
    if isinstance(value, int | float):
        return None if value < 0 else int(value * 10**9)
    if not isinstance(value, str):
        raise BadRequest(f"invalid keep_alive: {value!r}")
    if re.fullmatch(r"[-+]?\d+", value.strip()):
        # A bare integer is seconds, as Ollama's OLLAMA_KEEP_ALIVE reads it ("-1" is forever).
        return keep_alive_ns(int(value), default)
    return _go_duration(value)


def _go_duration(text: str) -> int | None:
    sign, body = (-1, text[1:]) if text.startswith("-") else (1, text.lstrip("+"))
    if body == "0":
        return 0
    total, pos = 0.0, 0
    for match in _PART.finditer(body):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS_NS[match.group(2)]
        pos = match.end()
    if not body or pos != len(body):
        raise BadRequest(f'time: invalid duration "{text}"')
    return None if sign < 0 else int(total)


def expiry_ns(keep_alive_ns: int | None) -> int | None:
    """Wall-clock ns when a model may unload after a request with this keep-alive (None: never)."""
    return None if keep_alive_ns is None else time.time_ns() + keep_alive_ns
