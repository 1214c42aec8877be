"""Prometheus metrics of one router replica, on its own registry (served at `/metrics`).

Names follow the OpenTelemetry GenAI server metrics where one exists (`gen_ai_server_*`) and
vLLM's token counters otherwise (`prompt_tokens_total`, `generation_tokens_total`), under `herd_`.
Each generation is observed once, when it ends: nothing is recorded per token.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Metric, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from workers.events import Final

# The router's own share of a request is sub-millisecond when healthy; the top buckets catch stalls.
ADDED_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# OpenTelemetry's advised buckets for these GenAI server histograms.
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)


class RouterMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        labels = ["model", "api"]
        self.requests = Counter(
            "herd_requests",
            "HTTP requests by model (empty when none was resolved), API, endpoint and status code.",
            ["model", "api", "endpoint", "status"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "herd_requests_in_flight",
            "Generations the router has open on the engines.",
            ["model"],
            registry=self.registry,
        )
        self.router_added = Histogram(
            "herd_router_added_seconds",
            "Time a request spent in the router and its hops to the engine worker: "
            "end-to-end time in the router minus the worker's own time.",
            labels,
            buckets=ADDED_BUCKETS,
            registry=self.registry,
        )
        self.ttft = Histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "Time from the request reaching the router to the first output token reaching it.",
            labels,
            buckets=TTFT_BUCKETS,
            registry=self.registry,
        )
        self.tpot = Histogram(
            "gen_ai_server_time_per_output_token_seconds",
            "Per request: time between the first and last output token divided by the tokens after the first.",
            labels,
            buckets=TPOT_BUCKETS,
            registry=self.registry,
        )
        self.duration = Histogram(
            "gen_ai_server_request_duration_seconds",
            "Generation time in the router, from request to the last event.",
            labels,
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "herd_errors",
            "Errors clients got, by model, API, error class and phase: before_first_byte (an HTTP "
            "status) or in_stream (an in-band error after the response started).",
            ["model", "api", "type", "phase"],
            registry=self.registry,
        )
        self.prompt_tokens = Counter(
            "herd_prompt_tokens", "Prompt tokens of finished generations.", labels, registry=self.registry
        )
        self.generation_tokens = Counter(
            "herd_generation_tokens", "Output tokens of finished generations.", labels, registry=self.registry
        )
        # RAG: per collection, so labels stay as few as the collections an operator creates.
        self.retrievals = Counter(
            "herd_rag_retrievals", "Retrievals (/v1/retrieve and RAG chat).", ["collection"], registry=self.registry
        )
        self.retrieve_seconds = Histogram(
            "herd_rag_retrieve_seconds",
            "Time to embed a question and search its collection.",
            ["collection"],
            buckets=ADDED_BUCKETS + (5.0,),
            registry=self.registry,
        )
        self.ingested_chunks = Counter(
            "herd_rag_ingested_chunks", "Chunks embedded and stored.", ["collection"], registry=self.registry
        )
        self.collection_points = Gauge(
            "herd_rag_collection_points",
            "Points in a collection, as this replica last saw it (after an ingest or a listing).",
            ["collection"],
            registry=self.registry,
        )
        self.key_requests = Counter(
            "herd_key_requests", "Admitted requests by API key name.", ["key"], registry=self.registry
        )
        self.key_tokens = Counter(
            "herd_key_tokens", "Tokens used by API key name and kind (prompt, output).", ["key", "kind"],
            registry=self.registry,
        )  # fmt: skip

    def observe_retrieval(self, collection: str, seconds: float) -> None:
        self.retrievals.labels(collection).inc()
        self.retrieve_seconds.labels(collection).observe(seconds)

    def observe_collection(self, collection: str, points: int, ingested: int = 0) -> None:
        self.collection_points.labels(collection).set(points)
        if ingested:
            self.ingested_chunks.labels(collection).inc(ingested)

    def forget_collection(self, collection: str) -> None:
        try:
            self.collection_points.remove(collection)
        except KeyError:  # this replica never saw it
            pass

    def observe_key(self, key: str, prompt_tokens: int, output_tokens: int) -> None:
        """One request of an API key (its name, never its secret) and the tokens it used."""
        self.key_requests.labels(key).inc()
        if prompt_tokens:
            self.key_tokens.labels(key, "prompt").inc(prompt_tokens)
        if output_tokens:
            self.key_tokens.labels(key, "output").inc(output_tokens)

    def observe_request(self, model: str, api: str, endpoint: str, status: int) -> None:
        self.requests.labels(model, api, endpoint, str(status)).inc()

    def observe_error(self, model: str, api: str, error: str, phase: str) -> None:
        self.errors.labels(model, api, error, phase).inc()

    def generation(self, model: str, api: str) -> GenerationObserver:
        return GenerationObserver(self, model, api)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class GenerationObserver:
    """One generation's metrics: in flight from creation until `closed`, observed at `finished`."""

    def __init__(self, metrics: RouterMetrics, model: str, api: str) -> None:
        self._m = metrics
        self._model = model
        self._labels = (model, api)
        metrics.in_flight.labels(model).inc()

    def finished(self, final: Final, started_ns: int, first_ns: int, last_ns: int, end_ns: int, router_ns: int) -> None:
        m, labels = self._m, self._labels
        m.router_added.labels(*labels).observe(router_ns / 1e9)
        m.duration.labels(*labels).observe((end_ns - started_ns) / 1e9)
        m.prompt_tokens.labels(*labels).inc(final.prompt_tokens)
        m.generation_tokens.labels(*labels).inc(final.output_tokens)
        if first_ns:
            m.ttft.labels(*labels).observe((first_ns - started_ns) / 1e9)
        if final.output_tokens > 1 and last_ns > first_ns:
            m.tpot.labels(*labels).observe((last_ns - first_ns) / 1e9 / (final.output_tokens - 1))

    def failed(self, error: str) -> None:
        self._m.observe_error(*self._labels, error, "in_stream")

    def closed(self) -> None:
        self._m.in_flight.labels(self._model).dec()


