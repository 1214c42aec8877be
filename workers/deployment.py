"""The Ray Serve deployment that hosts one vLLM engine: one replica per GPU (or per CPU slot here)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

from ray import serve

from workers.engine import Engine
from workers.events import Event, GenerationRequest
from workers.spec import ModelSpec

# vLLM's CPU backend reserves 4 GiB of KV cache unless told otherwise; a small model needs far less.
CPU_DEFAULT_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1"}


@serve.deployment
class ModelWorker:
    """Serve-hosted engine. Handle calls: `generate` (streaming), `tokenize`, `stats`."""

    async def __init__(self, spec: ModelSpec, model_path: str) -> None:
        self._spec = spec
        self._engine = Engine.start(model_path, spec.engine)

    async def generate(self, request: GenerationRequest) -> AsyncIterator[list[Event]]:
        async for batch in self._engine.generate(request):
            yield batch

    async def tokenize(self, text: str) -> list[int]:
        return self._engine.tokenize(text)

    async def stats(self) -> dict[str, Any]:
        return {"unfinished": self._engine.num_unfinished(), "pid": os.getpid()}

    async def check_health(self) -> None:
        # Ray restarts a replica whose engine died; a live process alone is not health.
        await self._engine.check_health()

    def __del__(self) -> None:
        engine = getattr(self, "_engine", None)
        if engine is not None:
            engine.shutdown()


def worker_options(spec: ModelSpec) -> dict[str, Any]:
    """Ray Serve options for a model's worker deployment."""
    env = dict(spec.env)
    if not spec.gpus_per_replica:
        env = {**CPU_DEFAULT_ENV, **env}
    return {
        "num_replicas": spec.replicas,
        "max_ongoing_requests": spec.max_ongoing_requests,
        "ray_actor_options": {
            "num_cpus": spec.cpus_per_replica,
            "num_gpus": spec.gpus_per_replica,
            "runtime_env": {"env_vars": env},
        },
        "health_check_period_s": 10,
        "health_check_timeout_s": 30,
    }
