"""OpenAI wire models, ordered as in OpenAI's API reference: requests (pydantic; unknown fields are
ignored), then responses, stream frames and errors (TypedDicts)."""

from __future__ import annotations

from typing import Any, Generic, Literal, NotRequired, TypedDict, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from router.protocol.ranges import Choices, TopLogprobs


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ChatMessage(_Wire):
    role: str
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class StreamOptions(_Wire):
    include_usage: bool = False


class _Sampling(_Wire):
    model: str
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    max_tokens: int | None = None
    n: Choices = None
    presence_penalty: float | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = None
    top_p: float | None = None
    user: str | None = None


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    logprobs: bool | None = None
    top_logprobs: TopLogprobs = None
    max_completion_tokens: int | None = None
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None


class CompletionRequest(_Sampling):
    prompt: str | list[str] | list[int] | list[list[int]]
    suffix: str | None = None
    echo: bool | None = None
    logprobs: TopLogprobs = None
    max_tokens: int | None = 16  # OpenAI's default for legacy completions


class EmbeddingRequest(_Wire):
    # A string, strings, token ids or lists of token ids; checked by `router.convert.embeddings.openai_inputs`.
    input: Any
    model: str
    encoding_format: str = "float"
    dimensions: int | None = None
    user: str | None = None


# Responses, stream frames and errors: TypedDicts, so the encoders keep building plain dicts (no
# model on the streaming path) while mypy checks every key they write. Names follow the openai
# package's types; `NotRequired` marks a field Herd sends only sometimes. Fields OpenAI has and
# Herd never sends (service_tier, audio, annotations, completion_tokens_details) are left out, so
# a test can hold every encoder to exactly these keys.


class Usage(TypedDict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class TopLogprob(TypedDict):
    token: str
    logprob: float
    bytes: list[int] | None  # the token's UTF-8 bytes


class ChatTokenLogprob(TypedDict):
    token: str
    logprob: float
    bytes: list[int] | None
    top_logprobs: list[TopLogprob]


class ChatLogprobs(TypedDict):
    """A chat choice's `logprobs` (null when not asked)."""

    content: list[ChatTokenLogprob] | None
    refusal: list[ChatTokenLogprob] | None  # Herd never refuses: always null


class CompletionLogprobs(TypedDict):
    """A legacy completion's `logprobs`: parallel lists, one entry per token."""

    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]  # token -> logprob, up to the requested count
    text_offset: list[int]  # characters from the start of the choice's text


class Function(TypedDict):
    name: str
    arguments: str  # JSON text, as the model wrote it


class ChatToolCall(TypedDict):
    id: str
    type: Literal["function"]
    function: Function


class ChatCompletionMessage(TypedDict):
    role: Literal["assistant"]
    content: str | None  # null when the model only called tools
    refusal: str | None
    tool_calls: NotRequired[list[ChatToolCall]]


class ChatChoice(TypedDict):
    index: int
    message: ChatCompletionMessage
    logprobs: ChatLogprobs | None
    finish_reason: str


class ChatCompletion(TypedDict):
    """The non-streamed `/v1/chat/completions` body."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    system_fingerprint: str
    choices: list[ChatChoice]
    usage: Usage
    # Herd extension: the router's added time in ms (also in the `Server-Timing` header).
    router_duration_ms: NotRequired[float]


class FunctionDelta(TypedDict):
    name: NotRequired[str]  # only in a call's first delta
    arguments: str


class ToolCallDelta(TypedDict):
    index: int  # which call of the choice this fragment belongs to
    id: NotRequired[str]  # id and type only in a call's first delta
    type: NotRequired[Literal["function"]]
    function: FunctionDelta


class ChoiceDelta(TypedDict, total=False):
    """What a frame adds to a choice: the role first, then content or tool-call fragments; empty
    in the finish frame."""

    role: Literal["assistant"]
    content: str
    tool_calls: list[ToolCallDelta]


class ChatChunkChoice(TypedDict):
    index: int
    delta: ChoiceDelta
    logprobs: ChatLogprobs | None
    finish_reason: str | None  # null until the choice's finish frame


class CompletionChoice(TypedDict):
    """A legacy completion's choice, streamed (a text fragment) or whole."""

    index: int
    text: str
    logprobs: CompletionLogprobs | None
    finish_reason: str | None  # null until the choice's finish frame; never in a whole body


class TextCompletion(TypedDict):
    """The non-streamed `/v1/completions` body."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    system_fingerprint: str
    choices: list[CompletionChoice]
    usage: Usage
    router_duration_ms: NotRequired[float]  # Herd extension (see ChatCompletion)


ChoiceT = TypeVar("ChoiceT", ChatChunkChoice, CompletionChoice)


class StreamChunk(TypedDict, Generic[ChoiceT]):
    """One SSE `data:` frame of a streamed chat or legacy completion."""

    id: str
    object: Literal["chat.completion.chunk", "text_completion"]
    created: int
    model: str
    system_fingerprint: str
    choices: list[ChoiceT]  # one per frame (told apart by `index` when n > 1); none in the usage frame
    usage: NotRequired[Usage | None]  # only with stream_options.include_usage: null but in the last frame
    # Herd extension, on each choice's finish frame: the router's added time in ms.
    router_duration_ms: NotRequired[float]


ChatCompletionChunk = StreamChunk[ChatChunkChoice]
CompletionChunk = StreamChunk[CompletionChoice]


class Embedding(TypedDict):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str  # a string with encoding_format "base64": little-endian float32 bytes


class EmbeddingUsage(TypedDict):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(TypedDict):
    """The `/v1/embeddings` body."""

    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


class Model(TypedDict):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(TypedDict):
    object: Literal["list"]
    data: list[Model]


class ErrorObject(TypedDict):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(TypedDict):
    """Every error body, and the in-band `data:` frame after the first byte (then `[DONE]`)."""

    error: ErrorObject
