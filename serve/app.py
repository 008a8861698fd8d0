"""The two Serve deployments (one FastAPI app each), their application builders, and
`run_local`, which starts both on the configured or local Ray.

Deployment options (replicas, autoscaling, CPUs) live in serve_config.yaml only; the builders
apply them, so `serve run serve/serve_config.yaml` and `run_local` deploy the same thing.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from ray import serve as ray_serve
from ray.serve import Application
from ray.serve.deployment import Deployment

from ingest.config import get_settings
from serve import query_api, upload_api
from serve.pipeline_link import keep_resuming

log = logging.getLogger("ray.serve")  # lands in the replica's log file

CONFIG_PATH = Path(__file__).with_name("serve_config.yaml")
UPLOAD_APP, QUERY_APP = "upload", "query"


@ray_serve.deployment(name="UploadAPI")
@ray_serve.ingress(upload_api.app)
class UploadAPI:
    def __init__(self) -> None:
        # Resume the jobs a previous run left unfinished, at start and then periodically (a job
        # whose hand-off failed still runs). Every replica does it (a restart, a scale-up); the
        # supervisor ignores jobs it already runs. In a thread, so the replica is ready at once
        # and a pipeline problem does not fail the replica.
        threading.Thread(
            target=keep_resuming, args=(threading.Event(),), name="resume-jobs", daemon=True
        ).start()


@ray_serve.deployment(name="QueryAPI")
@ray_serve.ingress(query_api.app)
class QueryAPI:
    pass


# mypy keeps a decorated class's own type (it ignores class decorators' return types), while
# @ray_serve.deployment returns a Deployment
DEPLOYMENTS: dict[str, Deployment] = {
    UPLOAD_APP: UploadAPI,  # type: ignore[dict-item]
    QUERY_APP: QueryAPI,  # type: ignore[dict-item]
}


@lru_cache(maxsize=1)
def serve_config() -> dict[str, Any]:
    return yaml.safe_load(CONFIG_PATH.read_text())


def app_config(app_name: str) -> dict[str, Any]:
    return next(a for a in serve_config()["applications"] if a["name"] == app_name)


def bound_app(app_name: str, env_vars: dict[str, str] | None = None) -> Application:
    """The application with its deployment's options from serve_config.yaml; `env_vars` are set
    in the replicas' environment (which is where get_settings() reads configuration)."""
    options = {k: v for k, v in app_config(app_name)["deployments"][0].items() if k != "name"}
    if env_vars:
        actor_options = dict(options.get("ray_actor_options") or {})
        runtime_env = dict(actor_options.get("runtime_env") or {})
        runtime_env["env_vars"] = {**runtime_env.get("env_vars", {}), **env_vars}
        actor_options["runtime_env"] = runtime_env
        options["ray_actor_options"] = actor_options
    return DEPLOYMENTS[app_name].options(**options).bind()


def build_upload_app(args: dict[str, str] | None = None) -> Application:
    """Serve application builder (import_path serve.app:build_upload_app)."""
    return bound_app(UPLOAD_APP)


def build_query_app(args: dict[str, str] | None = None) -> Application:
    """Serve application builder (import_path serve.app:build_query_app)."""
    return bound_app(QUERY_APP)


def run_local(
    host: str, port: int, blocking: bool = False, env_vars: dict[str, str] | None = None
) -> None:
    """Start both applications on the configured Ray cluster (or a local one), HTTP on
    host:port. Replicas get this process's LEDGERFLOW_* settings, then `env_vars`. With
    blocking=True, serve until interrupted, then shut Serve down."""
    from ingest.pipeline.ray_runtime import ensure_ray

    ensure_ray(get_settings().ray_address)
    settings_env = {k: v for k, v in os.environ.items() if k.startswith("LEDGERFLOW_")}
    replica_env = {**settings_env, **(env_vars or {})}
    ray_serve.start(
        http_options={"host": host, "port": port},
        proxy_location=serve_config().get("proxy_location", "HeadOnly"),
    )
    for app_name in (UPLOAD_APP, QUERY_APP):
        ray_serve.run(
            bound_app(app_name, replica_env),
            name=app_name,
            route_prefix=app_config(app_name)["route_prefix"],
            blocking=False,
        )
    log.info("ledgerflow API on http://%s:%d (docs /docs, uploads /v1/uploads/docs)", host, port)
    if not blocking:
        return
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        ray_serve.shutdown()
