"""`herd deploy akash` against the Akash Console API, offline: httpx.MockTransport answers with the
response shapes recorded in ../shared/reference/akash-deploy.md, and a fake clock makes waits instant."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from router.driver.akash import Bid, ConsoleApi, Deployer, Timing, cheapest, endpoints
from router.errors import DeployError

KEY = "console-key-0123456789"
DSEQ = "21870431"
OWNER = "akash1owner"
Handler = Callable[[httpx.Request], httpx.Response]


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def bid(provider: str, amount: str, *, denom: str = "uact", state: str = "open", oseq: int = 1) -> dict[str, Any]:
    ident = {"owner": OWNER, "dseq": DSEQ, "gseq": 1, "oseq": oseq, "provider": provider}
    return {"bid": {"bid_id": ident, "state": state, "price": {"denom": denom, "amount": amount}}}


def deployment(
    uris: list[str] | None, forwarded: list[dict[str, Any]] | None = None, state: str = "active", **extra: Any
) -> dict[str, Any]:
    """Console's DeploymentResponseSchema (apps/api/src/deployment/http-schemas), trimmed."""
    status = None
    if uris is not None:
        service = {"name": "herd", "available": 1, "total": 1, "uris": uris, "ready_replicas": 1}
        status = {"services": {"herd": service}, "forwarded_ports": {"herd": forwarded or []}, "ips": {}}
    ident = {"owner": OWNER, "dseq": DSEQ, "gseq": 1, "oseq": 1, "provider": "akash1cheap", "bseq": 1}
    lease = {"id": ident, "state": state, "price": {"denom": "uact", "amount": "450.5"}, "status": status, **extra}
    deployment = {"id": {"owner": OWNER, "dseq": DSEQ}, "state": "active", "hash": "h", "created_at": "1"}
    return {"data": {"deployment": deployment, "leases": [lease], "escrow_account": {}}}


class Console:
    """A scripted Console API plus the deployed Herd's /ready; records every request."""

    def __init__(
        self,
        bids: list[list[dict[str, Any]]],
        lease: httpx.Response | None = None,
        polls: list[dict[str, Any]] | None = None,
        ready: list[int] | None = None,
    ) -> None:
        self.bids, self.polls, self.ready = bids, polls or [], ready or [200]
        self.lease = lease or httpx.Response(200, json=deployment(None))
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = (request.method, request.url.path)
        if route == ("POST", "/v1/deployments"):
            return httpx.Response(201, json={"data": {"dseq": DSEQ, "manifest": [{"name": "akash"}]}})
        if route == ("GET", "/v1/bids"):
            return httpx.Response(200, json={"data": self.bids.pop(0) if len(self.bids) > 1 else self.bids[0]})
        if route == ("POST", "/v1/leases"):
            return self.lease
        if route == ("GET", f"/v1/deployments/{DSEQ}"):
            return httpx.Response(200, json=self.polls.pop(0) if len(self.polls) > 1 else self.polls[0])
        if route == ("DELETE", f"/v1/deployments/{DSEQ}"):
            return httpx.Response(200, json={"data": {"success": True}})
        if route == ("GET", "/ready"):
            status = self.ready.pop(0) if len(self.ready) > 1 else self.ready[0]
            if status == 0:
                raise httpx.ConnectError("connection refused", request=request)
            return httpx.Response(status, json={"status": "ready" if status == 200 else "not ready"})
        return httpx.Response(404, json={"message": f"no route {route}"})

    def routes(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]


def _deploy(console: Console, max_price: str | None = None, clock: FakeClock | None = None) -> Any:
    transport = httpx.MockTransport(console)
    api = ConsoleApi(httpx.Client(base_url="https://console.test", transport=transport), KEY)
    timing = Timing(poll_s=5, bids_s=60, uri_s=60, ready_s=120)
    deployer = Deployer(api, httpx.Client(transport=transport), clock or FakeClock(), timing, lambda _: None)
    return deployer.deploy("version: '2.0'\n", "herd", Decimal(max_price) if max_price else None)


def test_leases_the_cheapest_bid_within_the_cap_and_waits_for_ready() -> None:
    console = Console(
        bids=[[], [bid("akash1dear", "900"), bid("akash1cheap", "450.5"), bid("akash1toomuch", "5000")]],
        polls=[deployment(None), deployment(["abc.ingress.example"], [{"host": "p.example", "externalPort": 31999}])],
        ready=[0, 503, 200],
    )
    clock = FakeClock()
    done = _deploy(console, max_price="1000", clock=clock)
    assert (done.dseq, done.provider, done.base_url) == (DSEQ, "akash1cheap", "http://abc.ingress.example")
    assert done.forwarded == ("p.example:31999",)
    assert console.routes() == [
        "POST /v1/deployments",
        "GET /v1/bids",
        "GET /v1/bids",
        "POST /v1/leases",
        f"GET /v1/deployments/{DSEQ}",
        f"GET /v1/deployments/{DSEQ}",
        "GET /ready",
        "GET /ready",
        "GET /ready",
    ]
    create, lease = console.requests[0], console.requests[3]
    assert json.loads(create.content) == {"data": {"sdl": "version: '2.0'\n"}}
    assert json.loads(lease.content) == {
        "manifest": [{"name": "akash"}],
        "leases": [{"dseq": DSEQ, "gseq": 1, "oseq": 1, "provider": "akash1cheap"}],
    }
    assert all(r.headers["x-api-key"] == KEY for r in console.requests if r.url.host == "console.test")
    assert "x-api-key" not in console.requests[-1].headers  # the key never goes to the provider
    assert clock.t == 4 * 5  # slept between polls only: bids once, URI once, /ready twice


