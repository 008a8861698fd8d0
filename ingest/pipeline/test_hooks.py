"""A test-only hold on a stage's tasks (or on a named point in them), to freeze a job on the real stack (LEDGERFLOW_TEST_HOOKS).

With the setting on, a task of a stage asks the named `ledgerflow-test-hooks` actor (created by
the test, in the pipeline's namespace) whether its user's tasks of that stage are held, and waits
while they are. With it off (the default) nothing is looked up.
"""

from __future__ import annotations

import time

import ray

from ingest.pipeline.context import JobContext
from ingest.pipeline.ray_runtime import NAMESPACE

HOOKS_NAME = "ledgerflow-test-hooks"
POLL_S = 0.5
# A hold point inside the store stage: a store task has written its chunks and not yet
# published them (tests kill its worker there).
STORE_PUBLISH = "store:publish"


@ray.remote(num_cpus=0)
class StageHolds:
    """(user, stage) pairs whose tasks wait, and how many times a task of each arrived held."""

    def __init__(self) -> None:
        self._held: set[tuple[str, str]] = set()
        self._arrivals: dict[tuple[str, str], int] = {}

    def arrive(self, user_id: str, stage: str) -> bool:
        """A task reached the stage (or hold point): True when it must wait."""
        held = (user_id, stage) in self._held
        if held:
            self._arrivals[(user_id, stage)] = self.arrivals(user_id, stage) + 1
        return held

    def arrivals(self, user_id: str, stage: str) -> int:
        return self._arrivals.get((user_id, stage), 0)

    def hold(self, user_id: str, stage: str) -> None:
        self._held.add((user_id, stage))

    def release(self, user_id: str, stage: str) -> None:
        self._held.discard((user_id, stage))

    def held(self, user_id: str, stage: str) -> bool:
        return (user_id, stage) in self._held


def wait_while_held(ctx: JobContext, stage: str) -> None:
    if not ctx.settings.test_hooks:
        return
    try:
        holds = ray.get_actor(HOOKS_NAME, namespace=NAMESPACE)
    except ValueError:  # no test holds anything
        return
    if not ray.get(holds.arrive.remote(ctx.job.user_id, stage)):
        return
    while ray.get(holds.held.remote(ctx.job.user_id, stage)):
        time.sleep(POLL_S)
