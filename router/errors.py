"""One exception hierarchy for every error a client can see.

Each error knows its HTTP status, the text Ollama would send, the type/code OpenAI would send and
the type Anthropic would send. Rendering happens in exactly two places per protocol: before the
first byte (a real status, `router.api.app.Errors.render`) and after it (an in-band NDJSON line,
SSE frame or event, each protocol's `encode` module).
"""

from __future__ import annotations

from typing import Any


class HerdError(Exception):
    status: int = 500
    openai_type: str = "api_error"
    openai_code: str | None = None
    anthropic_type: str = "api_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.retry_after = retry_after
        self.headers = headers or {}  # extra response headers (OpenAI's x-ratelimit-*)

    def openai_message(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions pickle as `cls(*args)`, which loses the keyword fields and breaks subclasses
        # with other constructors (ModelNotFound); Ray pickles them between processes.
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(cls: type[HerdError], args: tuple[Any, ...], state: dict[str, Any]) -> HerdError:
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


class BadRequest(HerdError):
    status = 400
    openai_type = "invalid_request_error"
    anthropic_type = "invalid_request_error"


class ContextLengthExceeded(BadRequest):
    openai_code = "context_length_exceeded"


class Unauthorized(HerdError):
    """No API key, or one Herd does not know (or revoked)."""

    status = 401
    openai_type = "invalid_request_error"
    openai_code = "invalid_api_key"


class Forbidden(HerdError):
    """A valid key whose role or model list does not cover the request."""

    status = 403
    openai_type = "invalid_request_error"
    openai_code = "permission_denied"


class RateLimited(HerdError):
    """The key's requests or tokens per minute are used up; `retry_after` says when to try again."""

    status = 429
    openai_type = "requests"
    openai_code = "rate_limit_exceeded"


class PayloadTooLarge(HerdError):
    """The request body is over HERD_MAX_BODY_BYTES, or an upload over HERD_RAG_MAX_FILE_BYTES."""

    status = 413
    openai_type = "invalid_request_error"
    openai_code = "request_too_large"


class ModelNotFound(HerdError):
    status = 404
    openai_type = "invalid_request_error"
    openai_code = "model_not_found"
    anthropic_type = "not_found_error"

    def __init__(self, name: str) -> None:
        super().__init__(f"model '{name}' not found", param="model")
        self.name = name

    def openai_message(self) -> str:
        return f"The model `{self.name}` does not exist or you do not have access to it."


class NotFound(HerdError):
    status = 404
    openai_type = "not_found_error"
    anthropic_type = "not_found_error"


class UnknownResponse(NotFound):
    """A stored response id that does not exist (never stored, deleted, or past its TTL)."""

    openai_type = "invalid_request_error"


class HttpStatus(HerdError):
    """An HTTP-level refusal raised by Starlette itself (e.g. 400 for a malformed form), with its status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.openai_type = "invalid_request_error" if status < 500 else "api_error"


class MethodNotAllowed(HerdError):
    status = 405
    openai_type = "invalid_request_error"
    anthropic_type = "invalid_request_error"


class Overloaded(HerdError):
    status = 503
    openai_type = "api_error"
    openai_code = "overloaded"
    anthropic_type = "overloaded_error"


class StoreUnavailable(HerdError):
    """Redis (catalog, leases, keys) cannot be reached; requests that need it get a 503."""

    status = 503
    openai_type = "api_error"
    openai_code = "store_unavailable"
    anthropic_type = "overloaded_error"


class ShuttingDown(HerdError):
    """The router replica is stopping; a stream in flight ends with this in-band error."""

    status = 503
    openai_type = "api_error"
    openai_code = "shutting_down"


class TimedOut(HerdError):
    """The generation ran past the router's per-request limit (HERD_REQUEST_TIMEOUT_S)."""

    status = 504
    openai_type = "api_error"
    openai_code = "timeout"
    anthropic_type = "timeout_error"


class ReplicaLost(HerdError):
    """The engine replica serving the request died; Ray Serve is starting another."""

    status = 503
    openai_type = "api_error"
    openai_code = "replica_lost"
    anthropic_type = "overloaded_error"


class StartupError(HerdError):
    """`herd` cannot start: a bad cluster config, no Redis, a port taken. The CLI prints it and exits 2."""


class ConfigError(StartupError):
    """The cluster config file cannot be read or does not validate; the text names file and field."""


class RedisUnavailable(StartupError):
    """The embedded redis-server cannot be found or started."""


class ServerStopped(HerdError):
    """The router replica's HTTP server is not running (its health check fails, Serve replaces it)."""


class EngineError(HerdError):
    """The engine failed while serving a request (dead replica, engine exception)."""

    status = 500
    openai_type = "api_error"
    openai_code = "server_error"


class DeployError(HerdError):
    """`herd sdl` / `herd deploy`: a config that cannot become an Akash SDL, or a deployment that
    did not come up (no bid in time, a failed lease, a URI that never answers /ready)."""
