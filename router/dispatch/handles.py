"""What the router may call on other processes, typed: a model's worker deployment and the manager.

Both are Ray handles: `handle.method.remote(*args)` returns an awaitable call that `cancel()`
stops (Ray Serve's `DeploymentResponse`, Ray's `ObjectRef`). The worker side of the same methods
is `workers.surface.WorkerSurface`; the manager's is `router.manager.lifecycle.ModelManager`.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, Protocol, TypeVar

from router.errors import HerdError
from router.protocol.ollama import ProgressResponse
from workers.events import EmbedRequest, EmbedResult, GenerationRequest

P = ParamSpec("P")
T_co = TypeVar("T_co", covariant=True)


class Call(Protocol[T_co]):
    """One remote call in flight: await it for the result (remote errors raise), or cancel it."""

    def __await__(self) -> Generator[Any, None, T_co]: ...

    def cancel(self) -> None: ...


class Remote(Protocol, Generic[P, T_co]):
    """A remote method: `.remote(*args)` starts a call."""

    def remote(self, *args: P.args, **kwargs: P.kwargs) -> Call[T_co]: ...


class WorkerHandle(Protocol):
    """A model's worker deployment (Ray Serve picks the replica per call).

    `generate_to` returns when the generation ends; its events go to the router's inbox at the
    given address (see `router.dispatch.inbox`). Cancelling the call aborts the engine request.
    """

    @property
    def generate_to(self) -> Remote[[GenerationRequest, str], None]: ...
    @property
    def embed(self) -> Remote[[EmbedRequest], EmbedResult]: ...
    @property
    def count_tokens(self) -> Remote[[GenerationRequest], int]: ...
    @property
    def ping(self) -> Remote[[], bool]: ...
    @property
    def stats(self) -> Remote[[], dict[str, Any]]: ...


class WorkerHandles(Protocol):
    """Worker handles by deployment id (`ServeHandles`; `tests.support.LocalHandles` in tests)."""

    def get(self, deployment_id: str) -> WorkerHandle: ...


@dataclass(frozen=True)
class PullProgress:
    """What a pull added since the caller last looked; `error` ends a failed job (after `events`)."""

    events: list[ProgressResponse]
    done: bool
    error: HerdError | None = None


class ManagerHandle(Protocol):
    """The model-manager actor (one per cluster): loads, unloads and pulls."""

    @property
    def start(self) -> Remote[[], None]: ...
    @property
    def ensure_loaded(self) -> Remote[[str, int | None], None]: ...
    @property
    def unload(self) -> Remote[[str], None]: ...
    @property
    def pull(self) -> Remote[[str, str | None, dict[str, Any] | None], str]: ...
    @property
    def pull_progress(self) -> Remote[[str, int], PullProgress]: ...
