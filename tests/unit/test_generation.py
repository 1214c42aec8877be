from __future__ import annotations

import pytest

from router.errors import BadRequest, ContextLengthExceeded, EngineError, HerdError, ModelNotFound
from router.generation import map_error
from workers.events import InvalidRequest, PromptTooLong


@pytest.mark.parametrize(
    ("exc", "kind", "status", "message"),
    [
        (PromptTooLong("the prompt has 9 tokens"), ContextLengthExceeded, 400, "the prompt has 9 tokens"),
        (
            InvalidRequest("Traceback...\n  File x\nValueError: top_p must be in (0, 1]"),
            BadRequest,
            400,
            "ValueError: top_p must be in (0, 1]",
        ),
        (RuntimeError("EngineCore died"), EngineError, 500, "the model's engine failed: EngineCore died"),
        (ModelNotFound("x"), ModelNotFound, 404, "model 'x' not found"),
    ],
)
def test_worker_errors_map_to_client_errors(exc: Exception, kind: type[HerdError], status: int, message: str) -> None:
    err = map_error(exc)
    assert type(err) is kind and err.status == status and err.message == message
