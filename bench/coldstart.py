"""Cold start and one streamed request, measured from outside as a user sees them.

    .venv/bin/python bench/coldstart.py [--tokens 64]

Starts `herd serve` on a free port and reports, as JSON: seconds from launch to the first
streamed token (cold start), then for one streamed /api/generate request on the warm server its
time to first token and output tokens/s (tokens after the first / time after the first).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from router.driver.ports import free_port

PROMPT = "Why is the sky blue?"


def stream_once(base: str, tokens: int) -> dict[str, float]:
    body = {"model": "smollm2", "prompt": PROMPT, "options": {"temperature": 0, "num_predict": tokens}}
    sent = time.perf_counter()
    first = 0.0
    with httpx.stream("POST", f"{base}/api/generate", json=body, timeout=300) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            part = json.loads(line)
            if not first and part.get("response"):
                first = time.perf_counter()
            if part.get("done"):
                final = part
    end = time.perf_counter()
    return {
        "ttft_s": round(first - sent, 3),
        "tokens": final["eval_count"],
        "tokens_per_s": round((final["eval_count"] - 1) / (end - first), 1),
    }


def first_token_after_launch(base: str, proc: subprocess.Popen[bytes], launched: float) -> float:
    while proc.poll() is None:
        try:
            stream_once(base, 1)
            return time.perf_counter() - launched
        except httpx.HTTPError:
            time.sleep(0.25)
    raise SystemExit(f"herd serve exited with {proc.returncode}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    port = free_port()
    herd = Path(sys.executable).with_name("herd")
    env = {**os.environ, "HERD_PORT": str(port)}
    launched = time.perf_counter()
    proc = subprocess.Popen([str(herd), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        cold = first_token_after_launch(base, proc, launched)
        runs = [stream_once(base, args.tokens) for _ in range(3)]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    print(json.dumps({"cold_start_to_first_token_s": round(cold, 1), "warm_streams": runs}, indent=2))


if __name__ == "__main__":
    main()
