"""Model specs become Ray Serve deployment options: fixed replicas or autoscaling, queue bound."""

from __future__ import annotations

from workers.deployment import worker_options
from workers.spec import ModelSpec


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
