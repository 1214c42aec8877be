"""`herd pull NAME`: stream a running Herd's `/api/pull` and draw its progress on the terminal."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

import httpx

BAR_WIDTH = 30


def pull_command(model: str, source: str | None, host: str | None, out: TextIO = sys.stderr) -> int:
    base = _base_url(host or os.environ.get("OLLAMA_HOST") or "127.0.0.1:11434")
    body: dict[str, Any] = {"model": model, "stream": True} | ({"source": source} if source else {})
    # An admin key when auth is on; OLLAMA_API_KEY as the ollama CLI and Python client send it.
    key = os.environ.get("HERD_API_KEY") or os.environ.get("OLLAMA_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    timeout = httpx.Timeout(30, read=None)
    try:
        with httpx.stream("POST", f"{base}/api/pull", json=body, headers=headers, timeout=timeout) as response:
            if response.status_code != 200:
                response.read()
                print(f"Error: {_error_text(response.text)}", file=out)
                return 1
            return _render(response.iter_lines(), out)
    except httpx.HTTPError as exc:
        print(f"Error: cannot reach Herd at {base}: {exc}", file=out)
        return 1


def _render(lines: Any, out: TextIO) -> int:
    """One line per status; a status with a byte count redraws its bar in place."""
    last_status = ""
    for line in lines:
        if not line:
            continue
        event = json.loads(line)
        if "error" in event:
            print(f"\nError: {event['error']}", file=out)
            return 1
        status = event.get("status", "")
        if last_status and status != last_status:
            print(file=out)
        if event.get("total"):
            print("\r" + progress_line(status, event.get("completed", 0), event["total"]), end="", file=out)
        elif status != last_status:
            print(status, end="", file=out)
        last_status = status
        out.flush()
    print(file=out)
    return 0 if last_status == "success" else 1


def progress_line(status: str, completed: int, total: int, width: int = BAR_WIDTH) -> str:
    """`verifying sha256 digest  42% |████████      | 113 MB/270 MB`"""
    share = min(max(completed / total, 0.0), 1.0)
    filled = round(share * width)
    bar = "█" * filled + " " * (width - filled)
    return f"{status} {share:4.0%} |{bar}| {_size(completed)}/{_size(total)}"


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.0f} {unit}"
    return f"{n} B"


def _base_url(host: str) -> str:
    return host.rstrip("/") if "://" in host else f"http://{host}"


def _error_text(text: str) -> str:
    try:
        return str(json.loads(text)["error"])
    except (ValueError, KeyError, TypeError):
        return text.strip() or "unknown error"
