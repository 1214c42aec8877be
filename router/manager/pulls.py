"""`/api/pull`: register a model from a source, with Ollama's progress objects.

A pull prepares the weights (converting a GGUF once), hashes them for the digest, and registers
the record in the catalog as its very last step, so an interrupted pull never leaves a
half-registered model; a conversion writes into a `.partial` folder that the next try removes.
Pulls of one name share one job: a second client sees the same progress from the start. Jobs run
in the `ModelManager` actor and keep going when the client that started them disconnects.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from router.catalog.catalog import Catalog, ModelRecord
from router.catalog.names import parse_name
from router.config import ClusterConfig
from router.dispatch.failures import map_error
from router.dispatch.handles import PullProgress
from router.errors import BadRequest, EngineError, HerdError
from router.protocol.ollama import ProgressResponse
from workers.sources import WeightsInfo, describe, prepare
from workers.spec import ModelSpec, SourceSpec

HUB_HOSTS = ("hf.co", "huggingface.co")
HUB_CHECK_TIMEOUT_S = 3.0
Progress = Callable[[ProgressResponse], None]

log = logging.getLogger("herd.pulls")


def parse_source(text: str) -> SourceSpec:
    """`package:<module>/<path>`, `gguf:<file>`, `hf:<folder or repo id>`, or a bare local path."""
    kind, _, rest = text.partition(":")
    if kind == "package" and "/" in rest:
        module, _, inner = rest.partition("/")
        return SourceSpec(package=module, path=inner)
    if kind == "gguf" and rest:
        return SourceSpec(gguf=rest)
    if kind == "hf" and rest:
        return SourceSpec(hf=rest)
    path = Path(text).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return SourceSpec(gguf=str(path))
    if path.is_dir():
        return SourceSpec(hf=str(path))
    raise BadRequest(
        f"source {text!r} is not a local GGUF file or model folder, nor package:<module>/<path>, gguf:<file> or hf:<id>"
    )


def spec_for(name: str, source: str | None, config: ClusterConfig, current: ModelRecord | None) -> ModelSpec:
    """What to pull for `name`: an explicit source, a model the cluster config or the embedded
    library knows by that name, the source of the catalog's current model, or a hub repository."""
    key = parse_name(name).key
    if source:
        return ModelSpec(name=name, source=parse_source(source), **config.pull_defaults)
    for spec in config.library():
        if key in {parse_name(n).key for n in (spec.name, *spec.aliases)}:
            return spec
    if current is not None:
        return current.spec.model_copy(update={"name": current.name, "aliases": list(current.aliases)})
    parsed = parse_name(name)
    if parsed.host.lower() in HUB_HOSTS:
        return ModelSpec(name=name, source=SourceSpec(hf=f"{parsed.namespace}/{parsed.model}"), **config.pull_defaults)
    raise BadRequest(
        f"pull model manifest: '{name}' is not in this cluster's library; give a \"source\" "
        "(a local GGUF file or HF folder, package:<module>/<path>, or hf:<repo id>)"
    )


def build_record(spec: ModelSpec, model_path: str, info: WeightsInfo) -> ModelRecord:
    name = parse_name(spec.name)
    context = int(spec.engine.get("max_model_len") or info.context_length or 2048)
    kind = spec.kind if "kind" in spec.model_fields_set or info.generative else "embed"
    details = {
        "kind": kind,
        "family": spec.family or info.family,
        "quantization_level": spec.quantization_level or info.dtype.upper().replace("FLOAT", "F"),
        "parameter_size": spec.parameter_size or _parameter_size(info),
    }
    return ModelRecord(
        name=name.display,
        aliases=tuple(parse_name(a).display for a in spec.aliases),
        deployment_id=name.deployment_id,
        spec=spec.model_copy(update=details),
        model_path=model_path,
        size=info.size,
        digest=info.digest,
        modified_ns=info.modified_ns or time.time_ns(),
        context_length=context,
        embedding_length=info.embedding_length,
        system=spec.system or None,
        parameters=dict(spec.defaults),
    )


def _parameter_size(info: WeightsInfo) -> str:
    width = {"bfloat16": 2, "float16": 2, "float32": 4}.get(info.dtype, 2)
    params = info.size / width
    for unit, scale in (("B", 1e9), ("M", 1e6)):
        if params >= scale:
            return f"{params / scale:.3g}{unit}"
    return f"{params:.0f}"


