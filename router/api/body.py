"""Parse a JSON request body into a wire model, with errors clients can read.

Content-Type is ignored on purpose: `curl -d` sends form encoding and Ollama accepts it.
"""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from router.errors import BadRequest

T = TypeVar("T", bound=BaseModel)


def parse_json_body(model_cls: type[T], raw: bytes) -> T:
    if not raw.strip():
        raise BadRequest("missing request body")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"invalid JSON body: {exc}") from exc
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
