"""`herd` command line. The only place that starts processes (Ray, Serve, the engines)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from router.catalog import ModelRecord
from router.config import ClusterConfig, ConfigError, default_config, load_config
from router.errors import HerdError
from router.names import ModelName, parse_name
from router.settings import Settings
from workers.sources import SourceError, describe, prepare
from workers.telemetry import HUB_NAME, MetricsHub


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="herd", description="Serve open LLMs with the Ollama and OpenAI APIs.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_p = sub.add_parser("serve", help="start the cluster and serve both APIs on one port")
    serve_p.add_argument("--config", type=Path, help="cluster config YAML (default: the embedded CPU default)")
    serve_p.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve_p.add_argument("--port", type=int, help="port (default 11434)")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in {"config": args.config, "host": args.host, "port": args.port}.items() if v}
    settings = Settings(**overrides)
    try:
        config = load_config(settings.config) if settings.config else default_config()
        ensure_port_free(settings.host, settings.port)
        prepared = prepare_models(config, settings.store_dir)
    except (ConfigError, SourceError) as exc:
        print(f"herd: {exc}", file=sys.stderr)
        return 2
    return serve(settings, prepared)


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


def prepare_models(config: ClusterConfig, store: Path) -> list[tuple[ModelRecord, str]]:
    """Make every model loadable (converting GGUF once) and describe it for the catalog."""
    prepared = []
    for spec in config.models:
        name = _name(spec.name)
        path = prepare(spec.source, store, name.deployment_id, progress=lambda text: print(f"herd: {text}", flush=True))
        info = describe(path)
        context = int(spec.engine.get("max_model_len") or info.context_length or 2048)
        record = ModelRecord(
            name=name,
            spec=spec,
            size=info.size,
            digest=info.digest,
            modified_ns=info.modified_ns or time.time_ns(),
            context_length=context,
            aliases=tuple(_name(a) for a in spec.aliases),
        )
        prepared.append((record, path))
    return prepared


def _name(text: str) -> ModelName:
    try:
        return parse_name(text)
    except HerdError as exc:
        raise ConfigError(f"model name {text!r}: {exc.message}") from exc


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
    ray.init(
        address=settings.ray_address,
        num_cpus=None if settings.ray_address else settings.ray_cpus,
        include_dashboard=False,
        logging_level=logging.WARNING,
    )
    # No Serve HTTP proxy: router replicas listen on the port themselves (router/http_server.py).
    ray_serve.start(http_options={"location": "NoServer"}, logging_config=settings.serve_logging())


def serve(settings: Settings, prepared: list[tuple[ModelRecord, str]]) -> int:
    import ray
    from ray import serve as ray_serve

    from router.serving import build_application

    started = time.monotonic()
    start_cluster(settings)
    names = ", ".join(record.name.display for record, _ in prepared)
    print(f"herd: starting engines for {names}", flush=True)
    hub = ray.remote(num_cpus=0)(MetricsHub).options(name=HUB_NAME).remote()
    app = build_application(settings, prepared, hub)
    ray_serve.run(app, name="herd", route_prefix=None)
    print(
        f"herd: ready in {time.monotonic() - started:.0f}s on http://{settings.host}:{settings.port}"
        " (Ollama API under /api, OpenAI API under /v1)",
        flush=True,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    print("herd: shutting down", flush=True)
    ray_serve.shutdown()  # type: ignore[no-untyped-call]
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
