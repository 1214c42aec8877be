"""A vLLM `AsyncLLM` behind an engine-neutral interface: requests in, batches of events out.

This is the only module that imports vLLM. It renders chat messages with the model's own chat
template, tokenizes (so counts and Ollama `context` are exact), maps `Sampling` to
`SamplingParams`, and measures the timings the protocols report. Embedding models (vLLM's
pooling runner) answer `embed` instead of `generate`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any

from workers.events import (
    ChatPrompt,
    Delta,
    EmbedRequest,
    EmbedResult,
    Event,
    Final,
    FinishReason,
    GenerationRequest,
    InvalidRequest,
    PromptTooLong,
    Sampling,
    TokenLogprob,
)
from workers.tool_prompt import inline_tools, template_knows_tools, uses_tools


class Engine:
    """One vLLM engine for one model. Cancelling a `generate` consumer aborts the engine request."""

    def __init__(self, llm: Any, max_model_len: int) -> None:
        self._llm = llm
        self._tokenizer = llm.get_tokenizer()
        self.max_model_len = max_model_len
        self._specials: tuple[list[int], list[int]] | None = None
        self._template_tools = template_knows_tools(getattr(self._tokenizer, "chat_template", None))

    @classmethod
    def start(cls, model: str, engine_args: Mapping[str, Any]) -> Engine:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        args = AsyncEngineArgs(model=model, **engine_args)
        llm = AsyncLLM.from_engine_args(args)
        return cls(llm, llm.model_config.max_model_len)

    def shutdown(self) -> None:
        self._llm.shutdown()

    async def check_health(self) -> None:
        await self._llm.check_health()

    def num_unfinished(self) -> int:
        return int(self._llm.output_processor.get_num_unfinished_requests())

    def tokenize(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=False))

    def count_prompt_tokens(self, request: GenerationRequest) -> int:
        """How many tokens the model would see for this prompt (Anthropic's count_tokens), untruncated."""
        return len(self.prompt_token_ids(request))

    def prompt_token_ids(self, request: GenerationRequest) -> list[int]:
        prompt = request.prompt
        if isinstance(prompt, ChatPrompt):
            messages, tools = list(prompt.messages), list(prompt.tools)
            if not self._template_tools and uses_tools(messages, tools):
                messages, tools = inline_tools(messages, tools), []
            try:
                text = self._tokenizer.apply_chat_template(
                    messages, tools=tools or None, tokenize=False, add_generation_prompt=True
                )
            except Exception as exc:  # jinja2's TemplateError: the template refuses this conversation
                raise InvalidRequest(f"the model's chat template cannot render these messages: {exc}") from exc
        else:
            text = prompt.text
        return [*request.prefix_token_ids, *self.tokenize(text)]

    def fitted_prompt_ids(self, request: GenerationRequest) -> list[int]:
        """The prompt's ids; with `truncate`, cut to fit the context as Ollama does: drop the oldest
        non-system messages (never the last one), then the oldest tokens. A quarter of the context
        (or `max_tokens`, if smaller) is left free for the answer."""
        ids = self.prompt_token_ids(request)
        if not request.truncate or len(ids) < self.max_model_len:
            return ids
        budget = self.max_model_len - min(request.sampling.max_tokens or self.max_model_len, self.max_model_len // 4)
        prompt = request.prompt
        if isinstance(prompt, ChatPrompt):
            messages = list(prompt.messages)
            while len(ids) > budget:
                oldest = next((i for i, m in enumerate(messages[:-1]) if m.get("role") != "system"), None)
                if oldest is None:
                    break
                del messages[oldest]
                ids = self.prompt_token_ids(replace(request, prompt=replace(prompt, messages=tuple(messages))))
        return ids[-budget:] if len(ids) > budget else ids

    async def generate(self, request: GenerationRequest) -> AsyncIterator[list[Event]]:
        """Yield batches of `Delta` events and finally one batch ending with `Final`.

        vLLM merges pending deltas when this consumer falls behind, so a batch may carry many
        tokens; the engine keeps its own pace and nothing per token is forced across processes.
        """
        from vllm.inputs import TokensPrompt

        clock = _Clock(time.monotonic_ns())
        ids = self.fitted_prompt_ids(request)
        params = self._sampling_params(request.sampling, len(ids))
        output_ids: list[int] = []
        try:
            async for out in self._llm.generate(TokensPrompt(prompt_token_ids=ids), params, request.request_id):
                completion = out.outputs[0]
                n = len(completion.token_ids)
                clock.tokens(n)
                if request.return_token_ids:
                    output_ids.extend(completion.token_ids)
                logprobs = _logprobs(completion, request.sampling.logprobs)
                if out.finished and completion.finish_reason == "stop" and not isinstance(completion.stop_reason, str):
                    # The end-of-turn token is not part of the answer's text; neither are its logprobs.
                    logprobs = logprobs[:-1]
                batch: list[Event] = [Delta(completion.text, n, logprobs)] if completion.text or n else []
                if out.finished:
                    reason: FinishReason = "length" if completion.finish_reason == "length" else "stop"
                    token_ids = (*ids, *output_ids) if request.return_token_ids else None
                    matched = completion.stop_reason if isinstance(completion.stop_reason, str) else None
                    batch.append(clock.final(reason, len(ids), token_ids, matched))
                if batch:
                    yield batch
        except InvalidRequest:
            raise
        except _client_errors() as exc:
            # vLLM's own input validation (e.g. token ids outside the vocabulary) is the client's fault.
            raise InvalidRequest(str(exc)) from exc

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        """One vector per input. All inputs go to the engine at once, so it batches them itself.

        Raises `PromptTooLong` (an input does not fit and `truncate` is off) or `InvalidRequest`.
        Cancelling the caller aborts every engine request of the call.
        """
        started = time.monotonic_ns()
        prompts = [self.embed_token_ids(item, request.truncate) for item in request.inputs]
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(self._pool(ids, request.normalize, f"{request.request_id}-{i}"))
                    for i, ids in enumerate(prompts)
                ]
        except ExceptionGroup as failed:
            # Report the first cause, not the group (callers and Ray expect one exception).
            first = failed.exceptions[0]
            if not isinstance(first, InvalidRequest) and isinstance(first, _client_errors()):
                raise InvalidRequest(str(first)) from first
            raise first from None
        vectors = tuple(fit_dimensions(task.result(), request.dimensions, request.normalize) for task in tasks)
        return EmbedResult(vectors, sum(map(len, prompts)), max(time.monotonic_ns() - started, 1))

    def embed_token_ids(self, item: str | tuple[int, ...], truncate: bool) -> list[int]:
        """The model's input for one text or id list: its special tokens around ids that fit the context."""
        ids = self.tokenize(item) if isinstance(item, str) else list(item)
        prefix, suffix = self._special_ids()
        room = self.max_model_len - len(prefix) - len(suffix)
        if len(ids) > room:
            if not truncate:
                raise PromptTooLong("the input length exceeds the context length")
            ids = ids[:room]
        return [*prefix, *ids, *suffix]

    def _special_ids(self) -> tuple[list[int], list[int]]:
        """The ids the tokenizer puts around a text (BERT: [CLS] ... [SEP]), found once by comparison.

        vLLM's tokenizer wrapper (transformers 5) has no `build_inputs_with_special_tokens`.
        """
        if self._specials is None:
            bare = self._tokenizer.encode("a", add_special_tokens=False)
            full = self._tokenizer.encode("a", add_special_tokens=True)
            at = next((i for i in range(len(full)) if full[i : i + len(bare)] == bare), len(full))
            self._specials = (list(full[:at]), list(full[at + len(bare) :]))
        return self._specials

    async def _pool(self, ids: list[int], normalize: bool, request_id: str) -> list[float]:
        from vllm.inputs import TokensPrompt
        from vllm.pooling_params import PoolingParams

        # For the embed task, vLLM's "activation" is the L2 normalisation.
        params = PoolingParams(task="embed", use_activation=normalize)
        last = None
        async for out in self._llm.encode(TokensPrompt(prompt_token_ids=ids), params, request_id):
            last = out
        if last is None:
            raise RuntimeError("the engine returned no embedding")
        if last.error is not None:
            raise RuntimeError(last.error.message)
        return list(last.outputs.data.tolist())

    def _sampling_params(self, s: Sampling, prompt_len: int) -> Any:
        from vllm.sampling_params import RequestOutputKind, SamplingParams, StructuredOutputsParams

        room = self.max_model_len - prompt_len
        if room < 1:
            raise PromptTooLong(
                f"the prompt has {prompt_len} tokens but the model's context is {self.max_model_len} tokens"
            )
        guided = None
        if s.json_schema is not None:
            guided = StructuredOutputsParams(json=s.json_schema)
        elif s.json_object:
            guided = StructuredOutputsParams(json_object=True)
        kwargs: dict[str, Any] = {
            "max_tokens": min(s.max_tokens, room) if s.max_tokens else room,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "top_k": s.top_k,
            "min_p": s.min_p,
            "seed": s.seed,
            "presence_penalty": s.presence_penalty,
            "frequency_penalty": s.frequency_penalty,
            "repetition_penalty": s.repetition_penalty,
            "logprobs": s.logprobs,
        }
        try:
            return SamplingParams(
                **{k: v for k, v in kwargs.items() if v is not None},
                stop=list(s.stop) or None,
                logit_bias=dict(s.logit_bias) or None,
                structured_outputs=guided,
                output_kind=RequestOutputKind.DELTA,
            )
        except (ValueError, TypeError) as exc:
            raise InvalidRequest(str(exc)) from exc


def _logprobs(completion: Any, top: int | None) -> tuple[TokenLogprob, ...]:
    """vLLM's per-position {token_id: Logprob} (sampled token plus the top ranks) as engine-neutral values."""
    if top is None or not completion.logprobs:
        return ()
    out = []
    for position, token_id in zip(range(len(completion.logprobs)), completion.token_ids, strict=False):
        ranked = completion.logprobs[position]
        chosen = ranked.get(token_id)
        if chosen is None:
            continue
        alternatives = sorted(
            (lp for lp in ranked.values() if lp.rank is not None and lp.rank <= top), key=lambda lp: lp.rank
        )
        out.append(
            TokenLogprob(
                chosen.decoded_token or "",
                _finite(chosen.logprob),
                tuple(TokenLogprob(lp.decoded_token or "", _finite(lp.logprob)) for lp in alternatives),
            )
        )
    return tuple(out)


def _finite(logprob: float) -> float:
    # JSON has no -Infinity; a token the sampler could never pick is as unlikely as a float gets.
    return logprob if math.isfinite(logprob) else -9999.0


def fit_dimensions(vector: list[float], dimensions: int | None, normalize: bool) -> tuple[float, ...]:
    """Keep the first `dimensions` components (Matryoshka-style, as Ollama does), renormalised if asked."""
    if dimensions is None or dimensions == len(vector):
        return tuple(vector)
    if not 1 <= dimensions <= len(vector):
        raise InvalidRequest(f"dimensions must be between 1 and {len(vector)} for this model, got {dimensions}")
    cut = vector[:dimensions]
    if not normalize:
        return tuple(cut)
    norm = math.sqrt(math.fsum(x * x for x in cut))
    return tuple(x / norm for x in cut) if norm > 0 else tuple(cut)


def _client_errors() -> tuple[type[Exception], ...]:
    import vllm.exceptions

    return (ValueError, getattr(vllm.exceptions, "VLLMClientError", ValueError))


class _Clock:
    """The worker's own timings for one request, in monotonic nanoseconds."""

    def __init__(self, started: int) -> None:
        self.started = started
        self.first = self.last = 0
        self.produced = 0

    def tokens(self, n: int) -> None:
        if n:
            self.last = time.monotonic_ns()
            self.first = self.first or self.last
            self.produced += n

    def final(
        self, reason: FinishReason, prompt_tokens: int, token_ids: tuple[int, ...] | None, stop: str | None = None
    ) -> Final:
        end = time.monotonic_ns()
        return Final(
            finish_reason=reason,
            prompt_tokens=prompt_tokens,
            output_tokens=self.produced,
            prompt_eval_ns=max((self.first or end) - self.started, 1),
            # One token means no decode step; Ollama clients still expect the field.
            eval_ns=max(self.last - self.first, 1) if self.produced else 0,
            worker_ns=max(end - self.started, 1),
            token_ids=token_ids,
            stop_sequence=stop,
        )
