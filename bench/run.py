"""Herd against bare vLLM and Ray Serve LLM on the same converted model and the same workload.

    .venv/bin/python -m bench.run [--concurrency 1 32] [--requests 64] [--tokens 64] [--rounds 2]

Each round starts every server in turn (the order reverses each round so drift hits all alike),
warms it up, drives it at each concurrency, and stops it. Writes bench/results/latest.json and
latest.png and prints a Markdown table. Herd is measured through both of its APIs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import cpu
from bench.load import OLLAMA, OLLAMA_DEFAULTS, OPENAI, OPENAI_SAMPLED, VLLM_AS_OLLAMA, Api, run_load
from router.driver.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


@dataclass(frozen=True)
class Server:
    name: str
    command: list[str]
    model: str
    apis: dict[str, Api]


# `--sampling default`: each API with its own default sampling, and vLLM once with each, so every
# Herd API is compared with vLLM doing the same sampling (table column "vs vLLM, same sampling").
HERD_APIS = {
    "greedy": {"herd-openai": OPENAI, "herd-ollama": OLLAMA},
    "default": {"herd-openai": OPENAI_SAMPLED, "herd-ollama": OLLAMA_DEFAULTS},
}
VLLM_APIS = {"greedy": {"vllm": OPENAI}, "default": {"vllm": OPENAI_SAMPLED, "vllm-ollama-sampling": VLLM_AS_OLLAMA}}
# Run unless `--only` names others; "herd-compiled" (Herd with torch.compile) is asked for by name.
DEFAULT_CONTENDERS = ("herd", "vllm", "rayllm")
# Which vLLM run each Herd API is held against.
SAME_SAMPLING = {"herd-ollama": {"default": "vllm-ollama-sampling"}}


def chat_only_config(compiled: bool = False) -> Path:
    """Herd's embedded default without its embedding model: every contender serves one model.
    `compiled`: torch.compile, vLLM's own default, instead of Herd's CPU default `enforce_eager`."""
    from bench.configs import chat_only_yaml, default_chat

    engine = default_chat().engine | {"enforce_eager": not compiled}
    path = Path(tempfile.gettempdir()) / f"herd-bench-chat{'-compiled' if compiled else ''}.yaml"
    path.write_text(chat_only_yaml(engine=engine))
    return path


def servers(model_dir: str, port: int, sampling: str = "greedy") -> list[Server]:
    herd = [str(Path(PY).with_name("herd")), "serve", "--port", str(port), "--config"]
    compiled_api = {"herd-compiled-openai": HERD_APIS[sampling]["herd-openai"]}
    return [
        Server("herd", [*herd, str(chat_only_config())], "smollm2", HERD_APIS[sampling]),
        Server("herd-compiled", [*herd, str(chat_only_config(compiled=True))], "smollm2", compiled_api),
        Server("vllm", [PY, "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir,
                        "--served-model-name", "smollm2", "--max-model-len", "2048", "--dtype", "bfloat16",
                        "--enforce-eager", "--port", str(port)],
               "smollm2", VLLM_APIS[sampling]),
        Server("rayllm", [PY, str(ROOT / "bench" / "rayllm_server.py"), model_dir, str(port)], "smollm2",
               {"rayllm": OPENAI}),
    ]  # fmt: skip


def wait_ready(base: str, proc: subprocess.Popen[bytes], model: str, timeout: float = 600) -> float:
    started = time.monotonic()
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.post(f"{base}/v1/chat/completions", json=body, timeout=60).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError("server not ready")


def cpu_busy(window_s: float = 1.0) -> float:
    """Fraction of all cores busy over `window_s` (from /proc/stat)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)

    busy0, total0 = sample()
    time.sleep(window_s)
    busy1, total1 = sample()
    return (busy1 - busy0) / max(total1 - total0, 1)


def settle(limit: float = 0.15, timeout_s: float = 90) -> float:
    """Wait until start-up work (Ray's pre-started workers, engine warm-up) stops using the CPU."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s and cpu_busy() > limit:
        pass
    return time.monotonic() - started


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
    time.sleep(5)  # let engine processes release their memory and cores


def launch(command: list[str], log_path: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a server the way every benchmark here does: the same engine memory (Herd's own CPU
    default, set for vLLM's server too), output to `log_path`, `env` on top."""
    full = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "PYTHONPATH": str(ROOT), **(env or {})}
    with log_path.open("a") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=full, cwd=ROOT)