Snapshot = tuple[Mapping[str, str], str]


def merge_expositions(snapshots: Sequence[Snapshot]) -> bytes:
    """Prometheus text of many replicas as one: each sample gets its replica's labels; families
    of the same name merge (the text format allows one TYPE line per family). A `herd_replicas`
    gauge counts the reporting replicas of each model."""
    families: dict[str, Metric] = {}
    replicas: dict[str, int] = {}
    for labels, text in snapshots:
        if "model" in labels:
            replicas[labels["model"]] = replicas.get(labels["model"], 0) + 1
        for family in text_string_to_metric_families(text):
            merged = families.setdefault(family.name, Metric(family.name, family.documentation, family.type))
            merged.samples.extend(
                Sample(s.name, {**s.labels, **labels}, s.value, s.timestamp, s.exemplar) for s in family.samples
            )
    gauge = Metric("herd_replicas", "Engine replicas of each model reporting metrics now.", "gauge")
    gauge.samples.extend(Sample("herd_replicas", {"model": m}, float(n), None, None) for m, n in replicas.items())
    families[gauge.name] = gauge
    return generate_latest(_Families(list(families.values())))


class _Families:
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


class ClusterMetrics:
    """`/metrics` of the whole cluster: this router's live registry plus every fresh hub snapshot."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, own: RouterMetrics, hub: Any | None, source: str) -> None:
        self.own = own
        self._hub = hub
        self.source = source
        self.labels = {"replica": source}

    def own_text(self) -> str:
        return self.own.exposition().decode()

    async def exposition(self) -> bytes:
        others: list[Snapshot] = await self._hub.fresh.remote(self.source) if self._hub is not None else []
        return merge_expositions([(self.labels, self.own_text()), *others])
