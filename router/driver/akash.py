"""Deploy an SDL through the Akash Console API (managed wallet, `x-api-key`): create the deployment,
wait for bids, lease the cheapest within a cap, wait for the service URI, then for Herd's /ready.

Runs in the `herd` driver process; synchronous on purpose (a CLI waiting on a chain). The HTTP
client and the clock are passed in, so tests run the whole flow offline and instantly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

import httpx

from router.errors import DeployError

CONSOLE_URL = "https://console-api.akash.network"
REDACTED = "<redacted>"


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class RealClock:
    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class Timing:
    """How long each wait may take, and how often it looks again (seconds)."""

    poll_s: float = 5
    bids_s: float = 300
    uri_s: float = 600
    # The first start downloads weights and loads engines: tens of minutes for large models.
    ready_s: float = 3600


@dataclass(frozen=True)
class Bid:
    provider: str
    dseq: str
    gseq: int
    oseq: int
    price: Decimal
    denom: str
    state: str = "open"

    @property
    def order(self) -> tuple[int, int]:
        return (self.gseq, self.oseq)

    def lease_id(self) -> dict[str, Any]:
        return {"dseq": self.dseq, "gseq": self.gseq, "oseq": self.oseq, "provider": self.provider}


@dataclass(frozen=True)
class Endpoints:
    """Where a service answers: ingress hostnames (port 80) and NodePorts (`host:port`)."""

    uris: tuple[str, ...]
    forwarded: tuple[str, ...]


class ConsoleApi:
    """The few Console API calls Herd needs. Errors raise DeployError with the API's message."""

    def __init__(self, client: httpx.Client, api_key: str) -> None:
        self._client = client
        self._key = api_key

    def create_deployment(self, sdl: str) -> tuple[str, Any]:
        body = self._call("POST", "/v1/deployments", json={"data": {"sdl": sdl}})["data"]
        return str(body["dseq"]), body["manifest"]

    def bids(self, dseq: str) -> list[Bid]:
        return [_bid(entry) for entry in self._call("GET", "/v1/bids", params={"dseq": dseq}).get("data") or []]

    def create_lease(self, manifest: Any, bids: Iterable[Bid]) -> dict[str, Any]:
        return self._call("POST", "/v1/leases", json={"manifest": manifest, "leases": [b.lease_id() for b in bids]})

    def deployment(self, dseq: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/deployments/{dseq}")

    def close(self, dseq: str) -> None:
        self._call("DELETE", f"/v1/deployments/{dseq}")

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._client.request(method, path, headers={"x-api-key": self._key}, **kwargs)
        except httpx.HTTPError as exc:
            raise DeployError(f"Akash Console API {method} {path}: {exc}") from exc
        if response.status_code == 401:
            raise DeployError("the Akash Console API refused AKASH_CONSOLE_API_KEY (401)")
        if response.is_error:
            raise DeployError(f"Akash Console API {method} {path}: {response.status_code} {_message(response)}")
        try:
            body: dict[str, Any] = response.json() if response.content else {}
        except ValueError as exc:
            raise DeployError(f"Akash Console API {method} {path}: not JSON: {response.text[:200]}") from exc
        return body


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("message") or body.get("error") or body) if isinstance(body, dict) else str(body)


def _bid(entry: dict[str, Any]) -> Bid:
    bid = entry.get("bid", entry)
    ident, price = bid["bid_id"], bid.get("price") or {}
    try:
        amount = Decimal(str(price.get("amount", "")))
    except InvalidOperation as exc:
        raise DeployError(f"bid from {ident.get('provider')}: unreadable price {price!r}") from exc
    return Bid(
        provider=str(ident["provider"]),
        dseq=str(ident["dseq"]),
        gseq=int(ident["gseq"]),
        oseq=int(ident["oseq"]),
        price=amount,
        denom=str(price.get("denom", "")),
        state=str(bid.get("state", "open")),
    )


