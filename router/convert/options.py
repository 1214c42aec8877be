"""Map each protocol's sampling fields onto the engine-neutral `Sampling`.

Ollama: model defaults (Modelfile-style) sit under the request's `options`; options vLLM cannot
honour per request are accepted and ignored, as Ollama ignores unknown options. Type mismatches
get Ollama's error text. OpenAI: ranges are checked with `param` set, so clients see which field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from router.errors import BadRequest
from workers.events import Sampling

# Ollama's own defaults where neither the model nor the request says otherwise.
_OLLAMA_BASE: Mapping[str, Any] = {"temperature": 0.8, "top_k": 40, "top_p": 0.9}
_INTEGER = ("num_predict", "top_k", "seed", "num_ctx")
_NUMBER = ("temperature", "top_p", "min_p", "presence_penalty", "frequency_penalty", "repeat_penalty")


def ollama_sampling(options: Mapping[str, Any] | None, fmt: Any, *, base: Mapping[str, Any] | None = None) -> Sampling:
    merged = {**_OLLAMA_BASE, **(base or {}), **(options or {})}
    for key in _INTEGER:
        merged[key] = _integer(key, merged.get(key))
    for key in _NUMBER:
        merged[key] = _number(key, merged.get(key))
    num_predict = merged["num_predict"]
    if num_predict == 0:
        # vLLM cannot generate zero tokens; an empty answer is never what a caller wants.
        raise BadRequest("num_predict must not be 0")
    top_k, seed = merged["top_k"], merged["seed"]
    return Sampling(
        max_tokens=num_predict if num_predict and num_predict > 0 else None,
        temperature=merged["temperature"],
        top_p=merged["top_p"],
        top_k=top_k if top_k and top_k > 0 else None,
        min_p=merged["min_p"],
        seed=seed if seed is not None and seed >= 0 else None,
        stop=_stop(merged.get("stop")),
        presence_penalty=merged["presence_penalty"],
        frequency_penalty=merged["frequency_penalty"],
        repetition_penalty=merged["repeat_penalty"],
        **_ollama_format(fmt),
    )


def openai_sampling(
    *,
    max_tokens: int | None,
    temperature: float | None,
    top_p: float | None,
    seed: int | None,
    stop: str | list[str] | None,
    presence_penalty: float | None,
    frequency_penalty: float | None,
    response_format: Mapping[str, Any] | None,
    logit_bias: Mapping[str, float] | None = None,
) -> Sampling:
    _in_range("temperature", temperature, 0, 2)
    _in_range("top_p", top_p, 0, 1)
    _in_range("presence_penalty", presence_penalty, -2, 2)
    _in_range("frequency_penalty", frequency_penalty, -2, 2)
    if max_tokens is not None and max_tokens < 1:
        raise BadRequest("max_tokens must be at least 1", param="max_tokens")
    return Sampling(
        max_tokens=max_tokens,
        # OpenAI's defaults; vLLM needs top_p > 0, and 0 means "only the top token" anyway.
        temperature=1.0 if temperature is None else temperature,
        top_p=1.0 if top_p is None else max(top_p, 1e-8),
        seed=seed,
        stop=_stop(stop),
        presence_penalty=presence_penalty,
        frequency_penalty=frequency_penalty,
        logit_bias=_logit_bias(logit_bias),
        **_response_format(response_format),
    )


def anthropic_sampling(
    *, max_tokens: int, temperature: float | None, top_p: float | None, top_k: int | None, stop: list[str] | None
) -> Sampling:
    """Anthropic Messages: ranges are checked by the wire model; 1.0 is Anthropic's default temperature."""
    return Sampling(
        max_tokens=max_tokens,
        temperature=1.0 if temperature is None else temperature,
        top_p=1.0 if top_p is None else max(top_p, 1e-8),
        top_k=top_k or None,
        stop=_stop(stop),
    )


def responses_format(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The Responses API's flat `text.format` ({"type": "json_schema", "name", "schema"}) in the
    chat completions shape `response_format` takes, so both check it in one place."""
    if not value or value.get("type") != "json_schema":
        return dict(value) if value else None
    return {"type": "json_schema", "json_schema": {k: v for k, v in value.items() if k != "type"}}


def _logit_bias(value: Mapping[str, float] | None) -> tuple[tuple[int, float], ...]:
    """OpenAI's `{"token id": bias}` with biases in [-100, 100]."""
    out = []
    for key, bias in (value or {}).items():
        if not str(key).isdigit():
            raise BadRequest(f"logit_bias keys must be token ids, got {key!r}", param="logit_bias")
        _in_range("logit_bias", bias, -100, 100)
        out.append((int(key), float(bias)))
    return tuple(out)


def _integer(key: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise BadRequest(f'option "{key}" must be of type integer')
    return int(value)


def _number(key: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f'option "{key}" must be of type number')
    return float(value)


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return tuple(s for s in value if s)
    raise BadRequest('option "stop" must be of type array', param="stop")


def _ollama_format(fmt: Any) -> dict[str, Any]:
    if fmt in (None, ""):
        return {}
    if fmt == "json":
        return {"json_object": True}
    if isinstance(fmt, dict):
        return {"json_schema": fmt}
    raise BadRequest(f'invalid format: {fmt!r} (use "json" or a JSON schema object)')


def _response_format(value: Mapping[str, Any] | None) -> dict[str, Any]:
    kind = (value or {}).get("type", "text")
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"json_object": True}
    schema = ((value or {}).get("json_schema") or {}).get("schema") if kind == "json_schema" else None
    if isinstance(schema, dict):
        return {"json_schema": schema}
    raise BadRequest(
        "response_format must be {'type': 'text' | 'json_object'} or a json_schema with a 'schema' object",
        param="response_format",
    )


def _in_range(name: str, value: float | None, low: float, high: float) -> None:
    if value is not None and not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}, got {value}", param=name)