def measure(server: Server, args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    port = free_port()
    server = servers(args.model_dir, port, args.sampling)[[s.name for s in servers("", 0)].index(server.name)]
    base = f"http://127.0.0.1:{port}"
    proc = launch(server.command, log_dir / f"{server.name}.log")
    out: dict[str, Any] = {}
    try:
        ready = wait_ready(base, proc, server.model)
        print(f"  {server.name} ready in {ready:.0f}s, settled in {settle():.0f}s", flush=True)
        for label, api in server.apis.items():
            asyncio.run(run_load(base, api, server.model, concurrency=4, requests=8, tokens=16))  # warm-up
            for c in args.concurrency:
                # Sequential runs at low concurrency need fewer requests for stable medians.
                n = min(args.requests, 8 * c)
                before = cpu.snapshot()
                stats = asyncio.run(run_load(base, api, server.model, concurrency=c, requests=n, tokens=args.tokens))
                stats["cpu_s_per_4096_tokens"] = cpu.breakdown(before, cpu.snapshot(), stats["output_tokens"])
                stats["ready_s"] = round(ready, 1)  # launch to the first answer: the cold start
                out.setdefault(label, {})[str(c)] = stats
                if args.profile:
                    print(cpu.format_breakdown(f"{label} @{c}", stats["cpu_s_per_4096_tokens"]), flush=True)
                print(f"  {label} @{c}: {stats['tokens_per_s']} tok/s, ttft p50 {stats['ttft_ms']['p50']} ms, "
                      f"itl p50/p99 {stats['itl_ms']['p50']}/{stats['itl_ms']['p99']} ms, errors {stats['errors']}",
                      flush=True)  # fmt: skip
    finally:
        stop(proc)
    return out


def merge(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per contender and concurrency: the median round by tokens/s (rounds stay in the JSON too)."""
    merged: dict[str, Any] = {}
    for label in {k for r in rounds for k in r}:
        for c in {k for r in rounds for k in r.get(label, {})}:
            runs = sorted((r[label][c] for r in rounds if c in r.get(label, {})), key=lambda s: s["tokens_per_s"])
            merged.setdefault(label, {})[c] = runs[len(runs) // 2]
    return merged


def table(merged: dict[str, Any], concurrency: list[int], sampling: str = "greedy") -> str:
    """Markdown rows; "vs vLLM" holds each contender to vLLM with the same sampling."""
    lo, hi = str(concurrency[0]), str(concurrency[-1])
    rows = [f"| server | TTFT p50 @{lo} | ITL p50 @{lo} | ITL p99 @{lo} | tokens/s @{lo} | tokens/s @{hi} | "
            f"TTFT p50 @{hi} | errors | vs vLLM @{hi}, same sampling |",
            "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    known = ["vllm", "vllm-ollama-sampling", "rayllm", "herd-openai", "herd-ollama", "herd-compiled-openai"]
    for label in [k for k in known if k in merged] + sorted(merged.keys() - set(known)):
        baseline = SAME_SAMPLING.get(label, {}).get(sampling, "vllm")
        base = merged.get(baseline, {}).get(hi, {}).get("tokens_per_s") or 0
        a, b = merged[label].get(lo, {}), merged[label].get(hi, {})
        ratio = f"{b['tokens_per_s'] / base:.2f}" if base and b else "-"
        errors = sum(s["errors"] for s in merged[label].values())
        rows.append(
            f"| {label} | {a['ttft_ms']['p50']} ms | {a['itl_ms']['p50']} ms | {a['itl_ms']['p99']} ms | "
            f"{a['tokens_per_s']} | {b['tokens_per_s']} | {b['ttft_ms']['p50']} ms | {errors} | {ratio} |"
        )
    return "\n".join(rows)


def chart(merged: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for label, per_c in sorted(merged.items()):
        cs = sorted(per_c, key=int)
        axes[0].plot([int(c) for c in cs], [per_c[c]["tokens_per_s"] for c in cs], marker="o", label=label)
        axes[1].plot([int(c) for c in cs], [per_c[c]["ttft_ms"]["p50"] for c in cs], marker="o", label=label)
    axes[0].set(title="Output tokens/s", xlabel="concurrent streams", xscale="log")
    axes[1].set(title="TTFT p50 (ms)", xlabel="concurrent streams", xscale="log", yscale="log")
    axes[0].legend()
    fig.suptitle("SmolLM2-135M bf16, vLLM-CPU, 2 cores: streaming chat")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--requests", type=int, default=64, help="per concurrency level, at most 8x concurrency")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sampling", choices=sorted(HERD_APIS), default="greedy", help="greedy, or each API's default")
    parser.add_argument("--profile", action="store_true", help="print CPU seconds per process role per 4,096 tokens")
    parser.add_argument("--only", nargs="*", default=None, help="server names: herd, herd-compiled, vllm, rayllm")
    parser.add_argument("--model-dir", default=str(Path(os.environ.get("HERD_DATA_DIR", Path.home() / ".herd"))
                                                   / "models" / "smollm2--135m"))  # fmt: skip
    args = parser.parse_args()
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    contenders = [s for s in servers(args.model_dir, 0) if s.name in (args.only or DEFAULT_CONTENDERS)]
    rounds = []
    for i in range(args.rounds):
        order = contenders if i % 2 == 0 else contenders[::-1]
        print(f"round {i + 1}: {', '.join(s.name for s in order)}", flush=True)
        result: dict[str, Any] = {}
        for server in order:
            result |= measure(server, args, out_dir)
        rounds.append(result)
        # Kept as each round ends: a later round that fails does not lose the earlier ones.
        (out_dir / "rounds.json").write_text(json.dumps({"args": vars(args), "rounds": rounds}, indent=2))
    merged = merge(rounds)
    report = {"args": vars(args), "median": merged, "rounds": rounds}
    (out_dir / "latest.json").write_text(json.dumps(report, indent=2))
    chart(merged, out_dir / "latest.png")
    print(table(merged, args.concurrency, args.sampling))


if __name__ == "__main__":
    main()
