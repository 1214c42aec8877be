"""Every SDL `herd sdl` generates is valid the way Akash validates it: chain-sdk's JSON schema (read
from the shared folder at test time) and chain-sdk's own `generateManifest` (npm, pinned in
deploy/akash/validator; `make akash-validator` installs it), whose groups the chain would get."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from router.config import default_config, load_config
from router.driver.sdl import GpuModel, SdlOptions, build_sdl, to_yaml

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = ROOT.parent / "shared" / "akash" / "sdl-input.schema.yaml"
VALIDATOR = ROOT / "deploy" / "akash" / "validator"
AUDITOR = "akash1365yvmc4s7awdyj3n2sav7xfx76adc6dnmlx63"
GPUS = (GpuModel("h100"), GpuModel("a100", "80Gi"))


def _options(**fields: Any) -> SdlOptions:
    return SdlOptions(
        admin_key="admin-key-0123456789abcdef",
        redis_password="redis-pw-0123456789abcdef",
        ray_token="ray-token-0123456789abcdef",
        **fields,
    )


def _cases() -> dict[str, tuple[dict[str, Any], dict[str, int]]]:
    """name -> (SDL, expected GPU units per service)."""
    gpu = load_config(ROOT / "configs" / "gpu-cluster.yaml")
    return {
        "gpu-single": (build_sdl(gpu, _options(gpu_models=GPUS)), {"herd": 5}),
        "gpu-nodes-2": (
            build_sdl(gpu, _options(gpu_models=GPUS, nodes=2, prometheus=True, auditors=(AUDITOR,))),
            {"head": 0, "worker-1": 3, "worker-2": 2, "redis": 0, "prometheus": 0},
        ),
        "gpu-8x-nodes-2": (
            build_sdl(load_config(ROOT / "configs" / "gpu-8x-h100.yaml"), _options(gpu_models=GPUS, nodes=2)),
            {"head": 0, "worker-1": 4, "worker-2": 4, "redis": 0},
        ),
        "cpu-default": (build_sdl(default_config(), _options(image="ghcr.io/example/herd-cpu:0.1.0")), {"herd": 0}),
    }


CASES = _cases()


@pytest.fixture(scope="module")
def schema() -> jsonschema.Draft7Validator:
    if not SCHEMA.exists():
        pytest.fail(f"{SCHEMA} missing: the SDL schema lives in the shared folder beside the repository")
    return jsonschema.Draft7Validator(yaml.safe_load(SCHEMA.read_text()))


def _generate_manifest(text: str) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None or not (VALIDATOR / "node_modules" / "@akashnetwork" / "chain-sdk").exists():
        pytest.fail("Akash's validator is not installed: run `make akash-validator` (node and npm ci)")
    result = subprocess.run(
        [node, str(VALIDATOR / "validate.mjs")], input=text, capture_output=True, text=True, timeout=60
    )
    out: dict[str, Any] = json.loads(result.stdout)
    assert (result.returncode == 0) == out["ok"], result.stderr
    return out


@pytest.mark.parametrize("name", CASES)
def test_matches_the_sdl_json_schema(name: str, schema: jsonschema.Draft7Validator) -> None:
    sdl = yaml.safe_load(to_yaml(CASES[name][0]))
    assert [e.message for e in schema.iter_errors(sdl)] == []


@pytest.mark.parametrize("name", CASES)
def test_generate_manifest_returns_one_group_with_the_gpus_asked_for(name: str) -> None:
    sdl, units = CASES[name]
    out = _generate_manifest(to_yaml(sdl))
    assert out["ok"], out.get("errors")
    [group] = out["groups"]
    assert group["name"] == "akash"
    services = {s["name"]: s for s in group["services"]}
    assert set(services) == set(units)
    for svc, gpus in units.items():
        gpu = services[svc]["resources"]["gpu"]
        assert gpu["units"]["val"] == str(gpus)
        keys = {a["key"]: a["value"] for a in gpu["attributes"]}
        # GPU choices become bid attributes; an `a100` with `ram` is only that memory size.
        expected = {"vendor/nvidia/model/h100": "true", "vendor/nvidia/model/a100/ram/80Gi": "true"}
        assert keys == (expected if gpus and name.startswith("gpu") else {})
    [spec] = out["groupSpecs"]
    assert spec["requirements"]["signedBy"]["anyOf"] == ([AUDITOR] if name == "gpu-nodes-2" else [])


def test_generate_manifest_keeps_private_ports_private() -> None:
    group = _generate_manifest(to_yaml(CASES["gpu-nodes-2"][0]))["groups"][0]
    public = {(s["name"], e["port"], e["externalPort"]) for s in group["services"] for e in s["expose"] if e["global"]}
    assert public == {("head", 11434, 80), ("head", 11434, 11434), ("prometheus", 9090, 9090)}
    ingress = next(e for s in group["services"] for e in s["expose"] if e["externalPort"] == 80)
    assert ingress["httpOptions"]["maxBodySize"] == 104857600  # the SDL's, not the 1 MiB default
    shm = {s["name"]: [v for v in s["resources"]["storage"] if v["name"] == "shm"] for s in group["services"]}
    assert shm["worker-1"][0]["attributes"] == [
        {"key": "class", "value": "ram"},
        {"key": "persistent", "value": "false"},
    ]


def test_the_validators_do_reject_a_broken_sdl(schema: jsonschema.Draft7Validator) -> None:
    # Both checks must be able to fail: a RAM volume marked persistent, and a profile that does not exist.
    sdl = yaml.safe_load(to_yaml(CASES["gpu-single"][0]))
    sdl["profiles"]["compute"]["herd"]["resources"]["storage"][2]["attributes"]["persistent"] = True
    assert list(schema.iter_errors(sdl))
    sdl = yaml.safe_load(to_yaml(CASES["gpu-single"][0]))
    sdl["deployment"]["herd"]["akash"]["profile"] = "nope"
    out = _generate_manifest(yaml.safe_dump(sdl))
    assert not out["ok"] and out["errors"]
