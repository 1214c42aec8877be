"""Model records and the names that resolve to them.

This catalog is built from the cluster config at start-up and is read-only; every router replica
gets the same records. (Issue #3 moves it into Redis for pull/create/copy/delete.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from starlette.requests import Request

from router.errors import BadRequest, ModelNotFound
from router.names import ModelName, parse_name
from workers.spec import ModelSpec


@dataclass(frozen=True)
class ModelRecord:
    """One served model as clients see it."""

    name: ModelName
    spec: ModelSpec
    size: int
    digest: str
    modified_ns: int
    context_length: int
    aliases: tuple[ModelName, ...] = field(default=())

    @property
    def deployment_id(self) -> str:
        return self.name.deployment_id

    @property
    def capabilities(self) -> list[str]:
        return ["embedding"] if self.spec.kind == "embed" else ["completion"]

    def require_generation(self, requested: str, endpoint: str) -> None:
        """Embedding models cannot chat or generate: Ollama's 400 text, not an engine failure."""
        if "completion" not in self.capabilities:
            raise BadRequest(f'"{requested}" does not support {endpoint}')

    def require_embedding(self, requested: str) -> None:
        """Generation models have no pooling runner: Ollama's 400 text, before any engine call."""
        if "embedding" not in self.capabilities:
            raise BadRequest(f'"{requested}" does not support embeddings', param="model")


class Catalog:
    """Resolves Ollama names (case-insensitive, default namespace and tag) to records."""

    def __init__(self, records: Iterable[ModelRecord]) -> None:
        self._records = list(records)
        self._by_key: dict[str, ModelRecord] = {}
        for record in self._records:
            for name in (record.name, *record.aliases):
                self._by_key[name.key] = record

    def resolve_for(self, request: Request, text: str) -> ModelRecord:
        """`resolve`, also noting the model on the request: the label of its `herd_requests_total`."""
        record = self.resolve(text)
        request.state.model = record.name.display
        return record

    def resolve(self, text: str) -> ModelRecord:
        """The record for a request's `model` string; raises ModelNotFound (or BadRequest if malformed)."""
        record = self._by_key.get(parse_name(text).key)
        if record is None:
            raise ModelNotFound(text)
        return record

    def records(self) -> list[ModelRecord]:
        return list(self._records)
