"""Which Cassandra errors are retried, and for how long: a pure check of the classification at
the boundary (ingest/load/cassandra.py). No services needed."""

from __future__ import annotations

import time

import pytest
from cassandra import InvalidRequest, OperationTimedOut, ReadTimeout, Unavailable, WriteTimeout
from cassandra.cluster import NoHostAvailable
from cassandra.connection import ConnectionShutdown
from cassandra.protocol import ProtocolException, ServerError

from ingest.load.cassandra import deadline_in, is_retryable, time_left, with_retry


def server_error() -> ServerError:
    # what Cassandra answers to a forged paging state
    return ServerError(0x0000, "java.lang.IllegalArgumentException: bad paging state", {})


@pytest.mark.parametrize(
    "exc",
    [
        OperationTimedOut("no answer"),
        WriteTimeout("Operation timed out - received only 1 responses.", write_type=0),
        ReadTimeout("Operation timed out - received only 1 responses."),
        Unavailable("Cannot achieve consistency level LOCAL_QUORUM"),
        ConnectionShutdown("node restarting"),
        NoHostAvailable("Unable to complete the operation against any hosts", {}),
        NoHostAvailable("...", {"127.0.0.1:9042": ConnectionShutdown("closed")}),
        NoHostAvailable("...", {"a": server_error(), "b": OperationTimedOut("slow")}),
        NoHostAvailable(  # a node restarting
            "...",
            {"127.0.0.1:9042": OSError(None, "Tried connecting to [...]. Connection refused")},
        ),
    ],
)
def test_unavailability_and_timeouts_are_retried(exc):
    assert is_retryable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        server_error(),
        InvalidRequest("bad paging state"),
        ProtocolException(0x000A, "Invalid value for the paging state", {}),
        NoHostAvailable("...", {"127.0.0.1:9042": server_error()}),
        NoHostAvailable("...", {"a": InvalidRequest("x"), "b": server_error()}),
        ValueError("not a Cassandra error"),
    ],
)
def test_an_answer_a_retry_cannot_change_is_not_retried(exc):
    assert not is_retryable(exc)


def test_a_server_error_wrapped_in_no_host_available_fails_at_once():
    calls = []

    def forged_paging_state():
        calls.append(1)
        raise NoHostAvailable("...", {"127.0.0.1:9042": server_error()})

    with pytest.raises(NoHostAvailable):
        with_retry(forged_paging_state, budget_s=60)
    assert calls == [1]


def test_a_context_deadline_bounds_the_retries_of_a_transient_error():
    calls = []

    def down():
        calls.append(1)
        raise OperationTimedOut("no answer")

    with deadline_in(0.5):
        with pytest.raises(OperationTimedOut):
            with_retry(down, budget_s=180)
        left = time_left()
    assert left is not None and left < 0.5
    assert time_left() is None  # the deadline is the context's only


def test_no_call_starts_once_the_deadline_passed():
    calls = []
    with deadline_in(0.0):
        time.sleep(0.01)
        with pytest.raises(OperationTimedOut):
            with_retry(lambda: calls.append(1), budget_s=180)
    assert calls == []
