"""A local Ray instance sized to the machine, shared by the whole test session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def ray_local(test_keyspace: str, pipeline_pricesim) -> Iterator[None]:
    import ray

    env = {k: v for k, v in os.environ.items() if k.startswith("LEDGERFLOW_")}
    # address="local": a fresh instance even when `make demo` left a cluster running.
    ray.init(
        address="local",
        num_cpus=os.cpu_count() or 2,
        include_dashboard=False,
        log_to_driver=False,
        # Metrics reach the Prometheus endpoint within a second (tests/test_metrics.py).
        _system_config={"metrics_report_interval_ms": 1000},
        runtime_env={"env_vars": env},
        namespace="ledgerflow-tests",
    )
    yield
    ray.shutdown()
