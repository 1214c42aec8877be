"""`herd collections list` and `herd collections delete NAME`: a running Herd's `/herd/collections`."""

from __future__ import annotations

import os
import sys
from typing import TextIO

import httpx

from router.driver.pull_client import _base_url, _error_text


def collections_command(action: str, name: str | None, host: str | None, out: TextIO = sys.stdout) -> int:
    base = _base_url(host or os.environ.get("OLLAMA_HOST") or "127.0.0.1:11434")
    try:
        if action == "delete":
            response = httpx.delete(f"{base}/herd/collections/{name}", timeout=60)
        else:
            response = httpx.get(f"{base}/herd/collections", timeout=60)
    except httpx.HTTPError as exc:
        print(f"Error: cannot reach Herd at {base}: {exc}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"Error: {_error_text(response.text)}", file=sys.stderr)
        return 1
    if action == "delete":
        print(f"deleted '{name}'", file=out)
        return 0
    print(f"{'NAME':<24} {'EMBEDDING MODEL':<24} {'DIMENSIONS':>10} {'POINTS':>8}", file=out)
    for c in response.json()["collections"]:
        print(f"{c['name']:<24} {c['embedding_model']:<24} {c['dimensions']:>10} {c['points']:>8}", file=out)
    return 0
