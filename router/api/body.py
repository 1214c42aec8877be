"""Parse a JSON request body into a wire model, with errors clients can read.

Content-Type is ignored on purpose: `curl -d` sends form encoding and Ollama accepts it.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from router.errors import BadRequest

T = TypeVar("T", bound=BaseModel)
# Deeper bodies are refused before validation: pydantic, the encoders and the template engine
# recurse, and no real request (tool schemas included) comes near this.
MAX_DEPTH = 64


def parse_json_body(model_cls: type[T], raw: bytes) -> T:
    if not raw.strip():
        raise BadRequest("missing request body")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"invalid JSON body: {exc}") from exc
    except RecursionError as exc:  # the C parser gives up around a thousand levels
        raise BadRequest(f"invalid JSON body: nested deeper than {MAX_DEPTH} levels") from exc
    if not _shallow(data):
        raise BadRequest(f"invalid JSON body: nested deeper than {MAX_DEPTH} levels")
    if not isinstance(data, dict):
        raise BadRequest("the request body must be a JSON object")
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        if err["type"] == "value_error":  # the models' own checks: "top_logprobs must be between ..."
            raise BadRequest(f"{field} {err['ctx']['error']}", param=field) from exc
        raise BadRequest(f"{field}: {err['msg']}" if field else err["msg"], param=field or None) from exc


def _shallow(data: Any) -> bool:
    """Whether no container in `data` is nested deeper than MAX_DEPTH (iteratively: no recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > MAX_DEPTH:
            return False
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return True
