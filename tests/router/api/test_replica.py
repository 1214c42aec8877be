"""The router deployment's placement: its replicas serve Herd's port, so they run where `herd serve` runs."""

from __future__ import annotations

from pathlib import Path

import ray

from router.api.replica import bind_router
from router.settings import Settings


def test_router_replicas_are_pinned_to_the_node_that_runs_herd_serve(tmp_path: Path) -> None:
    # On a multi-node cluster (Akash's `--nodes K`) Serve would otherwise spread them onto workers,
    # whose ports the ingress does not reach. Building the application starts no Ray.
    app = bind_router(Settings(data_dir=tmp_path, router_replicas=3), "redis://127.0.0.1:1", None, None, b"secret")
    deployment = app._bound_deployment
    here = f"node:{ray.util.get_node_ip_address()}"  # type: ignore[no-untyped-call]
    assert deployment.ray_actor_options == {"resources": {here: 0.001}, "num_cpus": 1}
    assert deployment.num_replicas == 3
    assert not ray.is_initialized()