def cheapest(bids: Iterable[Bid], max_price: Decimal | None, denom: str = "uact") -> list[Bid]:
    """The cheapest acceptable bid of every order (one per placement group), or [] when an order has none."""
    best: dict[tuple[int, int], Bid] = {}
    orders = set()
    for bid in bids:
        orders.add(bid.order)
        # Closed or lost bids cannot be leased.
        if bid.state != "open" or bid.denom != denom or (max_price is not None and bid.price > max_price):
            continue
        if bid.order not in best or (bid.price, bid.provider) < (best[bid.order].price, best[bid.order].provider):
            best[bid.order] = bid
    return [best[o] for o in sorted(orders)] if orders and orders <= best.keys() else []


def endpoints(deployment: dict[str, Any], service: str) -> Endpoints:
    """The service's URIs and forwarded ports from a deployment or lease response (`status` is null
    until the provider answers; a forwarded port's `host` is optional). A lease that is no longer
    active raises: it will never serve."""
    body = deployment.get("data", deployment)
    uris: list[str] = []
    forwarded: list[str] = []
    for lease in body.get("leases") or []:
        state = lease.get("state", "active")
        if state != "active":
            provider = (lease.get("id") or {}).get("provider", "the provider")
            raise DeployError(f"the lease with {provider} is {state}{_reason(lease)}")
        status = lease.get("status") or {}
        uris += (status.get("services") or {}).get(service, {}).get("uris") or []
        for port in (status.get("forwarded_ports") or {}).get(service) or []:
            if port.get("host"):
                forwarded.append(f"{port['host']}:{port['externalPort']}")
    return Endpoints(tuple(uris), tuple(forwarded))


def _reason(lease: dict[str, Any]) -> str:
    return f" ({lease['reason']})" if lease.get("reason") else ""


@dataclass(frozen=True)
class Deployed:
    dseq: str
    provider: str
    base_url: str
    forwarded: tuple[str, ...]


class Deployer:
    """One `herd deploy akash` run. `say` reports progress; `http` reaches the deployed Herd."""

    def __init__(
        self, api: ConsoleApi, http: httpx.Client, clock: Clock, timing: Timing, say: Callable[[str], None]
    ) -> None:
        self._api, self._http, self._clock, self._timing, self._say = api, http, clock, timing, say

    def deploy(self, sdl: str, service: str, max_price: Decimal | None) -> Deployed:
        """Create, lease, wait until `service` answers /ready. Closes the deployment on any failure
        after it exists, so a stuck attempt stops costing deposit."""
        dseq, manifest = self._api.create_deployment(sdl)
        self._say(f"deployment {dseq} created; waiting for bids")
        try:
            return self._lease_and_wait(dseq, manifest, service, max_price)
        except DeployError as exc:
            self._close_after_failure(dseq)
            raise DeployError(f"deployment {dseq}: {exc.message} (deployment closed)") from exc

    def _lease_and_wait(self, dseq: str, manifest: Any, service: str, max_price: Decimal | None) -> Deployed:
        chosen = self._wait_for_bids(dseq, max_price)
        providers = ", ".join(f"{b.provider} at {b.price} {b.denom}/block" for b in chosen)
        self._say(f"leasing from {providers}")
        found = endpoints(self._api.create_lease(manifest, chosen), service)
        if not found.uris:
            found = self._wait_for_uri(dseq, service)
        base_url = f"http://{found.uris[0]}"
        self._say(f"service {service} at {base_url}; waiting for Herd's /ready")
        self._wait_until_ready(base_url)
        return Deployed(dseq, chosen[0].provider, base_url, found.forwarded)

    def _wait_for_bids(self, dseq: str, max_price: Decimal | None) -> list[Bid]:
        deadline = self._clock.now() + self._timing.bids_s
        seen: list[Bid] = []
        while True:
            seen = self._api.bids(dseq)
            chosen = cheapest(seen, max_price)
            if chosen:
                return chosen
            if self._clock.now() >= deadline:
                raise DeployError(_no_bid_reason(seen, max_price, self._timing.bids_s))
            self._clock.sleep(self._timing.poll_s)

    def _wait_for_uri(self, dseq: str, service: str) -> Endpoints:
        deadline = self._clock.now() + self._timing.uri_s
        while True:
            found = endpoints(self._api.deployment(dseq), service)
            if found.uris:
                return found
            if self._clock.now() >= deadline:
                raise DeployError(f"the provider reported no URI for service {service!r} in {self._timing.uri_s:g}s")
            self._clock.sleep(self._timing.poll_s)

    def _wait_until_ready(self, base_url: str) -> None:
        deadline = self._clock.now() + self._timing.ready_s
        last = "no answer"
        while True:
            try:
                response = self._http.get(f"{base_url}/ready", timeout=10)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = str(exc) or type(exc).__name__
            if self._clock.now() >= deadline:
                raise DeployError(f"{base_url}/ready did not answer 200 in {self._timing.ready_s:g}s (last: {last})")
            self._clock.sleep(self._timing.poll_s)

    def _close_after_failure(self, dseq: str) -> None:
        try:
            self._api.close(dseq)
        except DeployError as exc:
            self._say(f"could not close deployment {dseq}: {exc.message}; run `herd deploy close {dseq}`")


