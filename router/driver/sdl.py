"""A cluster config becomes an Akash SDL (a dict; `to_yaml` renders it). Pure: no I/O, no clock, no
randomness; secrets come in through `SdlOptions`.

Layouts:
- single (`nodes=0`): one service runs Herd with every GPU the config needs and the embedded Redis.
- multi-node (`nodes=K`): `head` runs the router and the Ray head (no GPU), `redis` the shared
  state (password, persistent volume), `worker-1..K` join Ray over the lease's private network and
  host the engines; `prometheus` optionally. Every service is in one placement, so one provider.

Only Herd's API port is ever `global` (on `as: 80` through the provider's HTTP ingress, and on a
NodePort for calls that outlast its 60 s timeout); Ray's and Redis's ports reach named services only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from router.config import ClusterConfig
from router.driver import sdl_checks, sdl_plan
from router.driver.sdl_plan import Node
from router.errors import DeployError

API_PORT = 11434
# The NodePort's `as`: Ollama's port, so `OLLAMA_HOST=<host>:<forwarded port>` reads naturally.
NODEPORT_AS = 11434
RAY_GCS_PORT = 6379
REDIS_PORT = 6379
PROMETHEUS_PORT = 9090
PLACEMENT = "akash"
CONFIG_FILE = "/tmp/herd-cluster.yaml"
CONFIG_MARKER = "HERD_CONFIG_EOF"
# Tags must match Dockerfile.gpu's build (tests/router/driver/test_sdl.py checks them against pyproject).
DEFAULT_IMAGE = "ghcr.io/herd-llm/herd-gpu:0.1.0-vllm0.33.0"
REDIS_IMAGE = "redis:7.4.2-alpine"
PROMETHEUS_IMAGE = "prom/prometheus:v3.5.0"
# The provider's ingress maxima (chain-sdk go/sdl/v2.go): long prompts and base64 images exceed
# the 1 MiB default body; streamed chunks arrive well within 60 s.
HTTP_OPTIONS = {"max_body_size": 104857600, "read_timeout": 60000, "send_timeout": 60000}
SECRET = re.compile(r"^[A-Za-z0-9._~-]{16,}$")
# An SDL `command` replaces the image's entrypoint, so it names it again: it hands the root-owned
# volume Akash mounts to Herd's user and drops root (deploy/image/herd-entrypoint.sh).
HERD_COMMAND = ("herd-entrypoint", "sh", "-c")


@dataclass(frozen=True)
class GpuModel:
    """One acceptable GPU: a provider-config model name (`h100`), optionally its memory (`80Gi`)."""

    model: str
    ram: str | None = None

    @classmethod
    def parse(cls, text: str) -> GpuModel:
        """`h100` or `a100:80Gi`."""
        model, colon, ram = text.strip().lower().partition(":")
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", model) or (colon and not re.fullmatch(r"[0-9]+gi", ram)):
            raise DeployError(f"GPU model {text!r}: expected a name like h100 or a100:80Gi")
        return cls(model, ram.replace("gi", "Gi") or None)

    def attribute(self) -> dict[str, str]:
        return {"model": self.model, **({"ram": self.ram} if self.ram else {})}


@dataclass(frozen=True)
class SdlOptions:
    """Everything the SDL needs beyond the cluster config. Secrets have no defaults on purpose."""

    admin_key: str
    redis_password: str = ""
    # Ray's token authentication between the nodes of a multi-node lease (RAY_AUTH_TOKEN).
    ray_token: str = ""
    nodes: int = 0
    router_replicas: int = 1
    gpu_models: tuple[GpuModel, ...] = ()
    image: str = DEFAULT_IMAGE
    redis_image: str = REDIS_IMAGE
    prometheus_image: str = PROMETHEUS_IMAGE
    prometheus: bool = False
    auditors: tuple[str, ...] = ()
    gpu_price: int = 10_000
    service_price: int = 1_000
    storage_class: str = "beta3"
    cache_gi: int = 0
    hf_token: str = ""


def build_sdl(config: ClusterConfig, options: SdlOptions) -> dict[str, Any]:
    """The SDL for `config`: single service, or with `options.nodes` a Ray head and K GPU workers."""
    _check_options(config, options)
    demands = sdl_plan.replica_demands(config)
    if options.nodes:
        services = _multi_node(config, options, demands)
    else:
        node = sdl_plan.node(config, demands, routers=options.router_replicas, cache=options.cache_gi)
        service = _herd_service(options, _serve_script(config))
        # `herd serve` starts Ray itself here, with 8 logical CPUs unless told: the replicas need theirs.
        service["env"].append(f"HERD_RAY_CPUS={node.cpus}")
        services = {"herd": (service, node)}
    if options.prometheus:
        herd = "head" if options.nodes else "herd"
        services[herd][0]["expose"].append({"port": API_PORT, "to": [{"service": "prometheus"}]})
        services["prometheus"] = _prometheus(options, herd)
    sdl = _assemble(services, options)
    sdl_checks.check(sdl)  # a generated SDL that fails Herd's own rules is a bug here, not the user's
    return sdl


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML ships no type hints
    """Multi-line strings (the start-up scripts, the embedded config) as readable `|` blocks, and
    no `&id001` anchors: every value is written out where it is used."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)


