"""Engine-neutral request and event types: the only things that cross the router/worker boundary.

They are plain dataclasses: requests travel in Ray Serve handle calls, events over the event
channel (`workers/channel.py`), and the router may import them without importing vLLM.

Streaming rules for `Engine.generate`: the engine yields *batches* (lists) of events, one per
engine step, so that one channel frame carries every delta of a step; every stream ends with
exactly one `Final`, or raises. A stream never yields an empty batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True, slots=True)
class Sampling:
    """Sampling settings the router resolved from either protocol; None means engine default."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    repetition_penalty: float | None = None
    # Guided decoding: exactly one of these may be set.
    json_schema: dict[str, Any] | None = None
    json_object: bool = False
    # Per output token: its log-probability plus this many most likely alternatives (None: none).
    logprobs: int | None = None
    # (token id, bias added to its logit), as OpenAI's `logit_bias`.
    logit_bias: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True, slots=True)
class ChatPrompt:
    """Messages rendered by the model's own chat template inside the worker.

    Messages are OpenAI-shaped dicts whose `content` is always a string; assistant `tool_calls`
    carry `function.arguments` as an object (what chat templates expect). `tools` are function
    definitions the template renders (or, for a template without tool support, a system prompt
    the worker adds).
    """

    messages: tuple[dict[str, Any], ...]
    tools: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class TextPrompt:
    """A prompt already rendered to text (raw mode, a template override, or OpenAI completions)."""

    text: str


Prompt = ChatPrompt | TextPrompt


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    request_id: str
    prompt: Prompt
    sampling: Sampling = field(default_factory=Sampling)
    # Token ids placed before the rendered prompt: Ollama `context`, or OpenAI token-array prompts.
    prefix_token_ids: tuple[int, ...] = ()
    # Ollama's /api/generate returns prompt+output token ids so a client can continue.
    return_token_ids: bool = False
    # Ollama: a prompt longer than the context loses its oldest messages, then its oldest tokens.
    # OpenAI (False): it is a 400 context_length_exceeded.
    truncate: bool = False

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The prompt as chat messages. Ray Serve's prefix-aware request router reads this
        attribute to send a conversation back to the replica that holds its KV cache."""
        if isinstance(self.prompt, ChatPrompt):
            return list(self.prompt.messages)
        return [{"role": "user", "content": self.prompt.text}]


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One output token's log-probability; `top` holds the most likely alternatives, best first."""

    token: str
    logprob: float
    top: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class Delta:
    """New output text and how many tokens produced it (with their logprobs when asked)."""

    text: str
    tokens: int
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class Final:
    """End of a generation, with counts and the worker's own measured timings (nanoseconds).

    `prompt_eval_ns` runs from the worker receiving the request to the first output token
    (queueing and prefill); `eval_ns` from the first to the last output token; `worker_ns` is
    the whole time the request spent in the worker, so prompt_eval_ns + eval_ns <= worker_ns.
    """

    finish_reason: FinishReason
    prompt_tokens: int
    output_tokens: int
    prompt_eval_ns: int
    eval_ns: int
    worker_ns: int
    token_ids: tuple[int, ...] | None = None
    # The stop string that ended the generation (Anthropic's `stop_sequence`); None for an end token.
    stop_sequence: str | None = None


Event = Delta | Final


@dataclass(frozen=True, slots=True)
class EmbedRequest:
    """Inputs to embed in one worker call; one vector per input, in order.

    Each input is a text, or token ids of the model's own vocabulary without special tokens (the
    worker adds them as it does for text). With `truncate`, an input longer than the model's
    context is cut to fit; without it, the whole request fails with `PromptTooLong`.
    `dimensions` keeps that many leading components (renormalised when `normalize`).
    """

    request_id: str
    inputs: tuple[str | tuple[int, ...], ...]
    truncate: bool = True
    normalize: bool = True
    dimensions: int | None = None


@dataclass(frozen=True, slots=True)
class EmbedResult:
    """Vectors in input order, the prompt tokens the engine processed (all inputs) and the worker's time."""

    vectors: tuple[tuple[float, ...], ...]
    prompt_tokens: int
    worker_ns: int


class InvalidRequest(ValueError):
    """The engine rejected the request's parameters; the router answers 400."""


class SourceError(InvalidRequest):
    """A model's source cannot be found or prepared (raised by `workers.sources` in a pull)."""


class PromptTooLong(InvalidRequest):
    """The prompt leaves no room in the model's context; the router answers 400."""
