"""A vLLM `AsyncLLM` behind an engine-neutral interface: requests in, batches of events out.

This is the only module that imports vLLM. It renders chat messages with the model's own chat
template, tokenizes (so counts and Ollama `context` are exact), maps `Sampling` to
`SamplingParams`, and measures the timings the protocols report.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from workers.events import (
    ChatPrompt,
    Delta,
    Event,
    Final,
    FinishReason,
    GenerationRequest,
    InvalidRequest,
    PromptTooLong,
    Sampling,
)


class Engine:
    """One vLLM engine for one model. Cancelling a `generate` consumer aborts the engine request."""

    def __init__(self, llm: Any, max_model_len: int) -> None:
        self._llm = llm
        self._tokenizer = llm.get_tokenizer()
        self.max_model_len = max_model_len

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

    def prompt_token_ids(self, request: GenerationRequest) -> list[int]:
        prompt = request.prompt
        if isinstance(prompt, ChatPrompt):
            text = self._tokenizer.apply_chat_template(
                list(prompt.messages), tokenize=False, add_generation_prompt=True
            )
        else:
            text = prompt.text
        return [*request.prefix_token_ids, *self.tokenize(text)]

    async def generate(self, request: GenerationRequest) -> AsyncIterator[list[Event]]:
        """Yield batches of `Delta` events and finally one batch ending with `Final`.

        vLLM merges pending deltas when this consumer falls behind, so a batch may carry many
        tokens; the engine keeps its own pace and nothing per token is forced across processes.
        """
        from vllm.inputs import TokensPrompt

        clock = _Clock(time.monotonic_ns())
        ids = self.prompt_token_ids(request)
        params = self._sampling_params(request.sampling, len(ids))
        output_ids: list[int] = []
        try:
            async for out in self._llm.generate(TokensPrompt(prompt_token_ids=ids), params, request.request_id):
                completion = out.outputs[0]
                n = len(completion.token_ids)
                clock.tokens(n)
                if request.return_token_ids:
                    output_ids.extend(completion.token_ids)
                batch: list[Event] = [Delta(completion.text, n)] if completion.text or n else []
                if out.finished:
                    reason: FinishReason = "length" if completion.finish_reason == "length" else "stop"
                    token_ids = (*ids, *output_ids) if request.return_token_ids else None
                    batch.append(clock.final(reason, len(ids), token_ids))
                if batch:
                    yield batch
        except InvalidRequest:
            raise
        except _client_errors() as exc:
            # vLLM's own input validation (e.g. token ids outside the vocabulary) is the client's fault.
            raise InvalidRequest(str(exc)) from exc

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
        }
        try:
            return SamplingParams(
                **{k: v for k, v in kwargs.items() if v is not None},
                stop=list(s.stop) or None,
                structured_outputs=guided,
                output_kind=RequestOutputKind.DELTA,
            )
        except (ValueError, TypeError) as exc:
            raise InvalidRequest(str(exc)) from exc


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

    def final(self, reason: FinishReason, prompt_tokens: int, token_ids: tuple[int, ...] | None) -> Final:
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
        )
