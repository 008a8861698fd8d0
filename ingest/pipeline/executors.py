"""Where the pipeline's tasks run: in this process (the `ledgerflow tax` CLI, unit tests) or as
Ray tasks (the service). The stages are written once against `Executor`, so the CLI and a job
compose the same steps and cannot drift.

`submit` returns a handle: the value itself in process, an ObjectRef on Ray. Handles may be
passed as arguments to later submits (Ray resolves them on the worker, so a shuffle's pieces go
from task to task without passing through the driver) and are resolved with `get`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from ingest.observe import metrics
from ingest.pipeline.job_errors import TRANSIENT_ERRORS

# A task's stage, from its name's prefix (tasks are named <kind>:<job>:<part>).
STAGE_OF_TASK = {
    "parse": "parse",
    "finalize": "store",
    "store": "store",
    "read": "tax",
    "split": "tax",
    "tax": "tax",
}
# Map/reduce tasks, whose pieces pass through the object store: a pooled worker runs a bounded
# number of each kind (RayExecutor's tasks_per_worker), so it never holds the pages of a whole
# big file or history.
MAP_TASKS = frozenset({"parse", "finalize", "store", "read", "split"})
# Tasks that mostly wait on Cassandra (store writers, history reads, tax shards writing their own
# rows): they ask for LEDGERFLOW_IO_TASK_CPUS each, so more of them run than there are cores.
IO_TASKS = frozenset({"store", "read", "tax"})


# Ray's own retry of a task whose worker died, and of a transient error inside it; an in-process
# task's retries wait a little longer each time (Ray resubmits at once, but to another worker).
TASK_RETRIES = 4
RETRY_PAUSE_S = 0.5


def kind_of(task_name: str) -> str:
    return task_name.split(":", 1)[0]


def stage_of(task_name: str) -> str:
    return STAGE_OF_TASK.get(kind_of(task_name), "other")


class Executor(Protocol):
    cpus: int
    submitted: Counter[str]  # tasks submitted so far, by kind (parse, store, read, tax, ...)

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        name: str,
        num_returns: int = 1,
        memory: int = 0,  # bytes the task needs at its peak (0: not said)
        fresh_worker: bool = False,  # in a worker of its own, which exits after it
    ) -> Any: ...

    def get(self, handles: Sequence[Any]) -> list[Any]: ...


class InProcessExecutor:
    """Runs each task at once, in order, in this process. The CLI and the unit tests use it, and
    a small job's orchestrator (runner.py `executor_for`): there it is given the cluster's
    `cpus` (so the job is planned, chunked and sharded exactly as on Ray) and `retries`, Ray's
    retry of a task that failed transiently (a dead process is the job task's own retry)."""

    cpus = 1

    def __init__(self, cpus: int | None = None, retries: int = 0) -> None:
        if cpus is not None:
            self.cpus = cpus
        self.retries = retries
        self.submitted: Counter[str] = Counter()

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        name: str,
        num_returns: int = 1,
        memory: int = 0,
        fresh_worker: bool = False,
    ) -> Any:
        self.submitted[kind_of(name)] += 1
        run = metrics.in_flight(stage_of(name))(fn)
        for attempt in range(self.retries + 1):
            try:
                result = run(*args)
                break
            except tuple(TRANSIENT_ERRORS):
                if attempt == self.retries:
                    raise
                time.sleep(RETRY_PAUSE_S * (attempt + 1))
        return list(result) if num_returns > 1 else result

    def get(self, handles: Sequence[Any]) -> list[Any]:
        return list(handles)


# Set in the workers of fresh_worker tasks only (their own Ray worker pool).
FRESH_WORKER_ENV = "LEDGERFLOW_FRESH_WORKER"


class RayExecutor:
    """Runs each task as a Ray task named `name` (so a job is easy to follow in the dashboard):
    one CPU each (`io_task_cpus` for IO_TASKS), retried when its worker dies or on a transient
    error (job_errors.py), never on a deterministic one (a bad file, bad settings)."""

    def __init__(
        self,
        cpus: int,
        placement: Mapping[str, Mapping[str, Any]] | None = None,
        io_task_cpus: float = 1.0,
        tasks_per_worker: int = 0,
    ) -> None:
        self.cpus = cpus
        self.placement = placement or {}  # stage -> Ray options (placement.py)
        self.io_task_cpus = io_task_cpus
        self.tasks_per_worker = tasks_per_worker  # of each MAP_TASKS kind; 0: no limit
        self._remote: dict[tuple[Callable[..., Any], int], Any] = {}  # by (fn, max_calls)
        self._node_memory: int | None = None
        self.submitted: Counter[str] = Counter()

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        name: str,
        num_returns: int = 1,
        memory: int = 0,
        fresh_worker: bool = False,
    ) -> Any:
        import ray

        stage = stage_of(name)
        self.submitted[kind_of(name)] += 1
        # max_calls is a remote function's, not an .options() one: 1 ends a fresh worker after
        # its task, and a pooled worker exits after tasks_per_worker calls of a map task (3M
        # runs' largest workers had run 20 parse tasks then finalize and store, 2,067 MiB, or 12
        # reads and 21 splits, 2,024 MiB, most of it object store pages)
        pooled_calls = self.tasks_per_worker if kind_of(name) in MAP_TASKS else 0
        max_calls = 1 if fresh_worker else pooled_calls
        remote = self._remote.get((fn, max_calls))
        if remote is None:
            # retry_exceptions takes a list of types (Ray's stubs only say bool)
            transient: Any = list(TRANSIENT_ERRORS)
            remote = self._remote[(fn, max_calls)] = ray.remote(
                num_cpus=1,
                max_retries=TASK_RETRIES,
                retry_exceptions=transient,
                max_calls=max_calls,
            )(metrics.in_flight(stage)(fn))
        cpus = self.io_task_cpus if kind_of(name) in IO_TASKS else 1
        options: dict[str, Any] = dict(self.placement.get(stage, {}))
        if memory:
            # Ray schedules by it, so tasks that would not fit together wait instead of being
            # killed by the memory monitor; capped by the smallest node, so it is never
            # infeasible wherever the stage's placement sends it.
            options["memory"] = min(memory, self.smallest_node_memory())
        if fresh_worker:
            # Ray keeps a pool of workers per runtime environment: an env var of its own keeps
            # the task out of the workers other tasks used (the object store pages they touched
            # count in a worker's RSS for its life), max_calls ends the worker after it (its
            # heap, fragmented by the task, is not carried into another). Env vars merge with
            # the job's.
            options["runtime_env"] = {"env_vars": {FRESH_WORKER_ENV: "1"}}
        return remote.options(name=name, num_cpus=cpus, num_returns=num_returns, **options).remote(
            *args
        )

    def smallest_node_memory(self) -> int:
        import ray

        if self._node_memory is None:
            nodes = [n for n in ray.nodes() if n.get("Alive")]
            self._node_memory = int(
                min((n.get("Resources", {}).get("memory", 0) for n in nodes), default=0)
            )
        return self._node_memory

    def get(self, handles: Sequence[Any]) -> list[Any]:
        import ray

        return list(ray.get(list(handles)))
