"""Ollama wire models: requests (pydantic; unknown fields are ignored), then responses, stream lines
and errors (TypedDicts). Field order follows Ollama's docs/api.md."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

from pydantic import BaseModel, ConfigDict, Field, field_validator

from router.protocol.ranges import TopLogprobs


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class GenerateRequest(_Wire):
    model: str = ""
    prompt: str = ""
    suffix: str | None = None
    system: str | None = None
    template: str | None = None
    context: list[int] | None = None
    stream: bool = True
    raw: bool = False
    format: str | dict[str, Any] | None = None
    keep_alive: str | float | None = None
    images: list[str] | None = None
    options: dict[str, Any] | None = None
    think: bool | str | None = None
    truncate: bool | None = None
    shift: bool | None = None
    logprobs: bool | None = None
    top_logprobs: TopLogprobs = None


class Message(_Wire):
    role: str
    # Ollama requires a string; ollama-python drops empty content, so it may be missing.
    content: str = ""
    thinking: str | None = None
    images: list[str] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None

    @field_validator("role")
    @classmethod
    def _lower(cls, role: str) -> str:
        return role.lower()


class ChatRequest(_Wire):
    model: str = ""
    messages: list[Message] = []
    tools: list[dict[str, Any]] | None = None
    format: str | dict[str, Any] | None = None
    options: dict[str, Any] | None = None
    stream: bool = True
    keep_alive: str | float | None = None
    think: bool | str | None = None
    truncate: bool | None = None
    shift: bool | None = None
    logprobs: bool | None = None
    top_logprobs: TopLogprobs = None


class ShowRequest(_Wire):
    model: str = ""
    name: str = ""  # the legacy field, still sent by older clients
    verbose: bool = False

    @property
    def target(self) -> str:
        return self.model or self.name


class EmbedRequest(_Wire):
    model: str = ""
    # A string or a list of strings; checked by `router.convert.embeddings.ollama_inputs` for Ollama's error text.
    input: Any = None
    truncate: bool | None = None  # Ollama's default (null too) is true
    dimensions: int | None = None
    keep_alive: str | float | None = None
    options: dict[str, Any] | None = None


class EmbeddingsRequest(_Wire):
    """The legacy single-prompt `/api/embeddings`."""

    model: str = ""
    prompt: str = ""
    options: dict[str, Any] | None = None
    keep_alive: str | float | None = None


class PullRequest(_Wire):
    model: str = ""
    name: str = ""  # the legacy field
    insecure: bool = False
    stream: bool = True
    # Herd extension: where the weights come from when the name alone does not say (see README).
    source: str | None = None

    @property
    def target(self) -> str:
        return self.model or self.name


class CreateRequest(_Wire):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    model: str = ""
    name: str = ""  # the legacy field
    from_: str | None = Field(None, alias="from")
    files: dict[str, str] | None = None
    adapters: dict[str, str] | None = None
    template: str | None = None
    license: str | list[str] | None = None
    system: str | None = None
    parameters: dict[str, Any] | None = None
    messages: list[dict[str, Any]] | None = None
    quantize: str | None = None
    stream: bool = True
    # The older forms: a Modelfile's text, or its path on the server.
    modelfile: str | None = None
    path: str | None = None

    @property
    def target(self) -> str:
        return self.model or self.name


class CopyRequest(_Wire):
    source: str = ""
    destination: str = ""


class DeleteRequest(_Wire):
    model: str = ""
    name: str = ""  # the legacy field

    @property
    def target(self) -> str:
        return self.model or self.name


# Responses, stream lines and errors: TypedDicts, so the encoders keep building plain dicts (no
# model on the streaming path) while mypy checks every key they write. Each mirrors its struct in
# Ollama's api/types.go; `NotRequired` marks a field Go's omitempty drops or one Herd sends only
# sometimes. Fields Ollama has and Herd never sends (thinking, images, remote_*) are left out, so a
# test can hold every encoder to exactly these keys.


class TokenLogprob(TypedDict):
    token: str
    logprob: float
    bytes: list[int]  # the token's UTF-8 bytes


class Logprob(TypedDict):
    """One generated token's entry in `logprobs` (Ollama >= 0.12)."""

    token: str
    logprob: float
    bytes: list[int]
    top_logprobs: NotRequired[list[TokenLogprob]]  # only when the request asked for `top_logprobs`


