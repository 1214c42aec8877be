"""Ollama's model management: `/api/tags`, `/api/show`, `/api/ps`, `/api/pull`, `/api/create`,
`/api/copy`, `/api/delete`. The catalog is shared through Redis; pulls run in the model manager.

A derived model (`FROM` a catalog model) is a new record on the same deployment: it shares the
base's replicas and adds its own Modelfile defaults. Deleting a name never stops replicas another
name still uses; the manager stops a deployment once no name refers to it and no request is on it.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from router.api import frames
from router.api.access import require_local_access, visible
from router.api.body import parse_json_body
from router.api.local_paths import LocalPaths
from router.api.ollama import encode as ollama_encode
from router.api.resolve import resolve_model
from router.catalog.catalog import Catalog, ModelRecord, modelfile_fields
from router.catalog.modelfile import Modelfile, from_fields, merge, parameters_text, parse_modelfile, render
from router.catalog.names import parse_name
from router.dispatch.failures import map_error
from router.dispatch.handles import Call, ManagerHandle
from router.errors import BadRequest, EngineError, Forbidden, HerdError
from router.protocol import ollama as wire
from router.protocol.ollama import CopyRequest, CreateRequest, DeleteRequest, PullRequest, ShowRequest

NDJSON = "application/x-ndjson"
# A hub repository id (`owner/name`), which names nothing on the server's disk.
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
# Ollama shows a model kept loaded forever as expiring in the far future.
FAR_FUTURE = "2318-01-01T00:00:00Z"

T = TypeVar("T")


class ModelsApi:
    def __init__(self, catalog: Catalog, manager: ManagerHandle | None, paths: LocalPaths) -> None:
        self._catalog = catalog
        self._manager = manager  # the ModelManager actor (pulls); None in unit tests without one
        self._paths = paths

    async def tags(self, request: Request) -> Response:
        body: wire.ListResponse = {"models": [tag_entry(r) for r in visible(request, await self._catalog.records())]}
        return JSONResponse(body)

    async def show(self, request: Request) -> Response:
        req = parse_json_body(ShowRequest, await request.body())
        return JSONResponse(show_body(await resolve_model(self._catalog, request, req.target)))

    async def ps(self, request: Request) -> Response:
        loaded, expiries = await self._catalog.loaded(), await self._catalog.expiries()
        records = await self._catalog.records()
        by_name = {r.name: r for r in records}
        by_deployment = {r.deployment_id: r for r in records}
        models: list[wire.ProcessModelResponse] = []
        for deployment, info in loaded.items():
            # Listed under the name it was loaded for, another name on its replicas, or (its names
            # deleted while it drains) the record it was loaded with.
            named = by_name.get(info.name)
            record = named if named and named.deployment_id == deployment else by_deployment.get(deployment)
            record = record or info.record
            if record is None:
                continue
            models.append(ps_entry(record, None if info.always_on else expiries.get(deployment)))
        models.sort(key=lambda m: m["expires_at"], reverse=True)
        body: wire.ProcessResponse = {"models": models}
        return JSONResponse(body)

    async def pull(self, request: Request) -> Response:
        req = parse_json_body(PullRequest, await request.body())
        parse_name(req.target)
        source = await self._request_source(request, req.source)
        job = await self._call(self._require_manager().pull.remote(req.target, source, None))
        return await _progress(self._progress_events(job), req.stream)

    async def create(self, request: Request) -> Response:
        req = parse_json_body(CreateRequest, await request.body())
        name = parse_name(req.target).display
        modelfile, folder = await self._requested_modelfile(request, req)
        base = await self._catalog_base(modelfile.base)
        if base is not None:
            record = derive(base, name, modelfile)
            await self._catalog.put(record)
            return await _progress(_created(base, record), req.stream)
        source = await self._local_source(request, modelfile.base, folder)
        job = await self._call(
            self._require_manager().pull.remote(name, source, modelfile_fields(modelfile, parent=""))
        )
        return await _progress(self._progress_events(job), req.stream)

    async def copy(self, request: Request) -> Response:
        req = parse_json_body(CopyRequest, await request.body())
        if not req.source or not req.destination:
            raise BadRequest("source and destination are required")
        source = await self._catalog.resolve(req.source)
        name = parse_name(req.destination).display
        await self._catalog.put(source.model_copy(update={"name": name, "aliases": (), "modified_ns": time.time_ns()}))
        return Response(status_code=200)

    async def delete(self, request: Request) -> Response:
        req = parse_json_body(DeleteRequest, await request.body())
        await self._catalog.remove(req.target)  # the manager stops replicas no name uses any more
        return Response(status_code=200)

    async def _requested_modelfile(self, request: Request, req: CreateRequest) -> tuple[Modelfile, Path | None]:
        """The Modelfile of a create request (its text, a path to it, or the JSON fields) and,
        when read from a path, its folder (a relative FROM is relative to it, as in Ollama)."""
        if req.modelfile is None and req.path:
            require_local_access(request, "Modelfile paths")
            text, path = await self._paths.read_modelfile(req.path)
            return _parse_file(text, req.path), path.parent
        return _requested_modelfile(req), None

    async def _catalog_base(self, base: str) -> ModelRecord | None:
        try:
            return await self._catalog.find(base)
        except BadRequest:  # not a model name (`/models/x.gguf`): a path
            return None

    async def _local_source(self, request: Request, base: str, folder: Path | None) -> str:
        """FROM a file or folder under the model roots, for callers that may name server paths."""
        try:
            require_local_access(request, "local paths")
        except Forbidden as exc:
            raise BadRequest(f'FROM "{base}": no such model in the catalog ({exc.message})', param="from") from exc
        return str(await self._paths.weights(base, folder))

    async def _request_source(self, request: Request, source: str | None) -> str | None:
        """A pull's `source` from a request: a hub id, or a local path under the model roots.
        `package:` sources name installed modules, which only the cluster config may do."""
        if source is None:
            return None
        kind, _, rest = source.partition(":")
        if kind == "package":
            raise BadRequest("package: sources come only from the cluster config", param="source")
        if kind == "hf" and HUB_ID.fullmatch(rest):
            return source
        require_local_access(request, "local paths")
        path = await self._paths.weights(rest if kind in ("hf", "gguf") else source)
        return f"{kind}:{path}" if kind in ("hf", "gguf") else str(path)

    def _require_manager(self) -> ManagerHandle:
        if self._manager is None:
            raise EngineError("this router has no model manager")
        return self._manager

    async def _call(self, call: Call[T]) -> T:
        try:
            return await call
        except Exception as exc:
            raise map_error(exc) from exc

    async def _progress_events(self, job_id: str) -> AsyncIterator[wire.ProgressResponse]:
        seen, done = 0, False
        while not done:
            progress = await self._call(self._require_manager().pull_progress.remote(job_id, seen))
            seen, done = seen + len(progress.events), progress.done
            for event in progress.events:
                yield event
            if progress.error is not None:
                raise progress.error


async def _progress(events: AsyncIterator[wire.ProgressResponse], streaming: bool) -> Response:
    """Ollama's status stream, or (stream false) its last object; a failure is an `error` object."""
    if streaming:
        return StreamingResponse(_ndjson(events), media_type=NDJSON)
    last: wire.ProgressResponse | None = None
    async for event in events:  # a failed pull raises its error here: a real status
        last = event
    return JSONResponse(last if last is not None else {})