def prepare_record(spec: ModelSpec, store_dir: Path, progress: Progress, store_id: str | None = None) -> ModelRecord:
    """Blocking: make the weights loadable and describe them (runs in a thread). A GGUF is
    converted into `store_dir/<store_id>` (default: the name's deployment id)."""
    name = parse_name(spec.name)
    store_id = store_id or name.deployment_id
    path = prepare(spec.source, store_dir, store_id, progress=lambda text: progress({"status": text}))

    reported = -1

    def hashed(done: int, total: int) -> None:
        # Hashing calls every 4 MiB; one event per whole percent keeps a job's history short
        # (at most 101 lines, whatever the model's size) and the same for every client that reads it.
        nonlocal reported
        percent = 100 * done // total if total else 100
        if percent != reported:
            reported = percent
            progress({"status": "verifying sha256 digest", "total": total, "completed": done})

    info = describe(path, hashed)
    progress({"status": f"pulling {info.digest[:12]}", "digest": f"sha256:{info.digest}", "total": info.size,
              "completed": info.size})  # fmt: skip
    return build_record(spec, path, info)


def require_reachable(source: SourceSpec) -> None:
    """Blocking. A hub id fails fast, not hangs, where the cluster cannot reach the hub (as on this
    CI machine); with network, vLLM downloads it itself when the model first loads."""
    repo = source.hf
    if not repo or Path(repo).expanduser().exists():
        return
    try:
        socket.create_connection((HUB_HOSTS[1], 443), timeout=HUB_CHECK_TIMEOUT_S).close()
    except OSError as exc:
        raise BadRequest(
            f"cannot download {repo!r}: huggingface.co is unreachable from this cluster ({exc}); "
            "pull from a local GGUF file or model folder instead"
        ) from exc


@dataclass
class PullJob:
    name: str
    events: list[ProgressResponse] = field(default_factory=list)
    done: bool = False
    error: HerdError | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, event: ProgressResponse) -> None:
        # Only appended, never rewritten: a client that joins late or polls at other moments reads
        # the same history as the first one.
        self.events.append(event)
        self.changed.set()


class PullJobs:
    """Running and recent pulls, one per model name."""

    def __init__(self, catalog: Catalog, config: ClusterConfig, store_dir: Path) -> None:
        self._catalog = catalog
        self._config = config
        self._store_dir = store_dir
        self._jobs: dict[str, PullJob] = {}
        self._by_name: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._starting: dict[str, asyncio.Lock] = {}

    async def start(self, name: str, source: str | None, overrides: dict[str, Any] | None = None) -> str:
        """A job id; raises BadRequest (a real 400, before any progress) when the source is unusable."""
        key = parse_name(name).key
        # Held across the awaits below, so a second pull of the name joins the first one's job.
        async with self._starting.setdefault(key, asyncio.Lock()):
            running = self._by_name.get(key)
            if running is not None and not self._jobs[running].done:
                return running
            return await self._start(key, name, source, overrides)

    async def _start(self, key: str, name: str, source: str | None, overrides: dict[str, Any] | None) -> str:
        current = await self._catalog.find(name)
        spec = spec_for(name, source, self._config, current)
        # Pulling a catalog model again re-verifies its weights; the record keeps its identity
        # (deployment, aliases, Modelfile defaults), even for a model derived from another.
        refresh = current if current is not None and current.spec.source == spec.source else None
        await asyncio.to_thread(require_reachable, spec.source)
        job_id = uuid.uuid4().hex
        job = PullJob(name)
        self._jobs[job_id], self._by_name[key] = job, job_id
        job.add({"status": "pulling manifest"})
        self._tasks.add(task := asyncio.create_task(self._run(job, spec, refresh, overrides or {})))
        task.add_done_callback(self._tasks.discard)
        return job_id

    async def _run(self, job: PullJob, spec: ModelSpec, refresh: ModelRecord | None, overrides: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        try:

            def progress(event: ProgressResponse) -> None:
                loop.call_soon_threadsafe(job.add, event)

            store_id = refresh.deployment_id if refresh else None
            record = await asyncio.to_thread(prepare_record, spec, self._store_dir, progress, store_id)
            if refresh is not None:
                weights = ("model_path", "size", "digest", "modified_ns")
                record = refresh.model_copy(update={f: getattr(record, f) for f in weights})
            record = record.model_copy(update=overrides)
            job.add({"status": "writing manifest"})
            await self._catalog.put(record)
            job.add({"status": "success"})
        except Exception as exc:  # the client must always get a last line
            job.error = map_error(exc, "pull failed")
            if isinstance(job.error, EngineError):
                log.exception("pull of %s failed", job.name)
        finally:
            job.done = True
            job.changed.set()

    async def progress(self, job_id: str, since: int, wait_s: float = 1.0) -> PullProgress:
        job = self._jobs[job_id]
        if len(job.events) <= since and not job.done:
            job.changed.clear()
            try:
                await asyncio.wait_for(job.changed.wait(), wait_s)
            except TimeoutError:
                pass
        # `done` is set after the last event is added, so a done job has no events still to come.
        return PullProgress(job.events[since:], job.done, job.error)
