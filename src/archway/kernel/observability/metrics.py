"""Prometheus metrics for the HTTP edge and the database pool, on a registry of their own.

Each :class:`HttpMetrics` owns its :class:`~prometheus_client.CollectorRegistry` instead of the
process-wide default, so tests (and a process hosting several apps) can build as many as they
like without "duplicated timeseries" errors. Other parts (the outbox) register their own metrics
on :attr:`HttpMetrics.registry` so one scrape shows them all; the rate limiter's refusals are
counted here, as the HTTP edge's (an app built twice on one graph must not register them twice).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

PoolReader = Callable[[], tuple[int, int]]
"""Returns ``(checked_out, idle)`` connection counts; called at scrape time only."""

Refresher = Callable[[], Awaitable[None]]
"""Updates some gauges from an async source (the database) just before a scrape renders."""

DURATION_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Upper bounds in seconds: fine steps where API latency objectives sit, up to a 10 s timeout."""

_KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
_POOL_METRIC: Final = "archway_db_pool_connections"

_log = logging.getLogger(__name__)


class _PoolCollector(Collector):
    """Reads the pool's counts when scraped, so serving a request costs nothing for them."""

    def __init__(self) -> None:
        self.reader: PoolReader | None = None

    def describe(self) -> Iterable[Metric]:
        # Lets the registry reserve the name, so a clashing registration fails early.
        return [_pool_family()]

    def collect(self) -> Iterator[Metric]:
        reader = self.reader
        if reader is None:
            return  # no pool wired: absent, not a misleading zero
        try:
            checked_out, idle = reader()
        except Exception:  # noqa: BLE001 - one failing reader must not blank the whole scrape
            _log.warning("database pool reader failed; %s left out", _POOL_METRIC, exc_info=True)
            return
        family = _pool_family()
        family.add_metric(["checked_out"], checked_out)
        family.add_metric(["idle"], idle)
        yield family


def _pool_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(_POOL_METRIC, "Database pool connections, by state.", labels=["state"])


class HttpMetrics:
    """Request count, latency and concurrency per route, plus the database pool's state.

    Label values must stay few: pass the route *template* (``/v1/products/{id}``), or one fixed
    placeholder for unmatched paths, never the raw path. Unknown methods are counted as
    ``OTHER`` so that a client cannot create series at will. Middleware wraps each request
    in ``with metrics.in_progress.track_inprogress():`` and calls :meth:`observe` at its end.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "archway_http_requests_total",
            "Requests served, by route template (a gRPC call: its full method name), method, "
            "status (a gRPC call: its code's name) and API protocol.",
            ("route", "method", "status", "protocol"),
            registry=self.registry,
        )
        self._duration = Histogram(
            "archway_http_request_duration_seconds",
            "Time from request start to response end, by route template, method and protocol.",
            ("route", "method", "protocol"),
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "archway_http_requests_in_progress",
            "HTTP requests being served now.",
            registry=self.registry,
        )
        self._rate_limit_rejections = Counter(
            "archway_rate_limit_rejections_total",
            "Requests refused by the rate limiter, by plan, route class, reason (over_limit: "
            "429, RESOURCE_EXHAUSTED, RATE_LIMITED; store_unavailable: 503, UNAVAILABLE, "
            "SERVICE_BUSY while failing closed) and API protocol (http, graphql, grpc).",
            ("plan", "route_class", "reason", "protocol"),
            registry=self.registry,
        )
        self._rate_limit_store_failures = Counter(
            "archway_rate_limit_store_failures_total",
            "Requests the rate limiter could not check because its store failed (each was then "
            "let through or refused, as the limiter fails open or closed).",
            registry=self.registry,
        )
        self._pool = _PoolCollector()
        self.registry.register(self._pool)
        # ``.labels()`` takes a lock and builds a key on every call; the children it returns
        # never change, so they are kept here and the hot path is one dict lookup each.
        self._request_children: dict[tuple[str, str, int | str, str], Counter] = {}
        self._duration_children: dict[tuple[str, str, str], Histogram] = {}
        self._refreshers: list[Refresher] = []

    def add_refresher(self, fn: Refresher) -> None:
        """Await ``fn()`` before each scrape: for values that need an async read (a collector
        callback runs synchronously, inside the render, where no query can be awaited)."""
        self._refreshers.append(fn)

    async def refresh(self) -> None:
        """Run every refresher; one that fails is logged and the scrape goes on without it."""
        for fn in self._refreshers:
            try:
                await fn()
            except Exception:  # noqa: BLE001 - one failing source must not blank the scrape
                _log.warning("a metrics refresher failed", exc_info=True)

    def set_pool_reader(self, fn: PoolReader) -> None:
        """Report ``fn()``'s ``(checked_out, idle)`` as ``archway_db_pool_connections``."""
        self._pool.reader = fn

    def observe(
        self, route: str, method: str, status: int | str, duration_s: float,
        protocol: str = "http",
    ) -> None:
        """Count one finished request and record its duration. A gRPC call is one of
        ``protocol="grpc"``, by its full method name, ``POST`` (what it is on the wire) and
        its status code's name (``OK``, ``NOT_FOUND``)."""
        if method not in _KNOWN_METHODS:
            method = "OTHER"
        duration_key = (route, method, protocol)
        histogram = self._duration_children.get(duration_key)
        if histogram is None:
            histogram = self._duration.labels(route, method, protocol)
            self._duration_children[duration_key] = histogram
        histogram.observe(duration_s)

        request_key = (route, method, status, protocol)
        counter = self._request_children.get(request_key)
        if counter is None:
            counter = self._requests.labels(route, method, str(status), protocol)
            self._request_children[request_key] = counter
        counter.inc()

    def rate_limit_rejected(
        self, plan: str, route_class: str, reason: str, protocol: str = "http"
    ) -> None:
        """Count one request the rate limiter refused (few label values: three plans, three
        classes, two reasons, three protocols)."""
        self._rate_limit_rejections.labels(plan, route_class, reason, protocol).inc()

    def rate_limit_store_failed(self) -> None:
        self._rate_limit_store_failures.inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its content type.

        The classic 0.0.4 text format is used because every Prometheus-compatible scraper
        reads it; all our names are plain ``[a-z_]``, so the newer format would add nothing.
        """
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4
