"""Server paths in /api/create and /api/pull: only under the model roots, only regular files of
bounded size, only from callers that may name them, and no error tells what lies outside."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from router.api.local_paths import OUTSIDE
from router.settings import Settings
from tests.support import FakeWorker, app, record, seed

LOCAL = ("127.0.0.1", 40000)


@pytest.fixture
def roots(tmp_path: Path) -> Path:
    root = tmp_path / "imports"
    root.mkdir()
    return root


def _client(redis_url: str, roots: Path, client: tuple[str, int] = LOCAL) -> TestClient:
    seed(redis_url, [record("chat:1")])
    settings = Settings(model_roots=[roots], max_modelfile_bytes=1 << 20)
    return TestClient(app(redis_url, {"chat--1": FakeWorker()}, settings=settings), client=client)


@pytest.fixture
def local(redis_url: str, roots: Path) -> Iterator[TestClient]:
    with _client(redis_url, roots) as client:
        yield client


def test_paths_outside_the_roots_get_one_answer_whether_or_not_they_exist(local: TestClient, roots: Path) -> None:
    (roots / "to-shadow").symlink_to("/etc/passwd")
    answers = [
        local.post("/api/create", json={"model": "x:1", "path": path, "stream": False})
        for path in ("/etc/passwd", "/etc/no-such-file", "/dev/zero", str(roots / "to-shadow"), "../../etc/passwd")
    ]
    assert {(r.status_code, r.text) for r in answers} == {(400, f'{{"error":"{OUTSIDE}"}}\n')}


def test_from_and_pull_sources_outside_the_roots_are_refused_the_same_way(local: TestClient) -> None:
    for body in ({"model": "x:1", "from": "/etc"}, {"model": "x:1", "modelfile": "FROM /root/.ssh"}):
        r = local.post("/api/create", json=body | {"stream": False})
        assert (r.status_code, r.json()) == (400, {"error": OUTSIDE})
    for source in ("/etc", "gguf:/etc/passwd", "hf:/etc", "/no/such/folder"):
        r = local.post("/api/pull", json={"model": "evil-dir", "source": source, "stream": False})
        assert (r.status_code, r.json()) == (400, {"error": OUTSIDE}), source


def test_package_sources_never_come_from_a_request(local: TestClient) -> None:
    r = local.post("/api/pull", json={"model": "x", "source": "package:os/x", "stream": False})
    assert r.status_code == 400 and "cluster config" in r.json()["error"]


def test_a_modelfile_under_a_root_is_read_and_its_relative_from_is_its_folder(local: TestClient, roots: Path) -> None:
    (roots / "chat.Modelfile").write_text('FROM chat:1\nSYSTEM "be brief"\n')
    r = local.post("/api/create", json={"model": "brief:1", "path": str(roots / "chat.Modelfile"), "stream": False})
    assert r.status_code == 200, r.text
    assert local.post("/api/show", json={"model": "brief:1"}).json()["system"] == "be brief"


def test_file_content_is_never_quoted_back(local: TestClient, roots: Path) -> None:
    (roots / "secret").write_text("root:*:20228:0:99999:7:::\n")
    r = local.post("/api/create", json={"model": "x:1", "path": "secret", "stream": False})
    assert r.status_code == 400 and "root:" not in r.text and "line 1" in r.text


def test_special_files_and_big_modelfiles_under_a_root_are_refused(local: TestClient, roots: Path) -> None:
    os.mkfifo(roots / "fifo")
    (roots / "big").write_bytes(b"#" * ((1 << 20) + 1))
    fifo = local.post("/api/create", json={"model": "x:1", "path": "fifo", "stream": False})
    assert fifo.status_code == 400 and "not a regular file" in fifo.json()["error"]
    big = local.post("/api/create", json={"model": "x:1", "path": "big", "stream": False})
    assert big.status_code == 400 and "over 1048576 bytes" in big.json()["error"]
    pulled = local.post("/api/pull", json={"model": "x:1", "source": str(roots / "fifo"), "stream": False})
    assert pulled.status_code == 400 and "not a regular file or folder" in pulled.json()["error"]


def test_clients_off_the_machine_may_not_name_paths_while_auth_is_off(redis_url: str, roots: Path) -> None:
    (roots / "chat.Modelfile").write_text("FROM chat:1\n")
    with _client(redis_url, roots, client=("203.0.113.9", 5000)) as remote:
        r = remote.post("/api/create", json={"model": "x:1", "path": "chat.Modelfile", "stream": False})
        assert r.status_code == 403
        pulled = remote.post("/api/pull", json={"model": "x:1", "source": str(roots), "stream": False})
        assert pulled.status_code == 403
        r = remote.post("/api/create", json={"model": "x:1", "from": str(roots), "stream": False})
        assert r.status_code == 400 and "no such model in the catalog" in r.json()["error"]
