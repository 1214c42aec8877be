"""Herd's own checks on an SDL: what Akash's JS validator lets through but the Go manifest check or a
running cluster would not (service names, `to: service` targets, volumes), and Herd's trust rules
(no Ray, Redis or internal Herd port public; pinned images; one placement, so one provider)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from router.errors import DeployError

# chain-sdk's Go manifest validation; the JS validator does not check it.
SERVICE_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# Ray's well-known ports: GCS, dashboard, client server, dashboard agent, Serve's HTTP proxy.
RAY_PORTS = frozenset({6379, 8265, 10001, 52365, 8000})
# Herd's API and Prometheus' UI are the only ports meant for the internet.
PUBLIC_PORTS = frozenset({11434, 9090})

Sdl = dict[str, Any]


def check(sdl: Sdl) -> None:
    """Raise DeployError naming every problem, or return when there is none."""
    found = problems(sdl)
    if found:
        raise DeployError("the SDL fails Herd's checks: " + "; ".join(found))


def problems(sdl: Sdl) -> list[str]:
    return [p for rule in RULES for p in rule(sdl)]


def service_names(sdl: Sdl) -> Iterator[str]:
    for name in _services(sdl):
        if not SERVICE_NAME.match(name):
            yield f"service name {name!r} does not match {SERVICE_NAME.pattern}"


def service_targets(sdl: Sdl) -> Iterator[str]:
    names = set(_services(sdl))
    for name, expose in _exposes(sdl):
        for to in expose.get("to") or []:
            target = to.get("service")
            if target is not None and target not in names:
                yield f"{name}: port {expose['port']} is exposed to unknown service {target!r}"


def volumes(sdl: Sdl) -> Iterator[str]:
    for name, profile in _profiles_of_services(sdl):
        storage = profile.get("resources", {}).get("storage", [])
        storage = storage if isinstance(storage, list) else [storage]
        persistent = [v.get("name") for v in storage if _is_true((v.get("attributes") or {}).get("persistent"))]
        if len(persistent) > 1:
            yield f"{name}: {len(persistent)} persistent volumes ({', '.join(map(str, persistent))}); Akash allows one"
        declared = {v.get("name") for v in storage if v.get("name")}
        mounts = ((_services(sdl)[name].get("params") or {}).get("storage") or {}).keys()
        for missing in sorted(set(mounts) - declared):
            yield f"{name}: mounts volume {missing!r} that its profile does not declare"
        for unmounted in sorted(set(persistent) - set(mounts)):
            yield f"{name}: persistent volume {unmounted!r} is not mounted"


def public_ports(sdl: Sdl) -> Iterator[str]:
    for name, expose in _exposes(sdl):
        if not any(to.get("global") for to in expose.get("to") or []):
            continue
        port = expose["port"]
        if port in RAY_PORTS:
            yield f"{name}: Ray port {port} is global (Ray has no authentication)"
        elif port not in PUBLIC_PORTS:
            yield f"{name}: port {port} is global; only {sorted(PUBLIC_PORTS)} may be"


def pinned_images(sdl: Sdl) -> Iterator[str]:
    for name, service in _services(sdl).items():
        image = str(service.get("image", ""))
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        if "@sha256:" not in image and (not tag or tag == "latest"):
            # Providers cache images by name: an unpinned tag may run an old build.
            yield f"{name}: image {image!r} has no pinned tag"


def one_placement(sdl: Sdl) -> Iterator[str]:
    placements = {p for entry in (sdl.get("deployment") or {}).values() for p in entry}
    if len(placements) > 1:
        # Each placement group becomes its own lease, maybe elsewhere: no shared private network.
        yield f"services use {len(placements)} placements ({', '.join(sorted(placements))}); use one"


RULES: tuple[Callable[[Sdl], Iterator[str]], ...] = (
    service_names,
    service_targets,
    volumes,
    public_ports,
    pinned_images,
    one_placement,
)


def _services(sdl: Sdl) -> dict[str, Any]:
    services: dict[str, Any] = sdl.get("services") or {}
    return services


def _exposes(sdl: Sdl) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, service in _services(sdl).items():
        for expose in service.get("expose") or []:
            yield name, expose


def _profiles_of_services(sdl: Sdl) -> Iterator[tuple[str, dict[str, Any]]]:
    compute = (sdl.get("profiles") or {}).get("compute") or {}
    for name, placements in (sdl.get("deployment") or {}).items():
        for entry in placements.values():
            if name in _services(sdl) and entry.get("profile") in compute:
                yield name, compute[entry["profile"]]


def _is_true(value: object) -> bool:
    return value is True or value == "true"
