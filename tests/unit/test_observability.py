"""ECS JSON logging, request/trace context, traceparent parsing and Prometheus metrics."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pytest
from prometheus_client import REGISTRY, Counter
from prometheus_client.parser import text_string_to_metric_families

from archway.kernel.observability.logging import (
    bind_request_context,
    configure_logging,
    current_request_context,
    log_access,
    new_span_id,
    new_trace_id,
    parse_traceparent,
    reset_request_context,
)
from archway.kernel.observability.metrics import HttpMetrics

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
_UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access")


class ShopError(Exception):
    pass


@pytest.fixture
def saved_logging() -> Iterator[None]:
    """Put the root and uvicorn loggers back as they were, whatever the test configured."""
    root = logging.getLogger()
    saved_root = (root.level, list(root.handlers))
    saved = {
        name: (lg.level, list(lg.handlers), lg.propagate, lg.disabled)
        for name in _UVICORN
        for lg in [logging.getLogger(name)]
    }
    yield
    root.setLevel(saved_root[0])
    root.handlers[:] = saved_root[1]
    for name, (level, handlers, propagate, disabled) in saved.items():
        lg = logging.getLogger(name)
        lg.setLevel(level)
        lg.handlers[:] = handlers
        lg.propagate, lg.disabled = propagate, disabled


@pytest.fixture
def stream(saved_logging: None) -> io.StringIO:
    buffer = io.StringIO()
    configure_logging("DEBUG", buffer)
    return buffer


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in buffer.getvalue().splitlines()]


def test_a_log_line_is_one_ecs_json_object(stream: io.StringIO) -> None:
    logging.getLogger("archway.test").info("hello %s\nsecond line", "world")

    [line] = lines(stream)
    assert line["message"] == "hello world\nsecond line"
    assert line["log.level"] == "info"
    assert line["log.logger"] == "archway.test"
    assert line["ecs.version"] == "8.11.0"
    assert line["service.name"] == "archway"
    assert line["process.pid"] == os.getpid()
    timestamp = str(line["@timestamp"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", timestamp)
    age = datetime.now(UTC) - datetime.fromisoformat(timestamp)
    assert 0 <= age.total_seconds() < 5
    assert not [key for key in line if key.startswith(("error.", "http.", "trace.", "span."))]


def test_extra_ecs_fields_are_merged_at_top_level(stream: io.StringIO) -> None:
    fields = {"http.request.method": "GET", "user.id": "u-1", "when": datetime(2026, 1, 2)}
    logging.getLogger("archway.test").warning("checked", extra={"ecs": fields})

    [line] = lines(stream)
    assert line["http.request.method"] == "GET"
    assert line["user.id"] == "u-1"
    assert line["when"] == "2026-01-02T00:00:00"
    assert line["log.level"] == "warning"


def test_configuring_again_replaces_the_handler_and_sets_the_level(stream: io.StringIO) -> None:
    second = io.StringIO()
    configure_logging("warning", second)
    logger = logging.getLogger("archway.test")
    logger.info("dropped")
    logger.error("kept")

    assert stream.getvalue() == ""
    assert [line["message"] for line in lines(second)] == ["kept"]
    with pytest.raises(ValueError):
        configure_logging("LOUD", io.StringIO())
    logger.error("still here")
    assert [line["message"] for line in lines(second)] == ["kept", "still here"]


def test_bound_request_context_is_on_every_line_until_reset(stream: io.StringIO) -> None:
    logger = logging.getLogger("archway.test")
    token = bind_request_context("req-1", TRACE_ID, SPAN_ID)
    logger.info("inside")
    assert current_request_context() == ("req-1", TRACE_ID, SPAN_ID)
    reset_request_context(token)
    logger.info("outside")
    token = bind_request_context("req-2", None, None)
    logger.info("no trace")
    reset_request_context(token)

    inside, outside, no_trace = lines(stream)
    assert inside["http.request.id"] == "req-1"
    assert inside["trace.id"] == TRACE_ID
    assert inside["span.id"] == SPAN_ID
    assert "http.request.id" not in outside
    assert current_request_context() is None
    assert no_trace["http.request.id"] == "req-2"
    assert "trace.id" not in no_trace and "span.id" not in no_trace


async def test_concurrent_tasks_keep_their_own_context(stream: io.StringIO) -> None:
    async def serve(request_id: str) -> None:
        token = bind_request_context(request_id, None, None)
        try:
            await asyncio.sleep(0)
            logging.getLogger("archway.test").info(request_id)
        finally:
            reset_request_context(token)

    await asyncio.gather(*(serve(f"req-{n}") for n in range(5)))

    served = [line for line in lines(stream) if line["log.logger"] == "archway.test"]
    assert sorted((line["message"], line["http.request.id"]) for line in served) == [
        (f"req-{n}", f"req-{n}") for n in range(5)
    ]


def test_exceptions_are_logged_with_error_fields(stream: io.StringIO) -> None:
    logger = logging.getLogger("archway.test")
    for error in (ValueError("bad value"), ShopError("no stock")):
        try:
            raise error
        except Exception:
            logger.exception("handler failed")
    logger.error("no exception here", exc_info=(None, None, None))  # as exc_info=True gives here

    builtin, custom, plain = lines(stream)
    assert builtin["message"] == "handler failed"
    assert builtin["log.level"] == "error"
    assert builtin["error.type"] == "ValueError"
    assert builtin["error.message"] == "bad value"
    trace = str(builtin["error.stack_trace"])
    assert trace.startswith("Traceback") and "raise error" in trace
    assert custom["error.type"] == f"{__name__}.ShopError"
    assert custom["error.message"] == "no stock"
    assert not [key for key in plain if key.startswith("error.")]


def test_uvicorn_error_goes_through_the_handler_and_its_access_log_is_quiet(
    saved_logging: None,
) -> None:
    # As uvicorn's default config leaves them: own handlers, no propagation.
    foreign = logging.StreamHandler(io.StringIO())
    for name in ("uvicorn", "uvicorn.access"):
        logging.getLogger(name).addHandler(foreign)
        logging.getLogger(name).propagate = False
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    buffer = io.StringIO()
    configure_logging("INFO", buffer)

    logging.getLogger("uvicorn.error").info("Application startup complete.")
    logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET / HTTP/1.1" 200')

    assert [(line["log.logger"], line["message"]) for line in lines(buffer)] == [
        ("uvicorn.error", "Application startup complete.")
    ]
    assert foreign.stream.getvalue() == ""


def test_access_line_carries_ecs_http_fields(stream: io.StringIO) -> None:
    token = bind_request_context("req-9", TRACE_ID, SPAN_ID)
    log_access(
        "GET", "/v1/products/p-1", "/v1/products/{id}", 200, 0.012345678,
        "req-9", "203.0.113.7", "curl/8.0",
    )  # fmt: skip
    reset_request_context(token)
    log_access("POST", "/nowhere", None, 404, 0.5, "req-10", None, None)

    matched, unmatched = lines(stream)
    assert matched["log.logger"] == "archway.access"
    assert matched["log.level"] == "info"
    assert matched["message"] == "GET /v1/products/p-1 200"
    assert matched["event.dataset"] == "archway.access"
    assert matched["http.request.id"] == "req-9"
    assert matched["trace.id"] == TRACE_ID
    assert matched["http.request.method"] == "GET"
    assert matched["url.path"] == "/v1/products/p-1"
    assert matched["http.route"] == "/v1/products/{id}"
    assert matched["http.response.status_code"] == 200
    assert matched["event.duration"] == 12_345_678
    assert matched["client.ip"] == "203.0.113.7"
    assert matched["user_agent.original"] == "curl/8.0"
    assert unmatched["http.request.id"] == "req-10"
    assert unmatched["event.duration"] == 500_000_000
    assert not {"http.route", "client.ip", "user_agent.original"} & unmatched.keys()


def test_access_lines_can_be_switched_off(stream: io.StringIO) -> None:
    access = logging.getLogger("archway.access")
    access.setLevel(logging.WARNING)
    try:
        log_access("GET", "/", "/", 200, 0.001, "req-1", None, None)
    finally:
        access.setLevel(logging.NOTSET)
    assert stream.getvalue() == ""


def test_valid_traceparent_gives_trace_and_parent_ids() -> None:
    assert parse_traceparent(f"00-{TRACE_ID}-{SPAN_ID}-01") == (TRACE_ID, SPAN_ID)
    assert parse_traceparent(f"00-{TRACE_ID}-{SPAN_ID}-00") == (TRACE_ID, SPAN_ID)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        f"01-{TRACE_ID}-{SPAN_ID}-01",  # unknown version
        f"ff-{TRACE_ID}-{SPAN_ID}-01",  # forbidden version
        f"00-{TRACE_ID.upper()}-{SPAN_ID}-01",  # upper-case hex
        f"00-{TRACE_ID[:-1]}g-{SPAN_ID}-01",  # not hex
        f"00-{TRACE_ID[:-1]}-{SPAN_ID}-01",  # short trace id
        f"00-{TRACE_ID}-{SPAN_ID}0-01",  # long parent id
        f"00-{TRACE_ID}-{SPAN_ID}-1",  # short flags
        f"00-{TRACE_ID}-{SPAN_ID}-01-extra",  # trailing field
        f"00-{TRACE_ID}-{SPAN_ID}-01\n",  # trailing newline
        f" 00-{TRACE_ID}-{SPAN_ID}-01",  # leading space
        f"00_{TRACE_ID}_{SPAN_ID}_01",  # wrong separators
        f"00-{'0' * 32}-{SPAN_ID}-01",  # all-zero trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # all-zero parent id
    ],
)
def test_malformed_traceparent_is_ignored(value: str | None) -> None:
    assert parse_traceparent(value) is None


def test_new_ids_are_random_hex_that_make_a_valid_traceparent() -> None:
    trace_id, span_id = new_trace_id(), new_span_id()
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
    assert re.fullmatch(r"[0-9a-f]{16}", span_id)
    assert parse_traceparent(f"00-{trace_id}-{span_id}-01") == (trace_id, span_id)
    assert len({new_trace_id() for _ in range(100)}) == 100
    assert len({new_span_id() for _ in range(100)}) == 100


def sample(metrics: HttpMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_observe_counts_requests_and_durations() -> None:
    metrics = HttpMetrics()
    route = "/v1/products/{id}"
    metrics.observe(route, "GET", 200, 0.004)
    metrics.observe(route, "GET", 200, 0.2)
    metrics.observe(route, "GET", 404, 0.002)
    metrics.observe("Query.products", "POST", 200, 0.03, protocol="graphql")

    ok = {"route": route, "method": "GET", "status": "200", "protocol": "http"}
    assert sample(metrics, "archway_http_requests_total", **ok) == 2
    assert sample(metrics, "archway_http_requests_total", **{**ok, "status": "404"}) == 1
    graphql = {"route": "Query.products", "method": "POST", "status": "200", "protocol": "graphql"}
    assert sample(metrics, "archway_http_requests_total", **graphql) == 1
    timing = {"route": route, "method": "GET", "protocol": "http"}
    name = "archway_http_request_duration_seconds"
    assert sample(metrics, f"{name}_count", **timing) == 3
    assert sample(metrics, f"{name}_sum", **timing) == pytest.approx(0.206)
    assert sample(metrics, f"{name}_bucket", **timing, le="0.001") == 0
    assert sample(metrics, f"{name}_bucket", **timing, le="0.005") == 2
    assert sample(metrics, f"{name}_bucket", **timing, le="10.0") == 3
    assert sample(metrics, f"{name}_bucket", **timing, le="+Inf") == 3


def test_unknown_methods_share_one_series() -> None:
    metrics = HttpMetrics()
    for method in ("BREW", "PROPFIND", "get"):
        metrics.observe("<unmatched>", method, 405, 0.001)
    labels = {"route": "<unmatched>", "method": "OTHER", "status": "405", "protocol": "http"}
    assert sample(metrics, "archway_http_requests_total", **labels) == 3


def test_in_progress_gauge_tracks_open_requests() -> None:
    metrics = HttpMetrics()
    with metrics.in_progress.track_inprogress():
        assert sample(metrics, "archway_http_requests_in_progress") == 1
    assert sample(metrics, "archway_http_requests_in_progress") == 0


def test_render_is_valid_exposition_text_with_all_metrics() -> None:
    metrics = HttpMetrics()
    metrics.observe("/healthz", "GET", 200, 0.001)
    metrics.rate_limit_rejected("anonymous", "reads", "over_limit")
    Counter("archway_outbox_relayed", "Another part's.", registry=metrics.registry).inc()

    body, content_type = metrics.render()

    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    families = {
        family.name: family.type
        for family in text_string_to_metric_families(body.decode())
        if not family.name.endswith("_created")  # prometheus_client's creation timestamps
    }
    assert families == {
        "archway_http_requests": "counter",
        "archway_http_request_duration_seconds": "histogram",
        "archway_http_requests_in_progress": "gauge",
        "archway_rate_limit_rejections": "counter",
        "archway_rate_limit_store_failures": "counter",
        "archway_outbox_relayed": "counter",
    }


def test_two_instances_do_not_share_series_or_clash() -> None:
    first, second = HttpMetrics(), HttpMetrics()
    first.observe("/a", "GET", 200, 0.01)

    labels = {"route": "/a", "method": "GET", "status": "200", "protocol": "http"}
    assert sample(first, "archway_http_requests_total", **labels) == 1
    assert sample(second, "archway_http_requests_total", **labels) is None
    assert b'route="/a"' not in second.render()[0]
    assert REGISTRY.get_sample_value("archway_http_requests_in_progress") is None


def test_pool_gauge_is_read_at_scrape_time_only() -> None:
    metrics = HttpMetrics()
    assert b"archway_db_pool_connections" not in metrics.render()[0]
    reads: list[tuple[int, int]] = []

    def reader() -> tuple[int, int]:
        reads.append((3, 7))
        return reads[-1]

    metrics.set_pool_reader(reader)
    metrics.observe("/a", "GET", 200, 0.01)
    assert reads == []
    body, _ = metrics.render()

    assert len(reads) == 1
    assert b'archway_db_pool_connections{state="checked_out"} 3.0' in body
    assert sample(metrics, "archway_db_pool_connections", state="idle") == 7


def test_failing_pool_reader_leaves_the_rest_of_the_scrape(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = HttpMetrics()
    metrics.observe("/a", "GET", 200, 0.01)

    def broken() -> tuple[int, int]:
        raise RuntimeError("pool disposed")

    metrics.set_pool_reader(broken)
    with caplog.at_level(logging.WARNING):
        body, _ = metrics.render()

    assert b"archway_http_requests_total" in body
    assert b"archway_db_pool_connections{" not in body
    assert "database pool reader failed" in caplog.text
