"""The router deployment's placement: its replicas serve Herd's port, so they run where `herd serve` runs."""

from __future__ import annotations

from pathlib import Path

import ray

from router.api.replica import bind_router
from router.settings import Settings


def test_router_replicas_are_pinned_to_the_node_that_runs_herd_serve(tmp_path: Path) -> None:
    # On a multi-node cluster (Akash's `--nodes K`) Serve would otherwise spread them onto workers,
    # whose ports the ingress does not reach. Building the application starts no Ray.
    settings = Settings(data_dir=tmp_path, router_replicas=3)
    app = bind_router(settings, "redis://127.0.0.1:1", None, None, b"secret", node_id="ab12")
    deployment = app._bound_deployment
    # By node id: the two nodes of tests/integration/test_multinode.py share one address.
    assert deployment.ray_actor_options == {"label_selector": {"ray.io/node-id": "ab12"}, "num_cpus": 1}
    assert deployment.num_replicas == 3
    assert not ray.is_initialized()
