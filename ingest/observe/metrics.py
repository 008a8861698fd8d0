"""ledgerflow's own metrics, through ray.util.metrics: every Ray process records its part and the
node's metrics agent serves all of them on Ray's Prometheus endpoint (`metrics_export_port`;
`ray start --metrics-export-port=8080`), next to Ray's own. Exported names get Ray's `ray_`
prefix (ray_ledgerflow_rows_parsed_total, ...); docs/observability.md lists the panels.

Each recording call is one line at the place the event happens; outside Ray (the offline CLI,
unit tests) they do nothing. Metric objects are made lazily, once per process.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import ray

F = TypeVar("F", bound=Callable[..., Any])

STAGE_SECONDS_BOUNDARIES = [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600]

# name -> (kind, description, tag keys)
DEFINITIONS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "ledgerflow_rows_parsed": ("counter", "CSV data rows read by parse tasks", ()),
    "ledgerflow_rows_stored": ("counter", "Canonical transactions written to history chunks", ()),
    "ledgerflow_rows_rejected": ("counter", "Rows rejected with a reason (bad input)", ()),
    "ledgerflow_stage_seconds": ("histogram", "Wall seconds of a job stage", ("stage",)),
    "ledgerflow_jobs": ("counter", "Jobs ended, by outcome (succeeded, failed)", ("outcome",)),
    "ledgerflow_price_requests": (
        "counter",
        "Price provider HTTP requests by provider and "
        "outcome (ok, no_data, unlisted, rate_limited, ...)",
        ("provider", "status"),
    ),
    "ledgerflow_price_throttled": (
        "counter",
        "Price requests answered 429 / rate-limited",
        ("provider",),
    ),
    "ledgerflow_price_cache_windows": (
        "counter",
        "Price windows a job needed, by whether the "
        "cache already had them (hit) or they were fetched (miss)",
        ("result",),
    ),
    "ledgerflow_tax_assets_computed": ("counter", "Assets the tax engine computed", ()),
    "ledgerflow_tasks_in_flight": (
        "gauge",
        "Pipeline tasks running now, per stage (sum over processes)",
        ("stage",),
    ),
}

_lock = threading.Lock()
_metrics: dict[str, Any] = {}
_in_flight: dict[str, int] = {}


def _metric(name: str) -> Any | None:
    if not ray.is_initialized():
        return None
    metric = _metrics.get(name)
    if metric is None:
        from ray.util import metrics as ray_metrics

        kind, description, tags = DEFINITIONS[name]
        with _lock:
            metric = _metrics.get(name)
            if metric is None:
                if kind == "counter":
                    metric = ray_metrics.Counter(name, description, tag_keys=tags)
                elif kind == "gauge":
                    metric = ray_metrics.Gauge(name, description, tag_keys=tags)
                else:
                    metric = ray_metrics.Histogram(
                        name, description, boundaries=STAGE_SECONDS_BOUNDARIES, tag_keys=tags
                    )
                _metrics[name] = metric
    return metric


def _inc(name: str, value: float = 1.0, **tags: str) -> None:
    if value <= 0:
        return
    metric = _metric(name)
    if metric is not None:
        metric.inc(value, tags=tags or None)


def rows(*, parsed: int = 0, stored: int = 0, rejected: int = 0) -> None:
    _inc("ledgerflow_rows_parsed", parsed)
    _inc("ledgerflow_rows_stored", stored)
    _inc("ledgerflow_rows_rejected", rejected)


def stage_done(stage: str, seconds: float) -> None:
    metric = _metric("ledgerflow_stage_seconds")
    if metric is not None:
        metric.observe(max(0.0, float(seconds)), tags={"stage": stage})


def job_finished(outcome: str) -> None:
    _inc("ledgerflow_jobs", outcome=outcome)


def price_request(provider: str, status: str) -> None:
    _inc("ledgerflow_price_requests", provider=provider, status=status)
    if status in ("rate_limited", "body_rate_limited"):
        _inc("ledgerflow_price_throttled", provider=provider)


def price_cache(hits: int, misses: int) -> None:
    _inc("ledgerflow_price_cache_windows", hits, result="hit")
    _inc("ledgerflow_price_cache_windows", misses, result="miss")


def tax_asset_computed(count: int = 1) -> None:
    _inc("ledgerflow_tax_assets_computed", float(count))


def _set_in_flight(stage: str, delta: int) -> None:
    metric = _metric("ledgerflow_tasks_in_flight")
    if metric is None:
        return
    with _lock:
        _in_flight[stage] = _in_flight.get(stage, 0) + delta
        value = _in_flight[stage]
    metric.set(value, tags={"stage": stage})


def in_flight(stage: str) -> Callable[[F], F]:
    """Decorator of a task's function: counts it in ledgerflow_tasks_in_flight while it runs."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            _set_in_flight(stage, +1)
            try:
                return fn(*args, **kwargs)
            finally:
                _set_in_flight(stage, -1)

        return run  # type: ignore[return-value]

    return wrap
