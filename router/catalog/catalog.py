"""Model records and the names that resolve to them, read through from the shared Redis store.

Every router replica keeps a copy of the catalog and checks the store's version counter on each
lookup (a read made after the lookup started, in a round trip shared with the lookups that wait for
the same one), so a model created, copied or deleted through any replica is seen by all of them on
their next request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import RedisError

from router.catalog.modelfile import Modelfile
from router.catalog.names import ModelName, parse_name
from router.catalog.store import CatalogStore
from router.errors import BadRequest, ModelNotFound
from workers.spec import ModelSpec

# What /api/create sets on a record (the rest describes the weights it runs on): the Modelfile's
# fields of the same names, and `parent` for its FROM.
log = logging.getLogger("herd.catalog")

MODELFILE_FIELDS = ("parent", "system", "template", "parameters", "messages", "license")
_SHARED = MODELFILE_FIELDS[1:]


# Records in Redis outlive the code that wrote them. Each carries its schema version; a record of
# an older version is migrated when read (MIGRATIONS[v] turns a version-v dict into version v+1).
RECORD_VERSION = 1
Migration = Callable[[dict[str, Any]], dict[str, Any]]
MIGRATIONS: dict[int, Migration] = {
    0: lambda record: record,  # records before versioning: the same fields
}


def parse_record(
    raw: str, migrations: Mapping[int, Callable[[dict[str, Any]], dict[str, Any]]] = MIGRATIONS
) -> ModelRecord:
    """A stored record, migrated to the current schema; raises ValueError if it cannot be read."""
    data = json.loads(raw)
    version = int(data.pop("schema_version", 0))
    if version > RECORD_VERSION:
        raise ValueError(f"record schema {version} is newer than this Herd's ({RECORD_VERSION})")
    while version < RECORD_VERSION:
        data = migrations[version](data)
        version += 1
    return ModelRecord.model_validate(data | {"schema_version": version})


class ModelRecord(BaseModel):
    """One model as clients see it: the weights it runs on (`deployment_id`, `spec`) and the
    defaults its Modelfile sets. Models created FROM another share its deployment."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = Field(RECORD_VERSION, description="Bumped when a field changes; see MIGRATIONS.")
    name: str = Field(description="Display name, e.g. 'smollm2:135m'.")
    aliases: tuple[str, ...] = ()
    deployment_id: str
    spec: ModelSpec
    model_path: str = Field(description="What vLLM loads: a local folder or a hub id.")
    size: int
    digest: str
    modified_ns: int
    context_length: int
    embedding_length: int = 0
    parent: str = Field("", description="The model this one was created from.")
    system: str | None = None
    template: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    messages: tuple[dict[str, str], ...] = ()
    license: tuple[str, ...] = ()

    def modelfile(self) -> Modelfile:
        """The Modelfile this record's defaults amount to (FROM its parent, or itself)."""
        fields = {f: getattr(self, f) for f in _SHARED} | {"parameters": dict(self.parameters)}
        return Modelfile(base=self.parent or self.name, **fields)

    def modelfile_fields(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in MODELFILE_FIELDS}

    @property
    def model_name(self) -> ModelName:
        return parse_name(self.name)

    @property
    def capabilities(self) -> list[str]:
        # Every generation model can call tools here (guided decoding, or the tool prompt for
        # templates without tools); editors such as VS Code list only models that say so.
        return ["embedding"] if self.spec.kind == "embed" else ["completion", "tools"]

    def chat_messages(self, messages: list[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
        """A request's messages after the model's SYSTEM default (unless the request has its own
        system message) and MESSAGE history, in Ollama's order."""
        has_system = any(m["role"] == "system" for m in messages)
        head = [] if has_system or not self.system else [{"role": "system", "content": self.system}]
        return (*head, *self.messages, *messages)

    def require_generation(self, requested: str, endpoint: str) -> None:
        """Embedding models cannot chat or generate: Ollama's 400 text, not an engine failure."""
        if "completion" not in self.capabilities:
            raise BadRequest(f'"{requested}" does not support {endpoint}')

    def require_embedding(self, requested: str) -> None:
        """Generation models have no pooling runner: Ollama's 400 text, before any engine call."""
        if "embedding" not in self.capabilities:
            raise BadRequest(f'"{requested}" does not support embeddings', param="model")


def modelfile_fields(mf: Modelfile, parent: str) -> dict[str, Any]:
    """The record fields a Modelfile sets, for a model created FROM `parent` ("" for weights)."""
    # Lists are copied so a derived record never shares a mutable `stop` with its Modelfile.
    return {f: getattr(mf, f) for f in _SHARED} | {"parent": parent, "parameters": dict(mf.parameters)}


class LoadedModel(BaseModel):
    """A deployment with running replicas, as the model manager recorded it when it loaded."""

    name: str = Field(description="The name the model was loaded for.")
    loaded_ns: int = 0
    load_s: float = 0.0
    always_on: bool = False
    # /api/ps still shows a model whose names were deleted while it drains.
    record: ModelRecord | None = None


class Catalog:
    """Resolves Ollama names (case-insensitive, default namespace and tag) to records."""

    def __init__(self, store: CatalogStore) -> None:
        self.store = store
        self._version = -1
        self._records: dict[str, ModelRecord] = {}
        self._names: dict[str, str] = {}
        self.unreadable: dict[str, str] = {}  # stored records this Herd cannot parse, with the reason

    async def refresh(self) -> None:
        """Read the store's catalog if it changed. While Redis is down, the last copy serves (a
        model this replica already knows keeps answering); without one, the RedisError is raised."""
        try:
            version = await self.store.version()
            if version == self._version:
                return
            version, raw_records, names = await self.store.snapshot()
        except RedisError as exc:
            if self._version < 0:
                raise
            log.warning("Redis unavailable, serving the cached catalog: %s", exc)
            return
        if version == self._version:  # a lookup that shared this snapshot has read it in already
            return
        records, unreadable = {}, {}
        for key, raw in raw_records.items():
            try:
                records[key] = parse_record(raw)
            except (ValueError, KeyError) as exc:  # one bad record must not hide the others
                unreadable[key] = str(exc).splitlines()[0]
        for key in unreadable.keys() - self.unreadable.keys():
            log.warning("skipping catalog record %s: %s", key, unreadable[key])
        self._records, self._names, self._version, self.unreadable = records, names, version, unreadable

    async def resolve(self, text: str) -> ModelRecord:
        """The record for a request's `model` string; raises ModelNotFound (or BadRequest if malformed)."""
        key = parse_name(text).key
        await self.refresh()
        record = self._records.get(self._names.get(key, ""))
        if record is None:
            raise ModelNotFound(text)
        return record

    async def find(self, text: str) -> ModelRecord | None:
        try:
            return await self.resolve(text)
        except ModelNotFound:
            return None

    async def records(self) -> list[ModelRecord]:
        """Newest first, as Ollama lists them."""
        await self.refresh()
        return sorted(self._records.values(), key=lambda r: (-r.modified_ns, r.name))

    async def loaded(self) -> dict[str, LoadedModel]:
        """Deployments with running replicas (deployment id -> what the manager recorded)."""
        return {dep: LoadedModel.model_validate_json(raw) for dep, raw in (await self.store.loaded()).items()}

    async def expiries(self) -> dict[str, int | None]:
        """Deployment id -> wall-clock ns after which it may unload; None: never."""
        return await self.store.expiries()

    async def set_loaded(self, deployment_id: str, loaded: LoadedModel) -> None:
        await self.store.set_loaded(deployment_id, loaded.model_dump_json())

    async def put(self, record: ModelRecord) -> None:
        """Register `record` under its name and aliases (replacing a record of the same name)."""
        key = record.model_name.key
        await self.store.put(key, record.model_dump_json(), [key, *(parse_name(a).key for a in record.aliases)])

    async def remove(self, text: str) -> ModelRecord:
        """Remove a name (an alias, or a model with all its aliases); ModelNotFound if there is none."""
        removed, _ = await self.store.remove(parse_name(text).key)
        if removed is None:
            raise ModelNotFound(text)
        return parse_record(removed)
