"""`herd sdl` and `herd deploy akash|status|close`: arguments, secrets from the environment, dry run."""

from __future__ import annotations

import argparse
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from router.driver import akash_cli
from router.driver.akash import Timing
from router.driver.akash_cli import Runtime
from tests.router.driver.test_akash import DSEQ, Console, FakeClock, bid, deployment

ROOT = Path(__file__).resolve().parents[3]
CONFIG = str(ROOT / "configs" / "gpu-cluster.yaml")
ADMIN = "admin-key-0123456789abcdef"
API_KEY = "console-key-0123456789"


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="herd")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve")
    akash_cli.add_commands(sub)
    return parser.parse_args(argv)


def _runtime(env: dict[str, str] | None = None, **fields: Any) -> tuple[Runtime, list[str]]:
    lines: list[str] = []
    environment = {"HERD_ADMIN_KEY": ADMIN, "AKASH_CONSOLE_API_KEY": API_KEY} if env is None else env
    return Runtime(env=environment, out=lines.append, clock=FakeClock(), **fields), lines


def test_other_commands_are_not_handled_here() -> None:
    assert akash_cli.execute(_args("serve"), _runtime()[0]) is None


def test_sdl_writes_a_private_file(tmp_path: Path) -> None:
    out = tmp_path / "deploy.yaml"
    args = _args("sdl", "--config", CONFIG, "--nodes", "2", "--gpu-model", "h100", "a100:80Gi", "--out", str(out))
    rt, lines = _runtime()
    assert akash_cli.execute(args, rt) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    sdl = yaml.safe_load(out.read_text())
    assert set(sdl["services"]) == {"head", "worker-1", "worker-2", "redis"}
    gpu = sdl["profiles"]["compute"]["worker-1"]["resources"]["gpu"]["attributes"]["vendor"]["nvidia"]
    assert gpu == [{"model": "h100"}, {"model": "a100", "ram": "80Gi"}]
    # A Redis password of its own, random, never the admin key.
    password = sdl["services"]["redis"]["args"][2]
    assert len(password) >= 16 and password != ADMIN
    assert lines == [f"herd: wrote {out}"]


def test_sdl_takes_the_redis_password_from_the_environment() -> None:
    rt, lines = _runtime({"HERD_ADMIN_KEY": ADMIN, "HERD_REDIS_PASSWORD": "redis-pw-0123456789abcdef"})
    assert akash_cli.execute(_args("sdl", "--config", CONFIG, "--nodes", "2"), rt) == 0
    assert yaml.safe_load(lines[0])["services"]["redis"]["args"][2] == "redis-pw-0123456789abcdef"


def test_sdl_makes_a_ray_token_per_deployment_unless_given() -> None:
    def tokens(env: dict[str, str]) -> set[str]:
        rt, lines = _runtime({"HERD_ADMIN_KEY": ADMIN, **env})
        assert akash_cli.execute(_args("sdl", "--config", CONFIG, "--nodes", "2"), rt) == 0
        services = yaml.safe_load(lines[0])["services"]
        return {e for name in ("head", "worker-1") for e in services[name]["env"] if e.startswith("RAY_AUTH_TOKEN=")}

    (first,), (second,) = tokens({}), tokens({})
    assert first != second and len(first) > len("RAY_AUTH_TOKEN=") + 16
    assert tokens({"HERD_RAY_TOKEN": "ray-tok-0123456789ab"}) == {"RAY_AUTH_TOKEN=ray-tok-0123456789ab"}


def test_sdl_without_an_admin_key_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    rt, lines = _runtime({})
    assert akash_cli.execute(_args("sdl", "--config", CONFIG), rt) == 2
    assert "set HERD_ADMIN_KEY" in capsys.readouterr().err and lines == []


def test_a_bad_config_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("models: []\n")
    assert akash_cli.execute(_args("sdl", "--config", str(bad)), _runtime()[0]) == 2
    assert "c.yaml: models" in capsys.readouterr().err


def test_dry_run_prints_every_request_and_no_secret() -> None:
    rt, lines = _runtime(
        {
            **_runtime()[0].env,
            "HERD_REDIS_PASSWORD": "redis-pw-0123456789abcdef",
            "HERD_RAY_TOKEN": "ray-tok-0123456789ab",
        }
    )
    assert akash_cli.execute(_args("deploy", "akash", "--config", CONFIG, "--nodes", "2", "--dry-run"), rt) == 0
    text = "\n".join(lines)
    for request in (
        "POST https://console-api.akash.network/v1/deployments",
        "GET https://console-api.akash.network/v1/bids",
        "POST https://console-api.akash.network/v1/leases",
        "GET http://dry-run.invalid/ready",
    ):
        assert request in text
    assert "x-api-key: <redacted>" in text and "HERD_ADMIN_KEY=<redacted>" in text
    for secret in (API_KEY, ADMIN, "redis-pw-0123456789abcdef", "ray-tok-0123456789ab"):
        assert secret not in text
    assert lines[-1] == "herd: dry run: nothing was sent; the answers above are placeholders"


def test_deploy_without_a_console_key_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    rt, _ = _runtime({"HERD_ADMIN_KEY": ADMIN})
    assert akash_cli.execute(_args("deploy", "akash", "--config", CONFIG), rt) == 2
    assert "set AKASH_CONSOLE_API_KEY" in capsys.readouterr().err


def test_deploy_prints_the_base_url_and_the_nodeport() -> None:
    console = Console(
        bids=[[bid("akash1cheap", "40000")]],
        lease=httpx.Response(
            200, json=deployment(["h.ingress.example"], [{"host": "p.example", "externalPort": 30111}])
        ),
    )
    transport = httpx.MockTransport(console)
    rt, lines = _runtime(console_transport=transport, herd_transport=transport, timing=Timing(poll_s=1))
    argv = ("deploy", "akash", "--config", CONFIG, "--max-price", "50000", "--console-url", "https://console.test")
    assert akash_cli.execute(_args(*argv), rt) == 0
    assert "herd: ready at http://h.ingress.example (Ollama API under /api, OpenAI API under /v1)" in lines
    assert any("http://p.example:30111" in line for line in lines)
    assert console.requests[0].url.host == "console.test"


def test_status_and_close() -> None:
    console = Console(bids=[[]], polls=[deployment(["h.example"], [{"host": "p.example", "externalPort": 30111}])])
    transport = httpx.MockTransport(console)
    rt, lines = _runtime(console_transport=transport)
    assert akash_cli.execute(_args("deploy", "status", DSEQ), rt) == 0
    assert lines == [
        f"deployment {DSEQ}: active",
        "  lease with akash1cheap: active",
        "    herd: http://h.example tcp://p.example:30111",
    ]
    assert akash_cli.execute(_args("deploy", "close", DSEQ), rt) == 0
    assert console.routes()[-1] == f"DELETE /v1/deployments/{DSEQ}" and lines[-1] == f"deployment {DSEQ}: closed"
