"""The Ray Serve deployment that hosts one vLLM engine: one replica per GPU (or per CPU slot here)."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray import serve
from ray.serve import Deployment

from workers.channel import EventSender
from workers.engine import Engine
from workers.events import EmbedRequest, EmbedResult, GenerationRequest
from workers.sources import prepare
from workers.spec import ModelSpec
from workers.surface import WorkerSurface
from workers.telemetry import report_forever, vllm_metrics_text

# vLLM's CPU backend reserves 4 GiB of KV cache unless told otherwise; a small model needs far less.
CPU_DEFAULT_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1"}
# Ray Serve's prefix-aware router (it reads `GenerationRequest.messages`); the default is
# Serve's power-of-two-choices on in-flight requests.
PREFIX_ROUTER = "ray.serve.llm.request_router.PrefixCacheAffinityRouter"
PREFIX_IMBALANCE = 8
# Herd's own cache-aware router. A dotted path, not an import: Serve imports it where the deployment is
# built (the manager) and runs it where the handles are (router replicas), never in this process.
CACHE_AWARE_ROUTER = "router.dispatch.cache_router.CacheAwareRouter"

# This machine's CPUs as herd serve got them, set when it started Ray here. The driver narrows every
# other process off the cores a CPU engine pins (router/driver/cpu_placement.py), this one too; an
# engine started from a narrowed process would bind its threads within that narrowed set.
NODE_CPUS_ENV = "HERD_NODE_CPUS"

log = logging.getLogger("herd.worker")


def widen_to_node_cpus() -> None:
    """Let this thread, and the engine processes it starts, run on every CPU herd serve got."""
    cpus = os.environ.get(NODE_CPUS_ENV)
    if cpus:
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})


class ModelWorker:
    """Serve-hosted engine. Handle calls: `generate_to` (events go to a router inbox), `embed`,
    `count_tokens`, `stats`."""

    # Async so the engine's output loop binds to the replica's event loop (Ray awaits it).
    async def __init__(  # type: ignore[misc]
        self, spec: ModelSpec, model_path: str, hub: Any | None, channel_secret: bytes
    ) -> None:
        # Embedding models run vLLM's pooling runner; generation models the default one.
        args = {"runner": "pooling", **spec.engine} if spec.kind == "embed" else spec.engine
        path = await asyncio.to_thread(local_model, spec, model_path)
        widen_to_node_cpus()
        self._engine = Engine.start(path, args)
        self._sender = EventSender(channel_secret)
        if hub is not None:
            replica = serve.get_replica_context().replica_id.unique_id
            labels = {"model": spec.name, "replica": replica}
            self._reporting = asyncio.create_task(
                report_forever(hub, f"{spec.name}#{replica}", labels, vllm_metrics_text)
            )

    async def generate_to(self, request: GenerationRequest, inbox: str) -> None:
        """Run one generation, sending its event batches to the router inbox at `inbox`.

        Returns when the generation ends; errors raise through Ray. Ray cancelling this call
        (the client left) closes the engine's generator, which aborts the vLLM request.
        """
        await self._sender.forward(inbox, request.request_id, self._engine.generate(request))

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        return await self._engine.embed(request)

    async def count_tokens(self, request: GenerationRequest) -> int:
        """The prompt's token count through the model's own chat template and tokenizer; generates nothing."""
        return self._engine.count_prompt_tokens(request)

    async def stats(self) -> dict[str, Any]:
        return {"unfinished": self._engine.num_unfinished(), "pid": os.getpid()}

    async def ping(self) -> bool:
        """For the router's /ready: the engine answers (raises when it is dead)."""
        await self._engine.check_health()
        return True

    async def check_health(self) -> None:
        # Ray restarts a replica whose engine died; a live process alone is not health.
        await self._engine.check_health()

    def __del__(self) -> None:
        engine = getattr(self, "_engine", None)
        if engine is not None:
            engine.shutdown()


def local_model(spec: ModelSpec, model_path: str, store: Path | None = None) -> str:
    """What this node's engine loads. `model_path` was prepared on the node that registered the
    model; a replica on another node (no shared volume, as on Akash) prepares the same source into
    its own node's store (HERD_DATA_DIR/models there). Hub ids are vLLM's to download."""
    if not model_path.startswith("/") or Path(model_path).exists():
        return model_path
    store = store or Path(os.environ.get("HERD_DATA_DIR", Path.home() / ".herd")) / "models"
    return prepare(spec.source, store, Path(model_path).name, progress=log.warning)


def worker_deployment(spec: ModelSpec, deployment_id: str, logging_config: dict[str, Any]) -> Deployment:
    """The Ray Serve deployment for one model: name, replicas and resources from its spec."""
    return serve.deployment(name=deployment_id, logging_config=logging_config, **worker_options(spec))(ModelWorker)


def worker_options(spec: ModelSpec) -> dict[str, Any]:
    """Ray Serve options for a model's worker deployment."""
    env = dict(spec.env)
    if not spec.gpus_per_replica:
        env = {**CPU_DEFAULT_ENV, **env}
    scaling: dict[str, Any] = {"num_replicas": spec.replicas}
    if spec.max_replicas is not None and spec.max_replicas > spec.replicas:
        # Ray Serve scales on ongoing requests per replica (queued ones included), down to
        # `replicas` and up to `max_replicas`; one replica per GPU either way.
        scaling = {
            "autoscaling_config": {
                "min_replicas": spec.replicas,
                "initial_replicas": max(spec.replicas, 1),
                "max_replicas": spec.max_replicas,
                "target_ongoing_requests": spec.target_ongoing_requests,
            }
        }
    return {
        **scaling,
        **request_router(spec),
        "max_ongoing_requests": spec.max_ongoing_requests,
        # Beyond this the handle raises BackPressureError, which the router answers with 503.
        "max_queued_requests": spec.max_queued_requests,
        "ray_actor_options": {
            "num_cpus": spec.cpus_per_replica,
            "num_gpus": spec.gpus_per_replica,
            "runtime_env": {"env_vars": env},
        },
        "health_check_period_s": 10,
        "health_check_timeout_s": 30,
    }


def request_router(spec: ModelSpec) -> dict[str, Any]:
    """The deployment's `request_router_config` for its `routing` (none: Serve's power of two choices)."""
    if spec.routing == "prefix":
        # Prefix affinity only while replicas' queues differ by fewer than this many requests.
        return {
            "request_router_config": {
                "request_router_class": PREFIX_ROUTER,
                "request_router_kwargs": {"imbalanced_threshold": PREFIX_IMBALANCE},
            }
        }
    if spec.routing == "cache-aware":
        return {"request_router_config": {"request_router_class": CACHE_AWARE_ROUTER}}
    return {}


if TYPE_CHECKING:  # mypy checks that the deployment serves the surface routers call
    _serves: type[WorkerSurface] = ModelWorker
