"""The benchmark's table holds each Herd API to vLLM doing the same sampling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bench.load import OLLAMA_DEFAULTS, OPENAI_SAMPLED, VLLM_AS_OLLAMA
from bench.run import DEFAULT_CONTENDERS, servers, table


def _stats(tokens_per_s: float) -> dict[str, Any]:
    return {"ttft_ms": {"p50": 1.0}, "itl_ms": {"p50": 1.0, "p99": 2.0}, "tokens_per_s": tokens_per_s, "errors": 0}


def test_each_api_is_compared_with_vllm_sampling_the_same_way() -> None:
    runs = {"vllm": 300.0, "vllm-ollama-sampling": 160.0, "herd-openai": 285.0, "herd-ollama": 152.0,
            "herd-compiled-openai": 330.0}  # fmt: skip
    merged = {label: {"1": _stats(10), "32": _stats(t)} for label, t in runs.items()}
    ratios = {row.split(" | ")[0].strip("| "): row.rsplit(" | ", 1)[1].strip(" |") for row in
              table(merged, [1, 32], "default").splitlines()[2:]}  # fmt: skip
    assert ratios == {"vllm": "1.00", "vllm-ollama-sampling": "0.53", "herd-openai": "0.95", "herd-ollama": "0.95",
                      "herd-compiled-openai": "1.10"}  # fmt: skip


def test_compiled_herd_runs_only_when_asked_for_and_differs_only_in_enforce_eager() -> None:
    by_name = {s.name: s for s in servers("/m", 1, "default")}
    assert set(DEFAULT_CONTENDERS) < by_name.keys() and "herd-compiled" not in DEFAULT_CONTENDERS
    configs = [yaml.safe_load(Path(by_name[n].command[-1]).read_text()) for n in ("herd", "herd-compiled")]
    eager, compiled = (c["models"][0]["engine"] for c in configs)
    assert eager.pop("enforce_eager") is True and compiled.pop("enforce_eager") is False and eager == compiled


def test_the_sampled_bodies_carry_each_apis_defaults() -> None:
    assert OPENAI_SAMPLED.body("m", 8)["temperature"] == 0.8
    assert OLLAMA_DEFAULTS.body("m", 8)["options"] == {"num_predict": 8}  # Ollama's own defaults apply
    body = VLLM_AS_OLLAMA.body("m", 8)
    assert (body["temperature"], body["top_k"], body["top_p"]) == (0.8, 40, 0.9)
