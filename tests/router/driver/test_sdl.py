"""`build_sdl`: a cluster config becomes an Akash SDL (single service, or a Ray head with K GPU workers)."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from router.config import ClusterConfig, default_config, load_config
from router.driver import sdl_plan
from router.driver.sdl import DEFAULT_IMAGE, GpuModel, SdlOptions, build_sdl, to_yaml
from router.errors import DeployError
from workers.spec import ModelSpec

ROOT = Path(__file__).resolve().parents[3]
GPU_CONFIG = ROOT / "configs" / "gpu-cluster.yaml"
ADMIN = "admin-key-0123456789abcdef"
REDIS_PW = "redis-pw-0123456789abcdef"
RAY_TOKEN = "ray-token-0123456789abcdef"


def _options(**fields: Any) -> SdlOptions:
    return SdlOptions(**{"admin_key": ADMIN, "redis_password": REDIS_PW, "ray_token": RAY_TOKEN, **fields})


def _gpu_config() -> ClusterConfig:
    return load_config(GPU_CONFIG)


def _model(**fields: Any) -> ModelSpec:
    return ModelSpec.model_validate({"name": "m", "source": {"hf": "org/m"}, **fields})


def _embedded_config(service: dict[str, Any]) -> ClusterConfig:
    script = service["args"][0]
    body = script.split("<<'HERD_CONFIG_EOF'\n", 1)[1].split("\nHERD_CONFIG_EOF\n", 1)[0]
    return ClusterConfig.model_validate(yaml.safe_load(body))


def _gpu(sdl: dict[str, Any], service: str) -> dict[str, Any]:
    gpu: dict[str, Any] = sdl["profiles"]["compute"][service]["resources"].get("gpu", {})
    return gpu


def test_single_service_has_every_gpu_the_config_needs() -> None:
    sdl = build_sdl(_gpu_config(), _options(gpu_models=(GpuModel("h100"), GpuModel("a100", "80Gi"))))
    assert list(sdl["services"]) == ["herd"]
    # llama3.1:8b 2 x 1, qwen2.5:14b 1 x 2 (tensor parallel), all-minilm 1 x 1.
    assert _gpu(sdl, "herd") == {
        "units": 5,
        "attributes": {"vendor": {"nvidia": [{"model": "h100"}, {"model": "a100", "ram": "80Gi"}]}},
    }
    service = sdl["services"]["herd"]
    # The embedded Redis (no REDIS_URL) keeps its state on the persistent volume with the models.
    assert not any(e.startswith("REDIS_URL=") for e in service["env"])
    assert f"HERD_ADMIN_KEY={ADMIN}" in service["env"]
    # Ray gets every CPU the replicas reserve (4 + 4 + 4 + 1), the router's and Ray's own.
    cpus = sdl["profiles"]["compute"]["herd"]["resources"]["cpu"]["units"]
    assert cpus == 13 + 1 + sdl_plan.OVERHEAD_CPUS and f"HERD_RAY_CPUS={cpus}" in service["env"]
    assert _embedded_config(service) == _gpu_config()
    assert service["args"][0].rstrip().endswith("exec herd serve --config /tmp/herd-cluster.yaml")
    # The SDL's command replaces the image's entrypoint: it must name the root-dropping one again.
    assert service["command"] == ["herd-entrypoint", "sh", "-c"]


def test_both_apis_on_port_80_and_a_nodeport() -> None:
    expose = build_sdl(_gpu_config(), _options())["services"]["herd"]["expose"]
    assert [(e["port"], e.get("as"), e["to"]) for e in expose] == [
        (11434, 80, [{"global": True}]),
        (11434, 11434, [{"global": True}]),
    ]
    # The ingress maxima: 100 MiB bodies (images, long prompts), 60 s between bytes.
    assert expose[0]["http_options"] == {"max_body_size": 104857600, "read_timeout": 60000, "send_timeout": 60000}


def test_storage_shm_and_model_cache_per_service() -> None:
    sdl = build_sdl(_gpu_config(), _options(nodes=2, cache_gi=300))
    for name in ("head", "worker-1", "worker-2"):
        storage = {v.get("name", "root"): v for v in sdl["profiles"]["compute"][name]["resources"]["storage"]}
        assert storage["data"] == {
            "name": "data",
            "size": "300Gi",
            "attributes": {"persistent": True, "class": "beta3"},
        }
        assert storage["shm"]["attributes"] == {"persistent": False, "class": "ram"}
        assert sdl["services"][name]["params"]["storage"] == {
            "data": {"mount": "/data", "readOnly": False},
            "shm": {"mount": "/dev/shm", "readOnly": False},
        }


@pytest.mark.parametrize(("nodes", "units"), [(1, [5]), (2, [3, 2]), (3, [2, 2, 1]), (4, [2, 1, 1, 1])])
def test_workers_share_the_gpus_and_keep_tensor_parallel_replicas_whole(nodes: int, units: list[int]) -> None:
    sdl = build_sdl(_gpu_config(), _options(nodes=nodes))
    workers = [f"worker-{i + 1}" for i in range(nodes)]
    assert [_gpu(sdl, w)["units"] for w in workers] == units
    assert _gpu(sdl, "head") == {} and _gpu(sdl, "redis") == {}
    assert set(sdl["services"]) == {"head", "redis", *workers}
    for w in workers:
        assert sdl["services"][w]["command"] == ["herd-entrypoint", "sh", "-c"]
        join = sdl["services"][w]["args"][0]
        assert f"ray start --address=head:6379 --num-cpus={sdl_plan_ray_cpus(sdl, w)}" in join
        assert f"--num-gpus={_gpu(sdl, w)['units']}" in join


def sdl_plan_ray_cpus(sdl: dict[str, Any], worker: str) -> int:
    # Ray gets the replicas' CPUs; the pod has OVERHEAD_CPUS more for Ray's own processes.
    units: int = sdl["profiles"]["compute"][worker]["resources"]["cpu"]["units"]
    return units - sdl_plan.OVERHEAD_CPUS


def test_multi_node_private_network_and_secrets() -> None:
    sdl = build_sdl(_gpu_config(), _options(nodes=2, prometheus=True))
    services = sdl["services"]
    redis_url = f"REDIS_URL=redis://:{REDIS_PW}@redis:6379/0"
    for name in ("head", "worker-1", "worker-2"):
        assert redis_url in services[name]["env"]
        # Ray's own token: every node of the cluster, nothing else (Prometheus, Redis) gets it.
        assert {"RAY_AUTH_MODE=token", f"RAY_AUTH_TOKEN={RAY_TOKEN}"} <= set(services[name]["env"])
    assert not any(RAY_TOKEN in e for name in ("redis", "prometheus") for e in services[name].get("env", []))
    assert "HERD_RAY_ADDRESS=auto" in services["head"]["env"]
    assert "ray start --head --port=6379" in services["head"]["args"][0]
    exposes = {(name, e["port"], e.get("as")): e["to"] for name, s in services.items() for e in s.get("expose") or []}
    assert exposes == {
        ("head", 11434, 80): [{"global": True}],
        ("head", 11434, 11434): [{"global": True}],
        ("head", 11434, None): [{"service": "prometheus"}],
        ("head", 6379, None): [{"service": "worker-1"}, {"service": "worker-2"}],
        ("redis", 6379, None): [{"service": "head"}, {"service": "worker-1"}, {"service": "worker-2"}],
        ("prometheus", 9090, 9090): [{"global": True}],
    }
    assert services["redis"]["args"][:3] == ["redis-server", "--requirepass", REDIS_PW]
    assert "'head:11434'" in services["prometheus"]["args"][0]
    # One placement: every service on one provider, in one lease's private network.
    assert {p for entry in sdl["deployment"].values() for p in entry} == {"akash"}


@pytest.mark.parametrize(("routers", "cpus"), [(1, 3), (3, 5)])
def test_the_head_has_a_cpu_per_router_replica(routers: int, cpus: int) -> None:
    sdl = build_sdl(_gpu_config(), _options(nodes=2, router_replicas=routers))
    assert sdl["profiles"]["compute"]["head"]["resources"]["cpu"]["units"] == cpus
    assert f"HERD_ROUTER_REPLICAS={routers}" in sdl["services"]["head"]["env"]
    assert f"ray start --head --port=6379 --num-cpus={cpus} --num-gpus=0" in sdl["services"]["head"]["args"][0]


def test_pricing_in_uact_scales_with_gpus_and_auditors_are_optional() -> None:
    sdl = build_sdl(_gpu_config(), _options(nodes=2, gpu_price=7000, service_price=500))
    placement = sdl["profiles"]["placement"]["akash"]
    assert placement["pricing"] == {
        "head": {"denom": "uact", "amount": 500},
        "worker-1": {"denom": "uact", "amount": 500 + 3 * 7000},
        "worker-2": {"denom": "uact", "amount": 500 + 2 * 7000},
        "redis": {"denom": "uact", "amount": 500},
    }
    assert "signedBy" not in placement
    audited = build_sdl(_gpu_config(), _options(auditors=("akash1auditor",)))["profiles"]["placement"]["akash"]
    assert audited["signedBy"] == {"anyOf": ["akash1auditor"]}


def test_any_nvidia_gpu_without_gpu_models() -> None:
    assert _gpu(build_sdl(_gpu_config(), _options()), "herd")["attributes"] == {"vendor": {"nvidia": None}}


def test_cpu_config_needs_an_image_that_can_run_it() -> None:
    with pytest.raises(DeployError, match="--image"):
        build_sdl(default_config(), _options())
    sdl = build_sdl(default_config(), _options(image="ghcr.io/example/herd-cpu:0.1.0"))
    assert "gpu" not in sdl["profiles"]["compute"]["herd"]["resources"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"admin_key": "short"}, "admin key"),
        ({"admin_key": "has space in it 0123456789"}, "admin key"),
        ({"nodes": 2, "redis_password": ""}, "Redis password"),
        ({"nodes": 2, "redis_password": ADMIN}, "other than the admin key"),
        ({"nodes": 2, "ray_token": ""}, "Ray token"),
        ({"nodes": 2, "ray_token": REDIS_PW}, "Ray token other than"),
        ({"nodes": 5}, "only 4 GPU replicas"),
        ({"router_replicas": 0}, "--routers"),
    ],
)
def test_refuses_options_it_cannot_deploy_safely(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(DeployError, match=message):
        build_sdl(_gpu_config(), _options(**fields))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"gpus_per_replica": 2}, "tensor_parallel_size x pipeline_parallel_size is 1"),
        ({"gpus_per_replica": 1, "engine": {"tensor_parallel_size": 2}}, "is 2 but gpus_per_replica is 1"),
        ({"gpus_per_replica": 1.5}, "whole number"),
    ],
)
def test_refuses_gpu_layouts_vllm_and_ray_cannot_run(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(DeployError, match=message):
        build_sdl(ClusterConfig(models=[_model(**fields)]), _options())


@pytest.mark.parametrize(
    ("demands", "nodes", "sums"),
    [
        ([2, 1, 1, 1], 2, [3, 2]),
        ([4, 2, 1, 1], 2, [4, 4]),
        ([1, 1, 1, 1], 2, [2, 2]),
        ([0.5, 0.5, 0.5], 1, [1.5]),
    ],
)
def test_split_puts_largest_replicas_first_on_the_least_loaded_worker(
    demands: list[float], nodes: int, sums: list[float]
) -> None:
    bins = sdl_plan.split([(f"m{i}", g) for i, g in enumerate(demands)], nodes)
    assert [sum(g for _, g in b) for b in bins] == sums


@pytest.mark.parametrize(
    ("demands", "gpus"),
    [([1, 2], 3), ([0.5, 0.5, 0.5], 2), ([0.6, 0.6, 0.6], 3), ([0.9, 0.9, 0.1], 2), ([0.1] * 10, 1), ([], 0)],
)
def test_whole_gpus_packs_fractional_replicas_the_way_ray_can(demands: list[float], gpus: int) -> None:
    assert sdl_plan.whole_gpus([("m", g) for g in demands]) == gpus


@pytest.mark.parametrize(
    ("size", "level", "expected"),
    [("8.0B", "BF16", 16e9), ("23M", "F32", 92e6), ("70B", "Q4_K_M", 35e9), ("7b", "", 14e9), ("", "BF16", None)],
)
def test_model_bytes_from_parameter_size_and_quantization(size: str, level: str, expected: float | None) -> None:
    assert sdl_plan.model_bytes(_model(parameter_size=size, quantization_level=level)) == expected


@pytest.mark.parametrize(
    ("models", "gi"),
    [
        # configs/gpu-cluster.yaml: 8.0B + 14.8B in BF16 and 23M in F32 = 42.5 GiB, +10% +10 GiB.
        (None, 60),
        # 70B in BF16 = 130 GiB; a GGUF counts twice (the file and the converted folder).
        ([{"parameter_size": "70B"}], 160),
        ([{"parameter_size": "70B", "source": {"gguf": "/m.gguf"}}], 300),
        # Unknown sizes count 20 GiB each; never less than 50 GiB.
        ([{}], 50),
        ([{}, {"name": "n"}, {"name": "o"}], 80),
    ],
)
def test_cache_holds_every_model(models: list[dict[str, Any]] | None, gi: int) -> None:
    config = _gpu_config() if models is None else ClusterConfig(models=[_model(**m) for m in models])
    assert sdl_plan.cache_gi(config) == gi


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("h100", GpuModel("h100")), ("A100:80gi", GpuModel("a100", "80Gi")), (" rtx4090 ", GpuModel("rtx4090"))],
)
def test_gpu_model_parse(text: str, parsed: GpuModel) -> None:
    assert GpuModel.parse(text) == parsed


@pytest.mark.parametrize("text", ["", "h100:80GB", "h 100", "a100:"])
def test_gpu_model_parse_rejects(text: str) -> None:
    with pytest.raises(DeployError):
        GpuModel.parse(text)


def test_default_image_tag_is_this_herd_on_the_pinned_vllm() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    vllm = next(r.split("==")[1] for r in project["optional-dependencies"]["gpu"] if r.startswith("vllm=="))
    assert DEFAULT_IMAGE.endswith(f":{project['version']}-vllm{vllm}")


def test_yaml_round_trips_and_is_deterministic() -> None:
    sdl = build_sdl(_gpu_config(), _options(nodes=2))
    text = to_yaml(sdl)
    assert yaml.safe_load(text) == sdl
    assert to_yaml(build_sdl(_gpu_config(), _options(nodes=2))) == text
    assert "args:\n    - |\n" in text  # scripts stay readable
    assert "&id" not in text and "*id" not in text  # no YAML anchors for a human to chase


def test_prometheus_in_the_single_layout_scrapes_the_herd_service() -> None:
    sdl = build_sdl(_gpu_config(), _options(prometheus=True))
    assert set(sdl["services"]) == {"herd", "prometheus"}
    assert {"port": 11434, "to": [{"service": "prometheus"}]} in sdl["services"]["herd"]["expose"]
    assert "'herd:11434'" in sdl["services"]["prometheus"]["args"][0]
    # Prometheus runs as `nobody` and cannot write a root-owned volume: no persistent one.
    storage = sdl["profiles"]["compute"]["prometheus"]["resources"]["storage"]
    assert storage == [{"size": "10Gi"}]


def _run_script(script: str, tmp_path: Path) -> list[str]:
    """Runs a service's start-up script with `herd` and `ray` stubs that log their arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("herd", "ray"):
        stub = bin_dir / tool
        stub.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{tmp_path}/calls"\n')
        stub.chmod(0o755)
    script = script.replace("/tmp/herd-cluster.yaml", str(tmp_path / "cluster.yaml"))
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    result = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return (tmp_path / "calls").read_text().splitlines()