def test_uses_the_uri_the_lease_response_already_carries() -> None:
    console = Console(bids=[[bid("akash1cheap", "10")]], lease=httpx.Response(200, json=deployment(["x.example"])))
    assert _deploy(console).base_url == "http://x.example"
    assert f"GET /v1/deployments/{DSEQ}" not in console.routes()


@pytest.mark.parametrize(
    ("bids", "max_price", "message"),
    [
        ([], None, "no provider bid in 60s"),
        (
            [bid("akash1dear", "900")],
            "500",
            "1 bids in 60s but none within --max-price 500 in uact; the lowest was 900",
        ),
        ([bid("akash1old", "10", denom="uakt")], None, "none in uact"),
        ([bid("akash1gone", "10", state="closed")], None, "none in uact"),
    ],
)
def test_no_acceptable_bid_in_time_closes_the_deployment(
    bids: list[dict[str, Any]], max_price: str | None, message: str
) -> None:
    console = Console(bids=[bids])
    with pytest.raises(DeployError, match=message) as caught:
        _deploy(console, max_price)
    assert "(deployment closed)" in caught.value.message
    assert console.routes()[-1] == f"DELETE /v1/deployments/{DSEQ}"
    assert console.routes().count("GET /v1/bids") == 60 // 5 + 1


def test_a_failed_lease_closes_the_deployment() -> None:
    failed = httpx.Response(400, json={"message": "Lease request failed: insufficient provider capacity"})
    console = Console(bids=[[bid("akash1cheap", "10")]], lease=failed)
    with pytest.raises(DeployError, match="POST /v1/leases: 400 Lease request failed: insufficient provider capacity"):
        _deploy(console)
    assert console.routes()[-2:] == ["POST /v1/leases", f"DELETE /v1/deployments/{DSEQ}"]


def test_a_lease_the_chain_closed_fails_at_once() -> None:
    closed = deployment(None, state="closed", reason="insufficient funds")
    console = Console(bids=[[bid("akash1cheap", "10")]], polls=[closed])
    with pytest.raises(DeployError, match=r"the lease with akash1cheap is closed \(insufficient funds\)"):
        _deploy(console)
    assert console.routes().count(f"GET /v1/deployments/{DSEQ}") == 1


def test_a_provider_whose_uri_never_answers_ready() -> None:
    console = Console(bids=[[bid("akash1cheap", "10")]], polls=[deployment(["slow.example"])], ready=[503])
    with pytest.raises(DeployError, match=r"http://slow.example/ready did not answer 200 in 120s \(last: 503"):
        _deploy(console)
    assert console.routes().count("GET /ready") == 120 // 5 + 1
    assert console.routes()[-1] == f"DELETE /v1/deployments/{DSEQ}"


def test_a_provider_that_never_reports_a_uri() -> None:
    console = Console(bids=[[bid("akash1cheap", "10")]], polls=[deployment(None)])
    with pytest.raises(DeployError, match="no URI for service 'herd' in 60s"):
        _deploy(console)


def test_a_rejected_api_key_is_named() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"message": "Unauthorized"})

    api = ConsoleApi(httpx.Client(base_url="https://console.test", transport=httpx.MockTransport(refuse)), "bad")
    with pytest.raises(DeployError, match="refused AKASH_CONSOLE_API_KEY"):
        api.create_deployment("version: '2.0'\n")


def _bid(provider: str, price: str, *, oseq: int = 1, denom: str = "uact", state: str = "open") -> Bid:
    return Bid(provider, DSEQ, 1, oseq, Decimal(price), denom, state)


@pytest.mark.parametrize(
    ("bids", "cap", "chosen"),
    [
        ([_bid("a", "3"), _bid("b", "2"), _bid("c", "2")], None, ["b"]),  # ties go to the provider name
        ([_bid("a", "3"), _bid("b", "2")], "2.5", ["b"]),
        ([_bid("a", "3")], "2.5", []),
        ([_bid("a", "1", state="closed"), _bid("b", "2")], None, ["b"]),
        ([_bid("a", "1", denom="uakt"), _bid("b", "2")], None, ["b"]),
        # Every order needs a bid, or none is leased.
        ([_bid("a", "1", oseq=1), _bid("b", "2", oseq=2)], None, ["a", "b"]),
        ([_bid("a", "1", oseq=1), _bid("b", "9", oseq=2)], "5", []),
        ([], None, []),
    ],
)
def test_cheapest(bids: list[Bid], cap: str | None, chosen: list[str]) -> None:
    assert [b.provider for b in cheapest(bids, Decimal(cap) if cap else None)] == chosen


def test_endpoints_reads_uris_and_forwarded_ports_and_tolerates_missing_status() -> None:
    ports = [{"host": "p.example", "port": 11434, "externalPort": 30001}, {"port": 11434, "externalPort": 30002}]
    body = deployment(["a.example", "b.example"], ports)
    found = endpoints(body, "herd")
    assert (found.uris, found.forwarded) == (("a.example", "b.example"), ("p.example:30001",))
    assert endpoints(deployment(None), "herd").uris == ()
    assert endpoints(body, "head").uris == ()
