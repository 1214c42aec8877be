"""Bytes on the wire shared by every protocol's encoder: compact ASCII JSON, Go's timestamps, timing.

JSON is ASCII-escaped: ollama-python splits lines like `str.splitlines()`, so a raw U+2028,
U+2029 or U+0085 inside a string would cut a line in two.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode()


def sse(obj: Any) -> bytes:
    """One SSE `data:` frame (OpenAI's framing; typed-event protocols add an `event:` line)."""
    return b"data: " + dumps(obj) + b"\n\n"


def typed_sse(name: str, obj: Any) -> bytes:
    """One SSE frame with its `event:` line (Anthropic's and OpenAI Responses' typed events)."""
    return b"event: " + name.encode() + b"\n" + sse(obj)


def rfc3339_nano(epoch_ns: int) -> str:
    """Go's RFC3339Nano in UTC: trailing zeros of the fraction trimmed, none when whole."""
    seconds, nanos = divmod(epoch_ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{base}.{fraction}Z" if fraction else f"{base}Z"


def server_timing(router_ns: int, worker_ns: int) -> dict[str, str]:
    """The standard `Server-Timing` header: the router's added time and the worker's, in ms."""
    return {"Server-Timing": f"router;dur={router_ns / 1e6:.3f}, worker;dur={worker_ns / 1e6:.3f}"}


def router_ms(router_ns: int) -> float:
    """Herd's own OpenAI field `router_duration_ms` on the last chunk or body: the router's added time."""
    return round(router_ns / 1e6, 3)