def test_head_script_writes_the_config_starts_ray_then_herd(tmp_path: Path) -> None:
    sdl = build_sdl(_gpu_config(), _options(nodes=2))
    calls = _run_script(sdl["services"]["head"]["args"][0], tmp_path)
    assert calls == [
        "ray start --head --port=6379 --num-cpus=3 --num-gpus=0 --include-dashboard=false --disable-usage-stats",
        f"herd serve --config {tmp_path / 'cluster.yaml'}",
    ]
    assert load_config(tmp_path / "cluster.yaml") == _gpu_config()


def test_worker_script_joins_the_head(tmp_path: Path) -> None:
    sdl = build_sdl(_gpu_config(), _options(nodes=2))
    calls = _run_script(sdl["services"]["worker-2"]["args"][0], tmp_path)
    assert calls == ["ray start --address=head:6379 --num-cpus=8 --num-gpus=2 --disable-usage-stats --block"]


def test_single_service_script_writes_the_config_and_serves_it(tmp_path: Path) -> None:
    sdl = build_sdl(_gpu_config(), _options())
    assert _run_script(sdl["services"]["herd"]["args"][0], tmp_path) == [
        f"herd serve --config {tmp_path / 'cluster.yaml'}"
    ]
    assert load_config(tmp_path / "cluster.yaml") == _gpu_config()