class ToolCallFunction(TypedDict):
    index: int
    name: str
    arguments: dict[str, Any]  # an object, never OpenAI's JSON string


class ToolCall(TypedDict):
    id: str
    function: ToolCallFunction


class ResponseMessage(TypedDict):
    """The assistant's `message` in a chat line (Go's `Message`; the request side is `Message`)."""

    role: Literal["assistant"]
    content: str
    tool_calls: NotRequired[list[ToolCall]]  # whole calls, in one line before the final one


class GenerateResponse(TypedDict):
    """One `/api/generate` NDJSON line: `done` false while streaming, true on the final one (the
    whole body when not streaming), which alone has `done_reason`, `context` and the metrics:
    durations in ns, counts in tokens, each dropped when zero (Go's omitempty)."""

    model: str
    created_at: str  # Go's RFC3339Nano
    response: str
    done: bool
    done_reason: NotRequired[str]
    context: NotRequired[list[int]]  # absent in raw mode
    total_duration: NotRequired[int]
    load_duration: NotRequired[int]
    prompt_eval_count: NotRequired[int]
    prompt_eval_duration: NotRequired[int]
    eval_count: NotRequired[int]
    eval_duration: NotRequired[int]
    # Herd extension: the router's added time (ns), all of the request's time outside the worker.
    router_duration: NotRequired[int]
    logprobs: NotRequired[list[Logprob]]


class ChatResponse(TypedDict):
    """One `/api/chat` NDJSON line; `done`, `done_reason` and the metrics as in GenerateResponse."""

    model: str
    created_at: str
    message: ResponseMessage
    done: bool
    done_reason: NotRequired[str]
    total_duration: NotRequired[int]
    load_duration: NotRequired[int]
    prompt_eval_count: NotRequired[int]
    prompt_eval_duration: NotRequired[int]
    eval_count: NotRequired[int]
    eval_duration: NotRequired[int]
    router_duration: NotRequired[int]  # Herd extension (see GenerateResponse)
    logprobs: NotRequired[list[Logprob]]


class ErrorResponse(TypedDict):
    """Every error body, and the in-band line after the first byte."""

    error: str


class EmbedResponse(TypedDict):
    model: str
    embeddings: list[list[float]]
    total_duration: NotRequired[int]
    load_duration: NotRequired[int]
    prompt_eval_count: NotRequired[int]


class EmbeddingResponse(TypedDict):
    """The legacy `/api/embeddings`."""

    embedding: list[float]


class ModelDetails(TypedDict):
    parent_model: str
    format: str
    family: str
    families: list[str] | None
    parameter_size: str
    quantization_level: str


class ListModelResponse(TypedDict):
    """One model in `/api/tags`."""

    name: str
    model: str
    modified_at: str
    size: int
    digest: str
    details: ModelDetails


class ListResponse(TypedDict):
    models: list[ListModelResponse]


class ProcessModelResponse(TypedDict):
    """One loaded model in `/api/ps`."""

    name: str
    model: str
    size: int
    digest: str
    details: ModelDetails
    expires_at: str
    size_vram: int
    context_length: int


class ProcessResponse(TypedDict):
    models: list[ProcessModelResponse]


class ShowResponse(TypedDict):
    """`/api/show`. Unlike Ollama, empty strings are sent, not dropped."""

    license: str
    modelfile: str
    parameters: str
    template: str
    system: str
    details: ModelDetails
    messages: NotRequired[list[dict[str, str]]]  # the Modelfile's MESSAGE lines, when it has any
    model_info: dict[str, str | int]  # GGUF-style keys: general.architecture, <arch>.context_length, ...
    capabilities: list[str]
    modified_at: str


class VersionResponse(TypedDict):
    version: str


class ProgressResponse(TypedDict):
    """One status line of `/api/pull` and `/api/create` (the last one, when not streaming)."""

    status: str
    digest: NotRequired[str]
    total: NotRequired[int]
    completed: NotRequired[int]
