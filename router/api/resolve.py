"""A request's model: resolved through the catalog and noted on the request for its metric label."""

from __future__ import annotations

from starlette.requests import Request

from router.api.access import require_model
from router.catalog.catalog import Catalog, ModelRecord


async def resolve_model(catalog: Catalog, request: Request, text: str) -> ModelRecord:
    """`Catalog.resolve`, refused (403) for a key not allowed the model; also notes the model on
    the request: the label of its `herd_requests_total`."""
    record = await catalog.resolve(text)
    require_model(request, record.name)
    request.state.model = record.name
    return record


async def resolve_generation(catalog: Catalog, request: Request, text: str, endpoint: str) -> ModelRecord:
    """`resolve_model` for a generation route: a model that cannot serve `endpoint` is a 400."""
    record = await resolve_model(catalog, request, text)
    record.require_generation(text, endpoint)
    return record
