"""`herd sdl`, `herd deploy akash|status|close`: argument parsing and the commands. `router/driver/cli.py`
adds these with `add_commands` and hands parsed arguments to `run`."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx

from router.config import default_config, load_config
from router.driver import akash
from router.driver.sdl import DEFAULT_IMAGE, GpuModel, SdlOptions, build_sdl, to_yaml
from router.errors import ConfigError, DeployError

KEY_HINT = "export HERD_ADMIN_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"


@dataclass
class Runtime:
    """What the commands touch outside themselves; tests pass their own."""

    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    out: Callable[[str], None] = print
    console_transport: httpx.BaseTransport | None = None
    herd_transport: httpx.BaseTransport | None = None
    clock: akash.Clock = field(default_factory=akash.RealClock)
    timing: akash.Timing = field(default_factory=akash.Timing)


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sdl_args = _sdl_arguments()
    sdl_p = sub.add_parser("sdl", parents=[sdl_args], help="write an Akash SDL for a cluster config")
    sdl_p.add_argument("--out", type=Path, help="write the SDL here (mode 0600: it holds secrets) instead of stdout")
    deploy_p = sub.add_parser("deploy", help="deploy on Akash through the Console API, or inspect/close a deployment")
    deploy_sub = deploy_p.add_subparsers(dest="deploy_command", required=True)
    akash_p = deploy_sub.add_parser("akash", parents=[sdl_args], help="generate the SDL, lease, wait for /ready")
    akash_p.add_argument("--max-price", type=Decimal, help="highest bid accepted, uact per block (default: any)")
    akash_p.add_argument("--dry-run", action="store_true", help="print every request (key redacted), send none")
    akash_p.add_argument("--bid-timeout", type=float, default=300, help="seconds to wait for an acceptable bid")
    akash_p.add_argument("--ready-timeout", type=float, default=3600, help="seconds to wait for Herd's /ready")
    for name, text in (("status", "show a deployment's state and URIs"), ("close", "close a deployment")):
        p = deploy_sub.add_parser(name, help=text)
        p.add_argument("dseq", help="the deployment sequence number `herd deploy akash` printed")
    for p in deploy_sub.choices.values():
        p.add_argument(
            "--console-url", help=f"Console API base URL (AKASH_CONSOLE_API_URL, default {akash.CONSOLE_URL})"
        )


def _sdl_arguments() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--config", type=Path, help="cluster config YAML (default: the embedded CPU default)")
    p.add_argument("--gpu-model", nargs="+", default=[], help="acceptable GPUs, e.g. h100 a100:80Gi (default: any)")
    p.add_argument("--nodes", type=int, default=0, help="K GPU worker services plus a Ray head (default: one service)")
    p.add_argument("--image", default=DEFAULT_IMAGE, help="Herd's image, pinned (default: %(default)s)")
    p.add_argument("--routers", type=int, default=1, help="router replicas (HERD_ROUTER_REPLICAS), on the head")
    p.add_argument("--prometheus", action="store_true", help="add a Prometheus service scraping Herd")
    p.add_argument("--auditor", action="append", default=[], help="accept only providers signed by this auditor")
    p.add_argument("--gpu-price", type=int, default=10_000, help="bid cap per GPU, uact per block")
    p.add_argument(
        "--cache-size", type=int, default=0, help="model cache per service in GiB (default: from the config)"
    )
    return p


def run(args: argparse.Namespace) -> int | None:
    """Run `args` if it is one of these commands; None when it is not."""
    return execute(args, Runtime())


def execute(args: argparse.Namespace, rt: Runtime) -> int | None:
    commands: dict[str, Callable[[argparse.Namespace, Runtime], int]] = {
        "sdl": sdl_command,
        "akash": deploy_command,
        "status": status_command,
        "close": close_command,
    }
    if args.command not in ("sdl", "deploy"):
        return None
    name = args.command if args.command == "sdl" else args.deploy_command
    try:
        return commands[name](args, rt)
    except (ConfigError, DeployError) as exc:
        print(f"herd: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2


def sdl_options(args: argparse.Namespace, env: Mapping[str, str]) -> SdlOptions:
    """Options from the command line; secrets from the environment (a random Redis password and Ray
    token when unset)."""
    admin_key = env.get("HERD_ADMIN_KEY", "")
    if not admin_key:
        raise DeployError(f"set HERD_ADMIN_KEY, the key that administers the deployed Herd: {KEY_HINT}")
    redis_password = env.get("HERD_REDIS_PASSWORD", "") or (secrets.token_urlsafe(24) if args.nodes else "")
    ray_token = env.get("HERD_RAY_TOKEN", "") or (secrets.token_urlsafe(32) if args.nodes else "")
    return SdlOptions(
        admin_key=admin_key,
        redis_password=redis_password,
        ray_token=ray_token,
        nodes=args.nodes,
        router_replicas=args.routers,
        gpu_models=tuple(GpuModel.parse(g) for g in args.gpu_model),
        image=args.image,
        prometheus=args.prometheus,
        auditors=tuple(args.auditor),
        gpu_price=args.gpu_price,
        cache_gi=args.cache_size,
        hf_token=env.get("HF_TOKEN", ""),
    )


def _sdl_text(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[str, SdlOptions]:
    config = load_config(args.config) if args.config else default_config()
    options = sdl_options(args, env)
    return to_yaml(build_sdl(config, options)), options


def sdl_command(args: argparse.Namespace, rt: Runtime) -> int:
    text, _ = _sdl_text(args, rt.env)
    if args.out is None:
        rt.out(text.rstrip("\n"))
        return 0
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    rt.out(f"herd: wrote {args.out}")
    return 0


def _console(args: argparse.Namespace, rt: Runtime, transport: httpx.BaseTransport | None) -> akash.ConsoleApi:
    key = rt.env.get("AKASH_CONSOLE_API_KEY", "")
    if not key and not getattr(args, "dry_run", False):
        raise DeployError("set AKASH_CONSOLE_API_KEY (Akash Console > Settings > API keys)")
    base = args.console_url or rt.env.get("AKASH_CONSOLE_API_URL") or akash.CONSOLE_URL
    return akash.ConsoleApi(httpx.Client(base_url=base, timeout=60, transport=transport), key)


def deploy_command(args: argparse.Namespace, rt: Runtime) -> int:
    text, options = _sdl_text(args, rt.env)
    service = "head" if options.nodes else "herd"
    console, herd = rt.console_transport, rt.herd_transport
    if args.dry_run:
        hidden = (
            rt.env.get("AKASH_CONSOLE_API_KEY", ""),
            options.admin_key,
            options.redis_password,
            options.ray_token,
            options.hf_token,
        )
        console = herd = akash.dry_run_transport(rt.out, hidden, service)
    timing = akash.Timing(
        poll_s=rt.timing.poll_s, bids_s=args.bid_timeout, uri_s=rt.timing.uri_s, ready_s=args.ready_timeout
    )
    clock: akash.Clock = _NoWait() if args.dry_run else rt.clock
    with httpx.Client(transport=herd, timeout=15) as http:
        deployer = akash.Deployer(_console(args, rt, console), http, clock, timing, lambda m: rt.out(f"herd: {m}"))
        done = deployer.deploy(text, service, args.max_price)
    if args.dry_run:
        rt.out("herd: dry run: nothing was sent; the answers above are placeholders")
        return 0
    rt.out(f"herd: ready at {done.base_url} (Ollama API under /api, OpenAI API under /v1)")
    for hostport in done.forwarded:
        rt.out(f"herd: raw TCP (no 60 s limit, for long non-streamed calls): http://{hostport}")
    rt.out(f"herd: `herd deploy status {done.dseq}`; stop paying with `herd deploy close {done.dseq}`")
    return 0


class _NoWait:
    def now(self) -> float:
        return 0.0

    def sleep(self, seconds: float) -> None:
        return None


def status_command(args: argparse.Namespace, rt: Runtime) -> int:
    body = _console(args, rt, rt.console_transport).deployment(args.dseq)
    data = body.get("data", body)
    state = (data.get("deployment") or {}).get("state", "unknown")
    rt.out(f"deployment {args.dseq}: {state}")
    for lease in data.get("leases") or []:
        rt.out(f"  lease with {(lease.get('id') or {}).get('provider', '?')}: {lease.get('state', '?')}")
        if lease.get("state", "active") != "active":
            continue
        for name in sorted((lease.get("status") or {}).get("services") or {}):
            found = akash.endpoints({"leases": [lease]}, name)
            ports = "".join(f" tcp://{p}" for p in found.forwarded)
            rt.out(f"    {name}: {' '.join(f'http://{u}' for u in found.uris) or '(no URI)'}{ports}")
    return 0


def close_command(args: argparse.Namespace, rt: Runtime) -> int:
    _console(args, rt, rt.console_transport).close(args.dseq)
    rt.out(f"deployment {args.dseq}: closed")
    return 0
