"""The retry state machine of one window's requests (prices/retry.py): pure, step by step."""

from __future__ import annotations

import random

from ingest.prices.providers.base import OutcomeKind
from ingest.prices.retry import GateReport, WindowRetry, gate_report


def machine(**kw) -> WindowRetry:
    return WindowRetry(
        max_retries=kw.get("max_retries", 2),
        max_throttled=kw.get("throttled", 3),
        backoff_cap=kw.get("cap", 30.0),
        rng=random.Random(1),
    )


def test_an_answer_ends_the_window():
    for kind in (OutcomeKind.OK, OutcomeKind.NO_DATA, OutcomeKind.UNLISTED):
        assert machine().after_outcome(kind, "", None, provider_down=False).action == "done"


def test_server_errors_back_off_then_give_up_after_max_retries():
    m = machine(max_retries=2)
    first = m.after_outcome(OutcomeKind.SERVER_ERROR, "503", None, provider_down=False)
    second = m.after_outcome(OutcomeKind.SERVER_ERROR, "503", None, provider_down=False)
    assert (first.action, second.action) == ("retry", "retry")
    assert 0 < first.delay <= 30 and 0 < second.delay <= 30
    third = m.after_outcome(OutcomeKind.SERVER_ERROR, "503", None, provider_down=False)
    assert third.action == "give_up" and "3 errors" in third.reason  # the first try + 2 retries


def test_retry_after_is_honoured_up_to_the_cap():
    step = machine(cap=10.0).after_outcome(
        OutcomeKind.SERVER_ERROR, "503", 8.0, provider_down=False
    )
    assert 8.0 <= step.delay <= 10.0
    capped = machine(cap=10.0).after_outcome(
        OutcomeKind.SERVER_ERROR, "503", 600.0, provider_down=False
    )
    assert capped.delay == 10.0


def test_throttling_retries_at_once_and_is_bounded():
    m = machine(throttled=2)
    steps = [
        m.after_outcome(OutcomeKind.RATE_LIMITED, "429", 5.0, provider_down=False) for _ in range(3)
    ]
    assert [s.action for s in steps] == ["retry", "retry", "give_up"]
    assert steps[0].delay == 0  # the shared gate already paused the whole pool


def test_client_errors_and_a_down_provider_give_up_at_once():
    assert (
        machine().after_outcome(OutcomeKind.CLIENT_ERROR, "401", None, provider_down=False).action
        == "give_up"
    )
    down = machine().after_outcome(OutcomeKind.SERVER_ERROR, "503", None, provider_down=True)
    assert down.action == "give_up" and "retry budget" in down.reason


def test_what_the_gate_is_told():
    assert gate_report(OutcomeKind.OK) is GateReport.SUCCESS
    assert gate_report(OutcomeKind.BODY_RATE_LIMITED) is GateReport.THROTTLED
    assert gate_report(OutcomeKind.SERVER_ERROR) is GateReport.FAILURE
    assert gate_report(OutcomeKind.CLIENT_ERROR) is None
