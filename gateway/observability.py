"""Metrics and structured logs, kept out of the service and the adapters.

Ports are wrapped by :class:`Timed`, which times every coroutine call and counts failures per backend
and operation; nothing inside the adapters knows about Prometheus. Each app owns its registry (tests run
many apps in one process). Logs are one JSON object per line so any collector can parse them.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from gateway.errors import GatewayError

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._per_request: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._in_flight: dict[str, Gauge] = {}
        self.requests = Counter(
            "gateway_requests", "HTTP requests by route and status", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "gateway_request_duration_seconds",
            "HTTP request duration (until the response is complete)",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.bytes_in = Counter(
            "gateway_uploaded_bytes", "request body bytes received for uploads", registry=r
        )
        self.bytes_out = Counter(
            "gateway_downloaded_bytes", "response body bytes sent for downloads", registry=r
        )
        self.in_flight = Gauge(
            "gateway_transfers_in_flight",
            "uploads/downloads in progress",
            ["kind"],
            registry=r,
            multiprocess_mode="livesum",  # with --workers: the sum over live workers
        )
        self.backend_latency = Histogram(
            "gateway_backend_call_duration_seconds",
            "storage and catalog call duration",
            ["backend", "op"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.backend_errors = Counter(
            "gateway_backend_call_errors", "failed storage and catalog calls", ["backend", "op"], registry=r
        )
        self.rate_limited = Counter(
            "gateway_rate_limited", "requests refused with 429 by a rate limit", ["kind"], registry=r
        )
        self.sweep_failures = Counter(
            "gateway_sweep_failures", "assets the retention sweeper could not purge (retried)", registry=r
        )
        self.token_claims = Counter(
            "gateway_token_claims", "share-link downloads granted or refused", ["result"], registry=r
        )
        self.backup_reads = Counter(
            "gateway_backup_reads", "downloads served from a backup storage (the primary failed)", registry=r
        )
        self.event_deliveries = Counter(
            "gateway_event_delivery_attempts",
            "event delivery attempts by outcome (delivered, retry, failed: given up)",
            ["outcome"],
            registry=r,
        )

    def transfers(self, kind: str) -> Gauge:
        """The in-flight gauge's child for ``kind`` (kept, like the per-request children below)."""
        child = self._in_flight.get(kind)
        if child is None:
            child = self._in_flight[kind] = self.in_flight.labels(kind)
        return child

    def count_request(self, route: str, method: str, status: int, elapsed: float) -> None:
        """One finished request. The labelled children are kept: ``labels()`` costs more than ``inc()``."""
        key = (route, method, status)
        pair = self._per_request.get(key)
        if pair is None:
            pair = self._per_request[key] = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
        pair[0].inc()
        pair[1].observe(elapsed)

    def exposition(self) -> bytes:
        """The text format of these metrics, or of every worker's when several share the port
        (prometheus_client's multiprocess mode, set up by ``gateway/workers.py``)."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return generate_latest(merged)
        return generate_latest(self.registry)


class Timed:
    """Delegates to ``inner``; coroutine methods are timed and their failures counted.

    Plain delegation keeps optional capabilities honest: ``isinstance(Timed(x), Presigner)`` is true
    exactly when ``x`` has ``presign_get``.
    """

    def __init__(self, inner: Any, backend: str, metrics: Metrics) -> None:
        self._inner = inner
        self._backend = backend
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        """Called once per method name: the wrapper is cached on the instance, so later calls cost
        nothing extra (no per-call closure or metric-label lookup)."""
        attr = getattr(self._inner, name)
        if not inspect.iscoroutinefunction(attr):
            return attr
        latency = self._metrics.backend_latency.labels(self._backend, name)
        errors = self._metrics.backend_errors.labels(self._backend, name)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await attr(*args, **kwargs)
            except GatewayError as exc:
                if exc.status >= 500:
                    errors.inc()
                raise
            finally:
                latency.observe(time.perf_counter() - start)

        self.__dict__[name] = timed
        return timed


class JsonFormatter(logging.Formatter):
    """One JSON object per line; ``extra={"fields": {...}}`` adds structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(level: str = "INFO", stream_factory: Callable[[], Any] | None = None) -> None:
    handler = logging.StreamHandler(stream_factory() if stream_factory else None)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("aiobotocore").setLevel(logging.WARNING)
