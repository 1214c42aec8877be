"""One exception hierarchy for every error a client can see.

Each error knows its HTTP status, the text Ollama would send and the type/code OpenAI would
send. Rendering happens in exactly two places per protocol: before the first byte (a real
status) and after it (an in-band NDJSON line or SSE frame), both in `router.stream`.
"""

from __future__ import annotations


class HerdError(Exception):
    status: int = 500
    openai_type: str = "api_error"
    openai_code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.retry_after = retry_after

    def openai_message(self) -> str:
        return self.message


class BadRequest(HerdError):
    status = 400
    openai_type = "invalid_request_error"


class ContextLengthExceeded(BadRequest):
    openai_code = "context_length_exceeded"


class ModelNotFound(HerdError):
    status = 404
    openai_type = "invalid_request_error"
    openai_code = "model_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"model '{name}' not found", param="model")
        self.name = name

    def openai_message(self) -> str:
        return f"The model `{self.name}` does not exist or you do not have access to it."


class NotFound(HerdError):
    status = 404
    openai_type = "not_found_error"


class MethodNotAllowed(HerdError):
    status = 405
    openai_type = "invalid_request_error"


class Overloaded(HerdError):
    status = 503
    openai_type = "api_error"
    openai_code = "overloaded"


class TimedOut(HerdError):
    """The generation ran past the router's per-request limit (HERD_REQUEST_TIMEOUT_S)."""

    status = 504
    openai_type = "api_error"
    openai_code = "timeout"


class ReplicaLost(HerdError):
    """The engine replica serving the request died; Ray Serve is starting another."""

    status = 503
    openai_type = "api_error"
    openai_code = "replica_lost"


class EngineError(HerdError):
    """The engine failed while serving a request (dead replica, engine exception)."""

    status = 500
    openai_type = "api_error"
    openai_code = "server_error"


class DeployError(HerdError):
    """`herd sdl` / `herd deploy`: a config that cannot become an Akash SDL, or a deployment that
    did not come up (no bid in time, a failed lease, a URI that never answers /ready)."""
