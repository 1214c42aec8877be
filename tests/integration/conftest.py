"""One real Herd per test session: `herd serve` (Ray Serve + vLLM CPU + the packaged SmolLM2)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from router.driver.ports import free_port

STARTUP_TIMEOUT_S = 900
MODEL = "smollm2:135m"

# A greedy continuation of a count runs to num_predict: a chat answer ("tell me a long story") can
# end at EOS within a second on a fast CPU, before the fault or the load it is meant to be caught in.
COUNT = ", ".join(str(i) for i in range(1, 41)) + ","


def long_generation(tokens: int = 1000) -> dict[str, object]:
    """An /api/generate body that streams `tokens` tokens (the model never stops it early)."""
    return {"model": MODEL, "prompt": COUNT, "raw": True, "options": {"num_predict": tokens, "temperature": 0}}


def until(check: Callable[[], object], timeout_s: float, every_s: float = 0.2) -> float | None:
    """Seconds until `check()` was truthy, or None if it was not within `timeout_s`. A check that
    raises counts as not yet (a server still starting, a node coming back)."""
    started = time.monotonic()
    while True:
        try:
            if check():
                return round(time.monotonic() - started, 3)
        except Exception:  # not up yet; a check that never holds times out
            pass
        if time.monotonic() - started >= timeout_s:
            return None
        time.sleep(every_s)


@pytest.fixture(scope="session")
def herd_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack | None]:
    """The session's Herd on the embedded default (None with HERD_TEST_URL). The model store is
    shared by the run's stacks (conversion happens once)."""
    if os.environ.get("HERD_TEST_URL"):
        yield None
        return
    with launch_herd(tmp_path_factory.mktemp("herd")) as stack:
        yield stack


@pytest.fixture(scope="session")
def herd(herd_stack: Stack | None) -> str:
    """Base URL of the session's Herd. HERD_TEST_URL points the suite at a Herd you already started
    (faster edit-test loops)."""
    return herd_stack.base if herd_stack is not None else os.environ["HERD_TEST_URL"]


# Converted test models, shared by every test Herd of a run (GGUF conversion happens once per
# checkout): in the repo's ignored work folder, never the user's own ~/.herd.
TEST_STORE = Path(__file__).resolve().parents[2] / ".herd-test" / "models"


def shared_store() -> Path:
    """The model store every test Herd shares; HERD_TEST_STORE overrides it."""
    store = Path(os.environ.get("HERD_TEST_STORE", TEST_STORE))
    store.mkdir(parents=True, exist_ok=True)
    return store


@dataclass(frozen=True)
class Stack:
    """A running `herd serve`: its URL, its process, its log and data directory."""

    base: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    data: Path

    @property
    def cluster_id(self) -> str:
        """The mark every process of this stack inherits (see router/driver/watchdog.py), read off
        its watchdog's command line (a process's own /proc environ shows only what it began with)."""
        watchdog = [b"-m", b"router.driver.watchdog", str(self.proc.pid).encode()]
        for entry in Path("/proc").iterdir():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0") if entry.name.isdigit() else []
            except OSError:
                continue
            if argv[1:4] == watchdog:
                return argv[4].decode()
        raise AssertionError(f"no watchdog for herd serve (pid {self.proc.pid})")


@contextmanager
def launch_herd(work: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Stack]:
    """`herd serve [args]` on a free port, logging to `work/serve.log`; stopped on exit.

    Its data directory (catalog Redis) is `work/data` unless `env` gives HERD_DATA_DIR; the
    model store inside it is the shared one.
    """
    port = free_port()
    log_path = work / "serve.log"
    data = work / "data"
    if not data.exists():
        data.mkdir()
        (data / "models").symlink_to(shared_store())
    env = {**os.environ, "HERD_PORT": str(port), "PYTHONUNBUFFERED": "1", "HERD_DATA_DIR": str(data), **(env or {})}
    herd_bin = Path(sys.executable).with_name("herd")
    log = log_path.open("w")
    proc = subprocess.Popen([str(herd_bin), "serve", *args], stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, base, log_path)
        yield Stack(base, proc, log_path, Path(env["HERD_DATA_DIR"]))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


@contextmanager
def start_herd(work: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`launch_herd`, yielding only the base URL."""
    with launch_herd(work, *args, env=env) as stack:
        yield stack.base


def _wait_ready(proc: subprocess.Popen[bytes], base: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"herd serve exited with {proc.returncode}:\n{log_path.read_text()[-5000:]}")
        if "herd: ready" in log_path.read_text():
            return
        time.sleep(1)
    raise RuntimeError(f"herd serve not ready after {STARTUP_TIMEOUT_S}s:\n{log_path.read_text()[-5000:]}")


@pytest.fixture(scope="session")
def http(herd: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=herd, timeout=120) as client:
        yield client


@pytest.fixture(scope="session")
def tokenizer(herd: str) -> Any:
    """The model's tokenizer, loaded independently of the server, to check reported counts."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(shared_store() / "smollm2--135m"))
