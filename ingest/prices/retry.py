"""The retry policy of one window's requests, as a pure state machine (like ratelimit.py: no
clock, no I/O, so it is tested step by step). The PriceFetcher actor asks the shared gate for a
token, sends, tells the gate what happened and then asks this machine what to do next.

- an answer (points, "no data", "unlisted") ends the window;
- a 429 (or a rate-limit error in a 200 body) is retried at once: the gate already paused the
  whole pool, so the next token waits that out; at most `max_throttled` per window;
- a 5xx or network error is retried after a jittered backoff (Retry-After honoured up to a cap),
  at most `max_retries` times;
- another 4xx (bad key, unknown route) gives up at once: retrying cannot help;
- the gate saying the provider is down (failures outlasted the job's budget) gives up.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

from ingest.prices.providers.base import FINAL_KINDS, THROTTLED_KINDS, OutcomeKind
from ingest.prices.ratelimit import backoff_delay


class GateReport(str, Enum):
    """What the shared gate is told of an outcome."""

    SUCCESS = "success"
    THROTTLED = "throttled"
    FAILURE = "failure"


def gate_report(kind: OutcomeKind) -> GateReport | None:
    """None: the gate is not told (a client error says nothing about the provider's health)."""
    if kind in FINAL_KINDS:
        return GateReport.SUCCESS
    if kind in THROTTLED_KINDS:
        return GateReport.THROTTLED
    if kind == OutcomeKind.CLIENT_ERROR:
        return None
    return GateReport.FAILURE


@dataclass(frozen=True)
class Step:
    """done: the outcome is final, store it; retry: wait `delay` s, then send again; give_up:
    the window is unavailable for this job, because of `reason`."""

    action: str  # done | retry | give_up
    delay: float = 0.0
    reason: str = ""


DONE = Step("done")


@dataclass
class WindowRetry:
    max_retries: int  # 5xx / network errors per window
    max_throttled: int  # 429s per window
    backoff_cap: float  # longest backoff (and Retry-After honoured), seconds
    rng: random.Random | None = None
    failures: int = 0
    throttled: int = 0

    def after_outcome(
        self, kind: OutcomeKind, detail: str, retry_after: float | None, provider_down: bool
    ) -> Step:
        """What to do after one request whose outcome was `kind`; `provider_down` is what the
        gate answered when told of it."""
        if kind in FINAL_KINDS:
            return DONE
        if kind == OutcomeKind.CLIENT_ERROR:
            return Step("give_up", reason=f"client error: {detail}")
        if kind in THROTTLED_KINDS:
            self.throttled += 1
            if provider_down:
                return Step("give_up", reason=f"rate limited past the retry budget ({detail})")
            if self.throttled > self.max_throttled:
                return self.exhausted()
            return Step("retry")
        self.failures += 1
        if provider_down:
            return Step("give_up", reason=f"provider failing past the retry budget ({detail})")
        if self.failures > self.max_retries:
            return self.exhausted()
        return Step(
            "retry",
            delay=backoff_delay(
                self.failures, cap=self.backoff_cap, retry_after=retry_after, rng=self.rng
            ),
        )

    def exhausted(self) -> Step:
        return Step(
            "give_up",
            reason=f"retries exhausted ({self.failures} errors, {self.throttled} throttled)",
        )


PROVIDER_DOWN = "provider down (retry budget exhausted)"
