"""The one place where worker, manager and Ray exceptions become client errors (`HerdError`s).

Ray re-raises a remote exception as a subclass of the original (`RayTaskError`), whose text carries
the remote traceback; the original is its `cause`. Clients get the original's class and message.
"""

from __future__ import annotations

import logging

from ray.exceptions import RayActorError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError

from router.errors import BadRequest, ContextLengthExceeded, EngineError, HerdError, Overloaded, ReplicaLost
from workers.events import InvalidRequest, PromptTooLong

RETRY_AFTER_S = 2

log = logging.getLogger("herd.errors")


def map_error(exc: BaseException, failed: str = "the model's engine failed") -> HerdError:
    """`exc` as a client error. Anything unexpected becomes an EngineError with a short, stable
    text ("<failed>: <exception type>"); its whole text goes to the log, not to the client."""
    exc = unwrap(exc)
    if isinstance(exc, HerdError):
        return exc
    if isinstance(exc, BackPressureError):
        return Overloaded("the model's request queue is full, try again shortly", retry_after=RETRY_AFTER_S)
    if isinstance(exc, RayActorError):
        # Ray's own text is a paragraph about OOM killers; the client needs the fact and a retry hint.
        return ReplicaLost("the model's engine replica died; a new one is starting", retry_after=RETRY_AFTER_S)
    if isinstance(exc, DeploymentUnavailableError):
        return Overloaded("the model has no running replica yet, try again shortly", retry_after=RETRY_AFTER_S)
    if isinstance(exc, PromptTooLong):
        return ContextLengthExceeded(cause_text(exc))
    if isinstance(exc, InvalidRequest):
        return BadRequest(cause_text(exc))
    log.error("%s: %s", failed, cause_text(exc))
    return EngineError(f"{failed}: {type(exc).__name__}")


def unwrap(exc: BaseException) -> BaseException:
    """The worker's own exception inside Ray's wrapper (or `exc` itself)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, Exception) else exc


def cause_text(exc: BaseException) -> str:
    # A RayTaskError's str() carries a remote traceback; the last line is the original message.
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
