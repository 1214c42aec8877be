from __future__ import annotations

import pytest

from router.catalog.names import parse_name
from router.errors import BadRequest


@pytest.mark.parametrize(
    ("text", "display", "key"),
    [
        ("llama3", "llama3:latest", "registry.ollama.ai/library/llama3:latest"),
        ("llama3:70b", "llama3:70b", "registry.ollama.ai/library/llama3:70b"),
        ("Llama3.2:Latest", "Llama3.2:Latest", "registry.ollama.ai/library/llama3.2:latest"),
        ("library/llama3", "llama3:latest", "registry.ollama.ai/library/llama3:latest"),
        ("registry.ollama.ai/library/llama3:latest", "llama3:latest", "registry.ollama.ai/library/llama3:latest"),
        ("mattw/pygmalion", "mattw/pygmalion:latest", "registry.ollama.ai/mattw/pygmalion:latest"),
        ("example.com:5000/ns/m:q4_0", "example.com:5000/ns/m:q4_0", "example.com:5000/ns/m:q4_0"),
        ("https://example.com/ns/m", "example.com/ns/m:latest", "example.com/ns/m:latest"),
        ("smollm2:135m@sha256:abc", "smollm2:135m", "registry.ollama.ai/library/smollm2:135m"),
    ],
)
def test_parse_fills_defaults_and_displays_shortest(text: str, display: str, key: str) -> None:
    name = parse_name(text)
    assert name.display == display
    assert name.key == key


def test_lookup_is_case_insensitive() -> None:
    assert parse_name("SmolLM2").key == parse_name("smollm2:latest").key == parse_name("library/SMOLLM2").key


@pytest.mark.parametrize("text", ["bad name", ":tag", "m:", "a/b/c/d", "-lead", "ns!/m", "a" * 81])
def test_invalid_names(text: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_name(text)
    assert info.value.message == f'name "{text}" is invalid'


def test_empty_name_is_required() -> None:
    with pytest.raises(BadRequest, match="model is required"):
        parse_name("")


@pytest.mark.parametrize(
    ("text", "deployment_id"),
    [("smollm2:135m", "smollm2--135m"), ("SmolLM2", "smollm2--latest")],
)
def test_deployment_ids_are_serve_safe(text: str, deployment_id: str) -> None:
    assert parse_name(text).deployment_id == deployment_id


def test_deployment_ids_stay_distinct_when_characters_are_replaced() -> None:
    ids = {parse_name(t).deployment_id for t in ["llama3.1:8b", "llama3-1:8b", "llama3_1:8b", "ns/llama3.1:8b"]}
    assert len(ids) == 4
    assert all(":" not in i and "." not in i and "/" not in i for i in ids)
