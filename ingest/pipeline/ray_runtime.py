"""Connecting this process to Ray: the configured cluster, or a local instance."""

from __future__ import annotations

import os
from collections.abc import Mapping

import ray

NAMESPACE = "ledgerflow"
RAY_JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # set by Ray's job supervisor for a job's driver
RAY_ADDRESS_ENV = "RAY_ADDRESS"  # set by Ray for a job's driver; a user may export it


def ray_init_address(address: str, environ: Mapping[str, str]) -> str:
    """What ray.init is given for Settings.ray_address: an address or 'auto' as set; empty, the
    RAY_ADDRESS Ray sets for a Ray job's driver (or the user exported), else 'local', a Ray
    instance of this process's own. Never None: with None, ray.init joins whichever instance
    last wrote /tmp/ray/ray_current_cluster ("Found multiple active Ray instances ...
    Connecting to latest cluster"), another program's, a test's or a scenario's cluster."""
    return address or environ.get(RAY_ADDRESS_ENV) or "local"


def ensure_ray(address: str = "") -> None:
    """Join the cluster at `address` (Settings.ray_address; 'auto': a running one) or, empty,
    the one RAY_ADDRESS names, else start a local one (ray_init_address). Worker processes get
    this process's LEDGERFLOW_* settings."""
    if ray.is_initialized():
        return
    env = {k: v for k, v in os.environ.items() if k.startswith("LEDGERFLOW_")}
    # The driver of a Ray job (`ray job submit -- ledgerflow backfill`) already runs in the
    # job's runtime env, which ray.init may not redefine: its workers inherit that one.
    in_ray_job = bool(os.environ.get(RAY_JOB_CONFIG_ENV))
    ray.init(
        address=ray_init_address(address, os.environ),
        namespace=NAMESPACE,
        runtime_env=None if in_ray_job else {"env_vars": env},
        log_to_driver=False,
        ignore_reinit_error=True,
    )


def cluster_cpus() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def this_node_cpus() -> float:
    """CPUs the node running this process offers Ray (0 on a head kept free of work)."""
    here = ray.get_runtime_context().get_node_id()
    node = next((n for n in ray.nodes() if n.get("NodeID") == here), None)
    return float((node or {}).get("Resources", {}).get("CPU", 0.0))
