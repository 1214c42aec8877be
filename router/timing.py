"""The router's clock: when a request arrived, and how much of its time the router added.

Every protocol reports the router's added time (Ollama's `router_duration` and `load_duration`,
OpenAI's `router_duration_ms`, the `Server-Timing` header): the router's wall time for the request
minus the time the worker spent on it.
"""

from __future__ import annotations

import time


def now_ns() -> int:
    return time.monotonic_ns()


def added_ns(started_ns: int, worker_ns: int) -> int:
    """The router's added time so far (at least 1 ns, so Ollama's omitempty never drops it)."""
    return max(now_ns() - started_ns - worker_ns, 1)