async def _ndjson(events: AsyncIterator[wire.ProgressResponse]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield json.dumps(event).encode() + b"\n"
    except HerdError as err:
        yield ollama_encode.error(err)


async def _created(base: ModelRecord, record: ModelRecord) -> AsyncIterator[wire.ProgressResponse]:
    events: tuple[wire.ProgressResponse, ...] = (
        {"status": f"using existing layer sha256:{base.digest}"},
        {"status": f"creating new layer sha256:{record.digest}"},
        {"status": "writing manifest"},
        {"status": "success"},
    )
    for event in events:
        yield event


def _requested_modelfile(req: CreateRequest) -> Modelfile:
    """The Modelfile of a create request: its text, a path to it, or the JSON fields."""
    if req.files or req.adapters:
        raise BadRequest("creating from uploaded blobs is not supported; use FROM with a model or a path on the server")
    if req.quantize:
        raise BadRequest("quantize is not supported: vLLM serves the weights as they are")
    if req.modelfile is not None:
        return parse_modelfile(req.modelfile)
    if not req.from_:
        raise BadRequest("neither 'from' nor 'modelfile' was specified")
    return from_fields(
        base=req.from_,
        system=req.system,
        template=req.template,
        parameters=req.parameters,
        messages=req.messages,
        license=req.license,
    )


def _parse_file(text: str, shown: str) -> Modelfile:
    """A Modelfile read from disk; its errors name the line but never quote what the file holds."""
    try:
        return parse_modelfile(text)
    except BadRequest as exc:
        where = exc.message.split(":", 1)[0] if exc.message.startswith("line ") else "it"
        raise BadRequest(f"Modelfile {shown!r} is not valid ({where})", param="path") from exc


def derive(base: ModelRecord, name: str, mf: Modelfile) -> ModelRecord:
    """A model FROM a catalog model: the base's weights and deployment, the child's defaults on top."""
    defaults = modelfile_fields(merge(base.modelfile(), mf), base.name)
    # Its own digest, as Ollama's manifest of a derived model differs from the base's.
    digest = hashlib.sha256(f"{base.digest}\n{json.dumps(defaults, sort_keys=True)}".encode()).hexdigest()
    return base.model_copy(
        update={"name": name, "aliases": (), "digest": digest, "modified_ns": time.time_ns(), **defaults}
    )


def details(r: ModelRecord) -> wire.ModelDetails:
    return {
        "parent_model": r.parent,
        "format": "safetensors",
        "family": r.spec.family,
        "families": [r.spec.family] if r.spec.family else None,
        "parameter_size": r.spec.parameter_size,
        "quantization_level": r.spec.quantization_level,
    }


def tag_entry(r: ModelRecord) -> wire.ListModelResponse:
    return {
        "name": r.name,
        "model": r.name,
        "modified_at": frames.rfc3339_nano(r.modified_ns),
        "size": r.size,
        "digest": r.digest,
        "details": details(r),
    }


def ps_entry(r: ModelRecord, expires_ns: int | None) -> wire.ProcessModelResponse:
    expires = FAR_FUTURE if expires_ns is None else frames.rfc3339_nano(expires_ns)
    vram = r.size if r.spec.gpus_per_replica else 0
    return {
        "name": r.name,
        "model": r.name,
        "size": r.size,
        "digest": r.digest,
        "details": details(r),
        "expires_at": expires,
        "size_vram": vram,
        "context_length": r.context_length,
    }


def show_body(r: ModelRecord) -> wire.ShowResponse:
    arch = r.spec.family or "llama"
    info: dict[str, str | int] = {"general.architecture": arch, f"{arch}.context_length": r.context_length}
    if r.embedding_length:
        info[f"{arch}.embedding_length"] = r.embedding_length
    body: wire.ShowResponse = {
        "license": "\n".join(r.license),
        "modelfile": render(r.name, r.modelfile()),
        "parameters": parameters_text(r.parameters),
        # Without a TEMPLATE the model renders prompts with its own (Jinja) chat template.
        "template": r.template or "",
        "system": r.system or "",
        "details": details(r),
        "model_info": info,
        "capabilities": r.capabilities,
        "modified_at": frames.rfc3339_nano(r.modified_ns),
    }
    if r.messages:
        body["messages"] = list(r.messages)
    return body
