"""Connecting this process to Ray: the configured cluster, or a local instance."""

from __future__ import annotations

import os

import ray

NAMESPACE = "ledgerflow"
RAY_JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # set by Ray's job supervisor for a job's driver


def ensure_ray(address: str = "") -> None:
    """Join the cluster at `address` (Settings.ray_address; 'auto': a running one) or, empty,
    start/join a local one. Worker processes get this process's LEDGERFLOW_* settings."""
    if ray.is_initialized():
        return
    env = {k: v for k, v in os.environ.items() if k.startswith("LEDGERFLOW_")}
    target = address or None
    # The driver of a Ray job (`ray job submit -- ledgerflow backfill`) already runs in the
    # job's runtime env, which ray.init may not redefine: its workers inherit that one.
    in_ray_job = bool(os.environ.get(RAY_JOB_CONFIG_ENV))
    ray.init(
        address=target,
        namespace=NAMESPACE,
        runtime_env=None if in_ray_job else {"env_vars": env},
        log_to_driver=False,
        ignore_reinit_error=True,
    )


def cluster_cpus() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))
