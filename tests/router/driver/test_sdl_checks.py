"""Herd's own SDL checks: a generated SDL passes every one, and each fails on an SDL crafted to break it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from router.config import load_config
from router.driver import sdl_checks
from router.driver.sdl import SdlOptions, build_sdl
from router.errors import DeployError

ROOT = Path(__file__).resolve().parents[3]
Sdl = dict[str, Any]


def _good() -> Sdl:
    options = SdlOptions(admin_key="a" * 20, redis_password="b" * 20, ray_token="c" * 20, nodes=2, prometheus=True)
    return build_sdl(load_config(ROOT / "configs" / "gpu-cluster.yaml"), options)


def _rename_worker(sdl: Sdl) -> None:
    for section in (sdl["services"], sdl["deployment"]):
        section["Worker_1"] = section.pop("worker-1")


def _target_missing(sdl: Sdl) -> None:
    sdl["services"]["redis"]["expose"][0]["to"].append({"service": "worker-9"})


def _two_persistent(sdl: Sdl) -> None:
    storage = sdl["profiles"]["compute"]["worker-1"]["resources"]["storage"]
    storage.append({"name": "more", "size": "10Gi", "attributes": {"persistent": True, "class": "beta3"}})
    sdl["services"]["worker-1"]["params"]["storage"]["more"] = {"mount": "/more"}


def _mount_undeclared(sdl: Sdl) -> None:
    sdl["services"]["redis"]["params"]["storage"]["cache"] = {"mount": "/cache"}


def _unmounted(sdl: Sdl) -> None:
    del sdl["services"]["redis"]["params"]


def _ray_public(sdl: Sdl) -> None:
    sdl["services"]["head"]["expose"].append({"port": 8265, "as": 8265, "to": [{"global": True}]})


def _gcs_public(sdl: Sdl) -> None:
    gcs = next(e for e in sdl["services"]["head"]["expose"] if e["port"] == 6379)
    gcs["to"].append({"global": True})


def _redis_public(sdl: Sdl) -> None:
    sdl["services"]["redis"]["expose"][0]["to"] = [{"global": True}]


def _internal_public(sdl: Sdl) -> None:
    # A Herd internal port (say the router's event inbox) must never reach the internet.
    sdl["services"]["worker-1"]["expose"] = [{"port": 41000, "as": 41000, "to": [{"global": True}]}]


def _latest_image(sdl: Sdl) -> None:
    sdl["services"]["redis"]["image"] = "redis:latest"


def _untagged_image(sdl: Sdl) -> None:
    sdl["services"]["prometheus"]["image"] = "registry.example:5000/prom/prometheus"


def _two_placements(sdl: Sdl) -> None:
    sdl["deployment"]["redis"] = {"elsewhere": sdl["deployment"]["redis"]["akash"]}


BREAKS: list[tuple[Callable[[Sdl], None], Callable[[Sdl], Any], str]] = [
    (_rename_worker, sdl_checks.service_names, "service name 'Worker_1'"),
    (_target_missing, sdl_checks.service_targets, "unknown service 'worker-9'"),
    (_two_persistent, sdl_checks.volumes, "2 persistent volumes"),
    (_mount_undeclared, sdl_checks.volumes, "mounts volume 'cache'"),
    (_unmounted, sdl_checks.volumes, "persistent volume 'data' is not mounted"),
    (_ray_public, sdl_checks.public_ports, "Ray port 8265 is global"),
    (_gcs_public, sdl_checks.public_ports, "Ray port 6379 is global"),
    (_redis_public, sdl_checks.public_ports, "redis: Ray port 6379 is global"),
    (_internal_public, sdl_checks.public_ports, "port 41000 is global"),
    (_latest_image, sdl_checks.pinned_images, "redis:latest"),
    (_untagged_image, sdl_checks.pinned_images, "no pinned tag"),
    (_two_placements, sdl_checks.one_placement, "2 placements"),
]


def test_generated_sdl_passes_every_check() -> None:
    assert sdl_checks.problems(_good()) == []


@pytest.mark.parametrize(("breaks", "rule", "message"), BREAKS, ids=[b[0].__name__ for b in BREAKS])
def test_each_check_fails_on_an_sdl_that_breaks_it(
    breaks: Callable[[Sdl], None], rule: Callable[[Sdl], Any], message: str
) -> None:
    sdl = copy.deepcopy(_good())
    breaks(sdl)
    found = list(rule(sdl))
    assert any(message in p for p in found), found
    with pytest.raises(DeployError, match="fails Herd's checks"):
        sdl_checks.check(sdl)


def test_digest_pinned_image_passes() -> None:
    sdl = _good()
    sdl["services"]["redis"]["image"] = "redis@sha256:" + "0" * 64
    assert list(sdl_checks.pinned_images(sdl)) == []
