"""How many GPUs, CPUs, how much memory and disk a cluster config needs on Akash, and how its GPU
replicas split over K worker nodes. Pure arithmetic on the config; `sdl.py` turns it into services."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from router.config import ClusterConfig
from router.errors import DeployError
from workers.spec import ModelSpec

GIB = 1024**3
# Bytes per weight by the config's `quantization_level`; unknown levels count as 16-bit.
BYTES_PER_PARAM = {"F32": 4.0, "FP32": 4.0, "BF16": 2.0, "F16": 2.0, "FP16": 2.0, "FP8": 1.0, "Q8_0": 1.0}
QUANT_4BIT = re.compile(r"^(Q4|AWQ|GPTQ|INT4)", re.IGNORECASE)
PARAMS = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMBT])\s*$", re.IGNORECASE)
SCALE = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}
# A model whose size the config does not say gets this much cache.
UNKNOWN_MODEL_GIB = 20
# Room for Ray, the router, a pull in progress and the embedded Redis beside the engines.
OVERHEAD_CPUS = 2
# Host RAM per GPU: vLLM stages weights through host memory while it loads them.
RAM_PER_GPU_GIB = 16


@dataclass(frozen=True)
class Node:
    """One Akash service's share of the cluster: the replicas Herd expects there and what they need."""

    gpus: int
    cpus: int  # the pod's CPU units
    memory_gi: int
    shm_gi: int
    cache_gi: int
    root_gi: int = 20  # the container's writable layer and logs; the image itself is not counted
    # Logical CPUs the node offers Ray: its replicas' exactly, so nothing else (a router replica)
    # fits on a worker while its replicas run. The pod's extra CPUs are for Ray's own processes.
    ray_cpus: int = 0


def replica_demands(config: ClusterConfig) -> list[tuple[str, float]]:
    """(model, GPUs) for every GPU replica the config may run: `max_replicas` when it autoscales."""
    demands = []
    for spec in config.models:
        _check_parallelism(spec)
        if spec.gpus_per_replica:
            demands += [(spec.name, spec.gpus_per_replica)] * _replicas(spec)
    return demands


def _check_parallelism(spec: ModelSpec) -> None:
    gpus = spec.gpus_per_replica
    if gpus > 1 and not gpus.is_integer():
        raise DeployError(f"{spec.name}: gpus_per_replica {gpus} above 1 must be a whole number (Ray's rule)")
    tp = int(spec.engine.get("tensor_parallel_size", 1)) * int(spec.engine.get("pipeline_parallel_size", 1))
    if gpus >= 1 and tp != gpus:
        # vLLM would either leave reserved GPUs idle or look for GPUs Ray did not give the replica.
        raise DeployError(
            f"{spec.name}: tensor_parallel_size x pipeline_parallel_size is {tp} but gpus_per_replica is {gpus:g}"
        )


def split(demands: list[tuple[str, float]], nodes: int) -> list[list[tuple[str, float]]]:
    """Spread replicas over `nodes` workers, largest first onto the least loaded one, so that each
    tensor-parallel replica stays inside one worker (NCCL between pods runs over TCP)."""
    if nodes < 1:
        raise DeployError("--nodes must be at least 1")
    if len(demands) < nodes:
        raise DeployError(f"{nodes} worker nodes but the config has only {len(demands)} GPU replicas")
    bins: list[list[tuple[str, float]]] = [[] for _ in range(nodes)]
    for demand in sorted(demands, key=lambda d: -d[1]):
        min(bins, key=lambda b: sum(g for _, g in b)).append(demand)
    return bins


def whole_gpus(demands: list[tuple[str, float]]) -> int:
    """Devices these replicas need. Ray gives a fractional replica part of one GPU, so fractions are
    packed onto devices (largest first) the way they can share: three 0.6 replicas need three."""
    whole = sum(int(g) for _, g in demands if g >= 1)
    free: list[float] = []  # what is left on each partly used device
    for g in sorted((g for _, g in demands if g < 1), reverse=True):
        fits = next((i for i, left in enumerate(free) if left >= g - 1e-9), None)
        if fits is None:
            free.append(1.0 - g)
        else:
            free[fits] -= g
    return whole + len(free)


def model_bytes(spec: ModelSpec) -> float | None:
    """Weights size from the config's `parameter_size` and `quantization_level`, if it says them."""
    match = PARAMS.match(spec.parameter_size)
    if not match:
        return None
    level = spec.quantization_level.upper()
    per_param = 0.5 if QUANT_4BIT.match(level) else BYTES_PER_PARAM.get(level, 2.0)
    return float(match.group(1)) * SCALE[match.group(2).upper()] * per_param


def cache_gi(config: ClusterConfig) -> int:
    """Model cache per service. Ray may place any replica on any node and no volume is shared on
    Akash, so every node's cache holds every model; a GGUF twice (the file and its bf16 folder)."""
    total = sum(_copies(m) * (model_bytes(m) or UNKNOWN_MODEL_GIB * GIB) for m in config.models)
    # 10% for tokenizers, configs and partial downloads, 10 GiB for the embedded Redis and logs.
    return max(50, _round_up(1.1 * total / GIB + 10, 10))


def _copies(spec: ModelSpec) -> int:
    gguf = spec.source.gguf or (spec.source.path or "").endswith(".gguf")
    return 2 if gguf else 1


def _round_up(value: float, step: int) -> int:
    return int(math.ceil(value / step) * step)


def node(config: ClusterConfig, demands: list[tuple[str, float]], *, routers: int = 0, cache: int = 0) -> Node:
    """Resources for a service that runs the GPU replicas in `demands`, and with `routers` router
    replicas the config's CPU replicas too (they go where the router is: the single service or the
    Ray head). A router replica reserves one CPU, Serve's default."""
    gpus = whole_gpus(demands)
    per_replica = {m.name: m.cpus_per_replica for m in config.models}
    cpus = sum(per_replica[name] for name, _ in demands)
    if routers:
        cpus += routers + sum(m.cpus_per_replica * _replicas(m) for m in config.models if not m.gpus_per_replica)
    ray_cpus = math.ceil(cpus - 1e-9)
    return Node(
        gpus=gpus,
        cpus=ray_cpus + OVERHEAD_CPUS,
        ray_cpus=ray_cpus,
        memory_gi=8 + RAM_PER_GPU_GIB * gpus,
        # Ray's object store and NCCL live in /dev/shm (64 MiB without this volume).
        shm_gi=8 + 2 * gpus if gpus else 2,
        cache_gi=cache or cache_gi(config),
    )


def _replicas(spec: ModelSpec) -> int:
    # A model that loads on demand with `replicas: 0` still runs one replica once asked for.
    return max(spec.replicas, spec.max_replicas or 0, 1)