def to_yaml(sdl: dict[str, Any]) -> str:
    text: str = yaml.dump(sdl, Dumper=_Dumper, sort_keys=False, width=120)
    return "---\n# Generated by `herd sdl`; it carries secrets: keep it out of version control.\n" + text


def _check_options(config: ClusterConfig, options: SdlOptions) -> None:
    if not SECRET.match(options.admin_key):
        raise DeployError("the admin key must be at least 16 characters of [A-Za-z0-9._~-]")
    if options.nodes and not SECRET.match(options.redis_password):
        raise DeployError("--nodes needs a Redis password of at least 16 characters of [A-Za-z0-9._~-]")
    if options.nodes and options.redis_password == options.admin_key:
        raise DeployError("use a Redis password other than the admin key")
    if options.nodes and not SECRET.match(options.ray_token):
        raise DeployError("--nodes needs a Ray token of at least 16 characters of [A-Za-z0-9._~-]")
    if options.nodes and options.ray_token in (options.admin_key, options.redis_password):
        raise DeployError("use a Ray token other than the admin key and the Redis password")
    if options.router_replicas < 1:
        raise DeployError("--routers must be at least 1")
    gpus = sdl_plan.whole_gpus(sdl_plan.replica_demands(config))
    if not gpus and options.image == DEFAULT_IMAGE:
        raise DeployError("no model in this config uses a GPU and the GPU image cannot run one: pass --image")
    if not gpus and options.nodes:
        raise DeployError("--nodes spreads GPU replicas over workers, and no model in this config uses a GPU")


def _multi_node(
    config: ClusterConfig, options: SdlOptions, demands: list[tuple[str, float]]
) -> dict[str, tuple[dict[str, Any], Node]]:
    workers = [f"worker-{i + 1}" for i in range(options.nodes)]
    cache = options.cache_gi
    head = sdl_plan.node(config, [], routers=options.router_replicas, cache=cache)
    redis_url = f"redis://:{options.redis_password}@redis:{REDIS_PORT}/0"
    head_service = _herd_service(options, _head_script(config, head))
    head_service["env"] += ["HERD_RAY_ADDRESS=auto", f"REDIS_URL={redis_url}", *_ray_auth(options)]
    head_service["expose"].append({"port": RAY_GCS_PORT, "to": [{"service": w} for w in workers]})
    services: dict[str, tuple[dict[str, Any], Node]] = {"head": (head_service, head)}
    for name, share in zip(workers, sdl_plan.split(demands, options.nodes), strict=True):
        node = sdl_plan.node(config, share, cache=cache)
        services[name] = (_worker_service(options, node, redis_url), node)
    services["redis"] = _redis(options, ["head", *workers])
    return services


def _herd_service(options: SdlOptions, script: str) -> dict[str, Any]:
    expose: list[dict[str, Any]] = [
        {"port": API_PORT, "as": 80, "to": [{"global": True}], "http_options": dict(HTTP_OPTIONS)},
        # Raw TCP on a provider-assigned port: no ingress, so no 60 s limit for long non-streamed calls.
        {"port": API_PORT, "as": NODEPORT_AS, "to": [{"global": True}]},
    ]
    return {
        "image": options.image,
        "command": list(HERD_COMMAND),
        "args": [script],
        "env": _herd_env(options),
        "expose": expose,
        "params": {"storage": _mounts()},
    }


def _herd_env(options: SdlOptions) -> list[str]:
    env = [
        "HERD_HOST=0.0.0.0",
        f"HERD_PORT={API_PORT}",
        "HERD_DATA_DIR=/data",
        f"HERD_ROUTER_REPLICAS={options.router_replicas}",
        f"HERD_ADMIN_KEY={options.admin_key}",
    ]
    if options.hf_token:
        env.append(f"HF_TOKEN={options.hf_token}")
    return env


def _ray_auth(options: SdlOptions) -> list[str]:
    """Ray's token authentication on every node: without it, whoever reaches the GCS port on the
    lease's network runs code in the cluster (Ray has no other authentication)."""
    return ["RAY_AUTH_MODE=token", f"RAY_AUTH_TOKEN={options.ray_token}"]


def _mounts() -> dict[str, Any]:
    return {"data": {"mount": "/data", "readOnly": False}, "shm": {"mount": "/dev/shm", "readOnly": False}}


def _config_file(config: ClusterConfig) -> str:
    text = yaml.safe_dump(config.model_dump(mode="json", exclude_defaults=True), sort_keys=False)
    if CONFIG_MARKER in text:
        raise DeployError(f"the config contains {CONFIG_MARKER!r}, the marker that ends it in the SDL")
    # A quoted here-document: the shell expands nothing inside the config.
    return f"cat > {CONFIG_FILE} <<'{CONFIG_MARKER}'\n{text}{CONFIG_MARKER}\n"


