from __future__ import annotations

from typing import Any

import pytest

from router.convert.options import ollama_sampling, openai_sampling
from router.errors import BadRequest
from workers.events import Sampling

OLLAMA_DEFAULTS = Sampling(temperature=0.8, top_p=0.9, top_k=40)


@pytest.mark.parametrize(
    ("options", "fmt", "base", "expected"),
    [
        (None, None, None, OLLAMA_DEFAULTS),
        (
            {
                "num_predict": 12,
                "temperature": 0,
                "top_k": 5,
                "top_p": 0.5,
                "min_p": 0.1,
                "seed": 42,
                "stop": ["\n", ""],
                "repeat_penalty": 1.1,
                "presence_penalty": 0.5,
                "frequency_penalty": -0.5,
            },
            None,
            None,
            Sampling(
                max_tokens=12,
                temperature=0.0,
                top_p=0.5,
                top_k=5,
                min_p=0.1,
                seed=42,
                stop=("\n",),
                repetition_penalty=1.1,
                presence_penalty=0.5,
                frequency_penalty=-0.5,
            ),
        ),
        ({"num_predict": -1, "seed": -1, "top_k": 0}, None, None, Sampling(temperature=0.8, top_p=0.9)),
        ({"num_predict": 8.0}, None, None, Sampling(max_tokens=8, temperature=0.8, top_p=0.9, top_k=40)),
        (
            {"num_ctx": 4096, "num_thread": 8, "mirostat": 2, "numa": True, "low_vram": True, "unknown": "x"},
            None,
            None,
            OLLAMA_DEFAULTS,
        ),
        ({"stop": "END"}, None, None, Sampling(temperature=0.8, top_p=0.9, top_k=40, stop=("END",))),
        # Model defaults sit between Ollama's defaults and the request's options.
        ({"top_k": 3}, None, {"temperature": 0.2, "top_k": 7}, Sampling(temperature=0.2, top_p=0.9, top_k=3)),
        (None, "json", None, Sampling(temperature=0.8, top_p=0.9, top_k=40, json_object=True)),
        (
            None,
            {"type": "object"},
            None,
            Sampling(temperature=0.8, top_p=0.9, top_k=40, json_schema={"type": "object"}),
        ),
        (None, "", None, OLLAMA_DEFAULTS),
    ],
)
def test_ollama_options(options: Any, fmt: Any, base: Any, expected: Sampling) -> None:
    assert ollama_sampling(options, fmt, base=base) == expected


@pytest.mark.parametrize(
    ("options", "fmt", "message"),
    [
        ({"top_k": "many"}, None, 'option "top_k" must be of type integer'),
        ({"num_predict": 1.5}, None, 'option "num_predict" must be of type integer'),
        ({"seed": True}, None, 'option "seed" must be of type integer'),
        ({"temperature": "hot"}, None, 'option "temperature" must be of type number'),
        ({"stop": [1]}, None, 'option "stop" must be of type array'),
        ({"num_predict": 0}, None, "num_predict must not be 0"),
        (None, "yaml", "invalid format: 'yaml' (use \"json\" or a JSON schema object)"),
    ],
)
def test_ollama_option_errors(options: Any, fmt: Any, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        ollama_sampling(options, fmt)
    assert info.value.message == message


def _openai(**kw: Any) -> Sampling:
    fields: dict[str, Any] = dict(
        max_tokens=None,
        temperature=None,
        top_p=None,
        seed=None,
        stop=None,
        presence_penalty=None,
        frequency_penalty=None,
        response_format=None,
    )
    return openai_sampling(**(fields | kw))


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({}, Sampling(temperature=1.0, top_p=1.0)),
        (
            {"max_tokens": 5, "temperature": 0, "seed": 3, "stop": "x"},
            Sampling(max_tokens=5, temperature=0, top_p=1.0, seed=3, stop=("x",)),
        ),
        ({"top_p": 0}, Sampling(temperature=1.0, top_p=1e-8)),
        (
            {"stop": ["a", "b"], "presence_penalty": 1, "frequency_penalty": -1},
            Sampling(temperature=1.0, top_p=1.0, stop=("a", "b"), presence_penalty=1, frequency_penalty=-1),
        ),
        ({"response_format": {"type": "text"}}, Sampling(temperature=1.0, top_p=1.0)),
        ({"response_format": {"type": "json_object"}}, Sampling(temperature=1.0, top_p=1.0, json_object=True)),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}},
            Sampling(temperature=1.0, top_p=1.0, json_schema={"type": "object"}),
        ),
        (
            {"logit_bias": {"42": -100, "7": 2.5}},
            Sampling(temperature=1.0, top_p=1.0, logit_bias=((42, -100), (7, 2.5))),
        ),
    ],
)
def test_openai_fields(kw: dict[str, Any], expected: Sampling) -> None:
    assert _openai(**kw) == expected


@pytest.mark.parametrize(
    ("kw", "param"),
    [
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"presence_penalty": -3}, "presence_penalty"),
        ({"frequency_penalty": 3}, "frequency_penalty"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"response_format": {"type": "json_schema"}}, "response_format"),
        ({"logit_bias": {"hello": 1}}, "logit_bias"),
        ({"logit_bias": {"1": 101}}, "logit_bias"),
        ({"response_format": {"type": "xml"}}, "response_format"),
    ],
)
def test_openai_field_errors_name_the_param(kw: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as info:
        _openai(**kw)
    assert info.value.param == param
