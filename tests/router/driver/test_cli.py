from __future__ import annotations

import socket
from pathlib import Path

import pytest

from router.driver.cli import ensure_port_free, main
from router.errors import ConfigError


def test_busy_port_is_reported_before_start_up() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}: .*is Ollama or another Herd"):
            ensure_port_free("127.0.0.1", port)


def test_free_port_passes() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ensure_port_free("127.0.0.1", port)


def test_serve_exits_2_with_the_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - name: x\n    source: {hf: a}\n    replicas: -1\n")
    assert main(["serve", "--config", str(bad)]) == 2
    assert "models.0.replicas: Input should be greater than or equal to 0" in capsys.readouterr().err