def _serve_script(config: ClusterConfig) -> str:
    return f"set -e\n{_config_file(config)}exec herd serve --config {CONFIG_FILE}\n"


def _head_script(config: ClusterConfig, head: Node) -> str:
    # The head offers Ray all its CPUs: router replicas and CPU models belong there.
    ray = (
        f"ray start --head --port={RAY_GCS_PORT} --num-cpus={head.cpus} --num-gpus=0"
        " --include-dashboard=false --disable-usage-stats"
    )
    return f"set -e\n{_config_file(config)}{ray}\nexec herd serve --config {CONFIG_FILE}\n"


def _worker_service(options: SdlOptions, node: Node, redis_url: str) -> dict[str, Any]:
    # Rejoin whenever the head restarts or is not up yet; the pod itself stays.
    join = (
        f"until ray start --address=head:{RAY_GCS_PORT} --num-cpus={node.ray_cpus} --num-gpus={node.gpus}"
        " --disable-usage-stats --block; do ray stop --force; sleep 5; done\n"
    )
    env = ["HERD_DATA_DIR=/data", f"REDIS_URL={redis_url}", *_ray_auth(options)]
    if options.hf_token:
        env.append(f"HF_TOKEN={options.hf_token}")
    return {
        "image": options.image,
        "command": list(HERD_COMMAND),
        "args": [join],
        "env": env,
        "params": {"storage": _mounts()},
    }


def _redis(options: SdlOptions, clients: list[str]) -> tuple[dict[str, Any], Node]:
    service = {
        "image": options.redis_image,
        # The image's entrypoint stays (it owns /data, then drops root); only the server's flags change.
        "args": ["redis-server", "--requirepass", options.redis_password, "--appendonly", "yes", "--dir", "/data"],
        "expose": [{"port": REDIS_PORT, "to": [{"service": c} for c in clients]}],
        "params": {"storage": {"data": {"mount": "/data", "readOnly": False}}},
    }
    return service, Node(gpus=0, cpus=1, memory_gi=2, shm_gi=0, cache_gi=10, root_gi=1)


def _prometheus(options: SdlOptions, herd: str) -> tuple[dict[str, Any], Node]:
    scrape = (
        "global: {scrape_interval: 15s}\n"
        "scrape_configs:\n"
        f"  - {{job_name: herd, metrics_path: /metrics, static_configs: [{{targets: ['{herd}:{API_PORT}']}}]}}\n"
    )
    # The image runs as `nobody`, which cannot write a root-owned Akash volume: the TSDB stays on
    # the container's own disk (lost on restart, bounded by size).
    script = (
        f"cat > /prometheus/prometheus.yml <<'PROMETHEUS_EOF'\n{scrape}PROMETHEUS_EOF\n"
        "exec /bin/prometheus --config.file=/prometheus/prometheus.yml --storage.tsdb.path=/prometheus/data"
        " --storage.tsdb.retention.time=15d --storage.tsdb.retention.size=8GB\n"
    )
    service = {
        "image": options.prometheus_image,
        "command": ["sh", "-c"],
        "args": [script],
        # Metrics are read-only and carry no prompts; Prometheus has no admin API unless enabled.
        "expose": [{"port": PROMETHEUS_PORT, "as": PROMETHEUS_PORT, "to": [{"global": True}]}],
    }
    return service, Node(gpus=0, cpus=1, memory_gi=2, shm_gi=0, cache_gi=0, root_gi=10)


def _assemble(services: dict[str, tuple[dict[str, Any], Node]], options: SdlOptions) -> dict[str, Any]:
    placement: dict[str, Any] = {
        "pricing": {
            name: {"denom": "uact", "amount": options.service_price + options.gpu_price * node.gpus}
            for name, (_, node) in services.items()
        }
    }
    if options.auditors:
        placement["signedBy"] = {"anyOf": list(options.auditors)}
    return {
        "version": "2.0",
        "services": {name: service for name, (service, _) in services.items()},
        "profiles": {
            "compute": {name: {"resources": _resources(node, options)} for name, (_, node) in services.items()},
            "placement": {PLACEMENT: placement},
        },
        "deployment": {name: {PLACEMENT: {"profile": name, "count": 1}} for name in services},
    }


def _resources(node: Node, options: SdlOptions) -> dict[str, Any]:
    storage: list[dict[str, Any]] = [{"size": f"{node.root_gi}Gi"}]
    if node.cache_gi:
        persistent = {"persistent": True, "class": options.storage_class}
        storage.append({"name": "data", "size": f"{node.cache_gi}Gi", "attributes": persistent})
    if node.shm_gi:
        storage.append({"name": "shm", "size": f"{node.shm_gi}Gi", "attributes": {"persistent": False, "class": "ram"}})
    resources: dict[str, Any] = {
        "cpu": {"units": node.cpus},
        "memory": {"size": f"{node.memory_gi}Gi"},
        "storage": storage,
    }
    if node.gpus:
        models = [g.attribute() for g in options.gpu_models] or None  # None: any NVIDIA GPU
        resources["gpu"] = {"units": node.gpus, "attributes": {"vendor": {"nvidia": models}}}
    return resources