def _no_bid_reason(bids: list[Bid], max_price: Decimal | None, waited: float) -> str:
    if not bids:
        return f"no provider bid in {waited:g}s (try other GPU models, fewer GPUs per worker, or a higher price)"
    prices = sorted(b.price for b in bids if b.state == "open")
    cap = f" within --max-price {max_price}" if max_price is not None else ""
    low = f"; the lowest was {prices[0]}" if prices else ""
    return f"{len(bids)} bids in {waited:g}s but none{cap} in uact{low}"


DRY_RUN_HOST = "dry-run.invalid"


def dry_run_transport(say: Callable[[str], None], secrets: Iterable[str], service: str) -> httpx.MockTransport:
    """Prints each request (secrets redacted) and answers with placeholders, so `--dry-run` walks
    the same code path as a real deployment without sending anything."""
    hidden = [s for s in secrets if s]

    def handle(request: httpx.Request) -> httpx.Response:
        text = f"{request.method} {request.url}\n"
        for name, value in request.headers.items():
            if name.lower() in ("x-api-key", "content-type"):
                text += f"  {name}: {REDACTED if name.lower() == 'x-api-key' else value}\n"
        if request.content:
            text += _body_text(json.loads(request.content))
        for secret in hidden:
            text = text.replace(secret, REDACTED)
        say(text)
        return httpx.Response(201 if request.method == "POST" else 200, json=_placeholder(request, service))

    return httpx.MockTransport(handle)


def _body_text(body: Any) -> str:
    sdl = body.get("data", {}).get("sdl") if isinstance(body, dict) and isinstance(body.get("data"), dict) else None
    if isinstance(sdl, str):  # the SDL as the YAML it is, not one long JSON string
        return '  body: {"data": {"sdl": <this SDL>}}\n    ' + sdl.rstrip("\n").replace("\n", "\n    ") + "\n"
    return "  body: " + json.dumps(body, indent=2).replace("\n", "\n  ") + "\n"


def _placeholder(request: httpx.Request, service: str) -> dict[str, Any]:
    path = request.url.path
    if path == "/v1/deployments" and request.method == "POST":
        return {"data": {"dseq": "<dseq>", "manifest": "<manifest>"}}
    if path == "/v1/bids":
        ident = {"owner": "<owner>", "dseq": "<dseq>", "gseq": 1, "oseq": 1, "provider": "<provider>"}
        return {"data": [{"bid": {"bid_id": ident, "state": "open", "price": {"denom": "uact", "amount": "0"}}}]}
    if path == "/v1/leases":
        return {"data": {"leases": [{"status": {"services": {service: {"uris": [DRY_RUN_HOST]}}}}]}}
    return {"status": "ready"}
