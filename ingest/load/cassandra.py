"""One Cassandra Session per process, prepared statements, bounded concurrent writes with retry.

The python driver is CPU-bound under the GIL and a Session must not cross a fork, so every process
(driver, Ray worker, Serve replica) opens its own through `get_session(settings)`, keyed by pid.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from cassandra import ConsistencyLevel, OperationTimedOut
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    NoHostAvailable,
    Session,
)
from cassandra.concurrent import execute_concurrent
from cassandra.policies import (
    DCAwareRoundRobinPolicy,
    ExponentialReconnectionPolicy,
    TokenAwarePolicy,
)
from cassandra.query import (
    UNSET_VALUE,
    BatchStatement,
    BatchType,
    PreparedStatement,
    dict_factory,
)

from ingest.config import Settings

log = logging.getLogger(__name__)

_lock = threading.Lock()
_sessions: dict[tuple[int, str], Session] = {}
_prepared: dict[tuple[int, str, str], PreparedStatement] = {}
_session_settings: dict[int, Settings] = {}  # id(session) -> the settings it was opened with
DEFAULT_WRITE_CONCURRENCY = 64
# How long transient failures are retried when a session's settings do not say
# (LEDGERFLOW_CASSANDRA_RETRY_BUDGET): long enough for a node restart (~30 s here).
RETRY_BUDGET_S = 180.0
# Per-attempt timeout of a request (the execution profile's).
REQUEST_TIMEOUT_S = 30.0
# When set (an HTTP request being answered): the monotonic time by which every Cassandra call of
# this context must be done, retries included. Threads started with the context (FastAPI's
# thread pool) see it too.
_deadline: ContextVar[float | None] = ContextVar("ledgerflow_cassandra_deadline", default=None)

# Errors worth retrying, by class name along the exception's MRO: the node restarting or
# unreachable, timeouts, unavailability, overload. A server's answer that the request itself is
# wrong (InvalidRequest, ServerError from a forged paging state, ProtocolException, a replica's
# ReadFailure/WriteFailure) is the same on every try: it is raised at once.
RETRYABLE = (
    "OperationTimedOut",
    "Timeout",  # WriteTimeout, ReadTimeout (and their *ErrorMessage forms)
    "WriteTimeoutErrorMessage",
    "ReadTimeoutErrorMessage",
    "Unavailable",
    "UnavailableErrorMessage",
    "OverloadedErrorMessage",
    "IsBootstrappingErrorMessage",
    "ConnectionException",  # ConnectionShutdown, a socket closed mid-request
    "ConnectionBusy",
)


def is_retryable(exc: BaseException) -> bool:
    """Whether another try may succeed. NoHostAvailable wraps each tried host's error: it is
    transient when no host could be tried (all down) or one of them failed transiently, not when
    every host answered that the request is wrong."""
    if isinstance(exc, NoHostAvailable):
        errors = [e for e in (exc.errors or {}).values() if isinstance(e, BaseException)]
        return not errors or any(is_retryable(e) for e in errors)
    # OSError: the driver reports a refused connection as a plain one ("Tried connecting to
    # [('127.0.0.1', 9042)]. Last error: Connection refused"), e.g. while a node restarts.
    return isinstance(exc, OSError) or any(k.__name__ in RETRYABLE for k in type(exc).__mro__)


def make_cluster(settings: Settings) -> Cluster:
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
        consistency_level=getattr(ConsistencyLevel, settings.consistency),
        request_timeout=30.0,
        row_factory=dict_factory,
    )
    auth = (
        PlainTextAuthProvider(settings.cassandra_username, settings.cassandra_password)
        if settings.cassandra_username
        else None
    )
    return Cluster(
        contact_points=settings.contact_points,
        port=settings.cassandra_port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        auth_provider=auth,
        protocol_version=5,
        connect_timeout=10,
        idle_heartbeat_interval=10,
        # Reconnect within seconds after a node restart (the default backs off to 10 min).
        reconnection_policy=ExponentialReconnectionPolicy(0.5, 4.0),
    )


def get_session(settings: Settings, keyspace: str | None = None) -> Session:
    """This process's session, connected to `keyspace` (default: the configured one)."""
    keyspace = keyspace or settings.keyspace
    key = (os.getpid(), keyspace)
    with _lock:
        session = _sessions.get(key)
        if session is None or session.is_shutdown:
            session = connect_with_retry(settings)
            if keyspace:
                session.set_keyspace(keyspace)
            _sessions[key] = session
            _session_settings[id(session)] = settings
        return session


def write_concurrency(session: Session) -> int:
    """In-flight writes per process: LEDGERFLOW_WRITE_CONCURRENCY of the settings the session was
    opened with."""
    settings = _session_settings.get(id(session))
    return settings.write_concurrency if settings else DEFAULT_WRITE_CONCURRENCY


@contextmanager
def deadline_in(seconds: float) -> Iterator[None]:
    """Every Cassandra call made in this context ends within `seconds` from now, retries included
    (a request handler's deadline: no request holds a worker for the whole retry budget)."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def restart_deadline(seconds: float) -> None:
    """Inside `deadline_in`: the deadline is `seconds` from now (an upload's, once its last byte
    arrived: the body's transfer time is the client's; the context manager restores the outer
    value)."""
    _deadline.set(time.monotonic() + seconds)


def time_left() -> float | None:
    """Seconds until the context's deadline (negative: passed), None when there is none."""
    at = _deadline.get()
    return None if at is None else at - time.monotonic()


def _within_deadline(budget_s: float) -> float:
    left = time_left()
    if left is None:
        return budget_s
    if left <= 0:
        raise OperationTimedOut("the request's deadline passed before the query was sent")
    return min(budget_s, left)


def retry_budget(session: Session, budget_s: float | None = None) -> float:
    """Seconds transient failures are retried: the call's own budget, else
    LEDGERFLOW_CASSANDRA_RETRY_BUDGET of the session's settings; never past the context's
    deadline."""
    if budget_s is None:
        settings = _session_settings.get(id(session))
        budget_s = settings.cassandra_retry_budget if settings else RETRY_BUDGET_S
    return _within_deadline(budget_s)


def connect_with_retry(settings: Settings, attempts: int = 10) -> Session:
    delay = 0.5
    for attempt in range(1, attempts + 1):
        try:
            return make_cluster(settings).connect()
        except Exception as exc:  # NoHostAvailable while the node (re)starts
            if attempt == attempts:
                raise
            log.warning("Cassandra not reachable (%s), retry %d/%d", exc, attempt, attempts)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
    raise AssertionError("unreachable")


def prepared(session: Session, cql: str) -> PreparedStatement:
    """Prepare once per process and keyspace; every statement the project runs goes through here."""
    key = (os.getpid(), session.keyspace or "", cql)
    stmt = _prepared.get(key)
    if stmt is None:
        stmt = session.prepare(cql)
        _prepared[key] = stmt
    return stmt


def execute(
    session: Session,
    cql: str,
    params: Sequence[Any] = (),
    *,
    paging_state: bytes | None = None,
    fetch_size: int | None = None,
    budget_s: float | None = None,
    consistency: str | None = None,
):
    """Execute a prepared statement, retrying transient failures with jittered backoff for up to
    `budget_s` seconds (0: fail fast, e.g. for a health check). `consistency` overrides the
    configured level for this statement (e.g. ONE to note an outage while quorum is lost)."""
    stmt = prepared(session, cql)
    bound = stmt.bind(params)
    if fetch_size:
        bound.fetch_size = fetch_size
    if consistency:
        bound.consistency_level = getattr(ConsistencyLevel, consistency)
    budget = retry_budget(session, budget_s)

    def attempt() -> Any:
        return session.execute(bound, paging_state=paging_state, timeout=request_timeout())

    return with_retry(attempt, budget_s=budget)


def request_timeout() -> float:
    """One request's timeout: REQUEST_TIMEOUT_S, never past the context's deadline."""
    left = time_left()
    return REQUEST_TIMEOUT_S if left is None else max(0.1, min(REQUEST_TIMEOUT_S, left))


def execute_each(
    session: Session,
    cql: str,
    params: Sequence[Sequence[Any]],
    *,
    fetch_size: int | None = None,
    budget_s: float | None = None,
) -> list[Any]:
    """The first page of one prepared statement per parameter row, all sent at once (a few
    reads: the caller bounds them), results in order. A request that fails transiently is sent
    again alone, as `execute` retries it."""
    stmt = prepared(session, cql)
    futures = []
    for values in params:
        bound = stmt.bind(values)
        if fetch_size:
            bound.fetch_size = fetch_size
        futures.append(session.execute_async(bound, timeout=request_timeout()))
    results = []
    for values, future in zip(params, futures):
        try:
            results.append(future.result())
        except Exception as exc:
            if not is_retryable(exc):
                raise
            results.append(execute(session, cql, values, fetch_size=fetch_size, budget_s=budget_s))
    return results


def backoff(attempt: int, base: float = 0.2, cap: float = 5.0) -> float:
    return min(cap, base * 2**attempt) * (0.5 + random.random())


def with_retry(fn, *, budget_s: float | None = None):
    """Call fn until it succeeds, retrying retryable errors until `budget_s` has passed (never
    past the context's deadline)."""
    budget = _within_deadline(RETRY_BUDGET_S if budget_s is None else budget_s)
    deadline = time.monotonic() + budget
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_retryable(exc) or time.monotonic() > deadline:
                raise
            sleep = min(backoff(attempt), max(0.0, deadline - time.monotonic()))
            log.warning("retryable Cassandra error %r; retry %d in %.1fs", exc, attempt + 1, sleep)
            time.sleep(sleep)
            attempt += 1


def concurrent_round(
    session: Session, statements: Sequence[tuple[Any, Sequence[Any]]], concurrency: int
) -> list[tuple[bool, Any]]:
    """(ok, result or error) per statement, `concurrency` in flight. When every request fails at
    once (no host up), the driver's executor recurses until RecursionError and then fails sorting
    its results (TypeError '<' between RecursionError and NoHostAvailable): seen when the local
    node died of heap exhaustion mid-job. Then every statement of the round counts as failed
    with NoHostAvailable, which the callers retry and the job's outage handling waits out."""
    try:
        return list(
            execute_concurrent(
                session, statements, concurrency=concurrency, raise_on_first_error=False
            )
        )
    except (RecursionError, TypeError) as exc:
        if not isinstance(exc, RecursionError) and "NoHostAvailable" not in str(exc):
            raise
        lost = NoHostAvailable(f"the driver's concurrent executor broke: {exc!r}", {})
        return [(False, lost)] * len(statements)


def execute_many(
    session: Session,
    cql: str,
    rows: Iterable[Sequence[Any]],
    *,
    concurrency: int | None = None,
    budget_s: float | None = None,
) -> int:
    """Run one prepared statement over many parameter rows, `concurrency` in flight; rows that fail
    transiently are retried (writes here are idempotent upserts). Returns rows written."""
    stmt = prepared(session, cql)
    concurrency = concurrency or write_concurrency(session)
    pending = list(rows)
    total = len(pending)
    deadline = time.monotonic() + retry_budget(session, budget_s)
    attempt = 0
    while pending:
        results = concurrent_round(session, [(stmt, p) for p in pending], concurrency)
        failed = []
        for params, (ok, result) in zip(pending, results):
            if not ok:
                if not is_retryable(result) or time.monotonic() > deadline:
                    raise result
                failed.append(params)
        if failed:
            sleep = backoff(attempt)
            log.warning(
                "%d writes failed transiently; retry %d in %.1fs", len(failed), attempt + 1, sleep
            )
            time.sleep(sleep)
            attempt += 1
        pending = failed
    return total


# Bytes of bound values per UNLOGGED single-partition batch. Cassandra rejects a batch above
# batch_size_fail_threshold (default 50 KiB; 64 KiB on the local node) and warns above
# batch_size_warn_threshold (default 5 KiB; 16 KiB locally). 16 KiB is ~100 raw rows (the size
# at which the driver's cost per row flattens out, benchmarks/write_path.py), 3x under the
# default failure threshold, and inside the local node's warning threshold.
BATCH_BYTES = 16 * 1024


def execute_batches(
    session: Session,
    cql: str,
    rows_by_partition: dict[Any, list[Sequence[Any]]],
    *,
    max_rows: int | None = None,
    max_bytes: int = BATCH_BYTES,
    concurrency: int | None = None,
    budget_s: float | None = None,
) -> int:
    """Write rows as UNLOGGED batches whose rows share one partition (the only efficient kind),
    each holding at most `max_bytes` of bound values (a single larger row goes alone) and at most
    `max_rows` rows; `concurrency` batches in flight (the driver keeps that many pending).
    Returns rows written."""
    stmt = prepared(session, cql)
    batches: list[BatchStatement] = []
    total = 0
    for part_rows in rows_by_partition.values():
        batch, size, count = BatchStatement(batch_type=BatchType.UNLOGGED), 0, 0
        for params in part_rows:
            bound = stmt.bind(params)
            # UNSET_VALUE (a column left as it is) is no bytes
            row_bytes = sum(len(v) for v in bound.values if v and v is not UNSET_VALUE)
            if count and (size + row_bytes > max_bytes or (max_rows and count >= max_rows)):
                batches.append(batch)
                batch, size, count = BatchStatement(batch_type=BatchType.UNLOGGED), 0, 0
            batch.add(bound)
            size += row_bytes
            count += 1
        if count:
            batches.append(batch)
        total += len(part_rows)
    pending = batches
    concurrency = concurrency or write_concurrency(session)
    deadline = time.monotonic() + retry_budget(session, budget_s)
    attempt = 0
    while pending:
        results = concurrent_round(session, [(b, ()) for b in pending], concurrency)
        failed = []
        for batch, (ok, result) in zip(pending, results):
            if not ok:
                if not is_retryable(result) or time.monotonic() > deadline:
                    raise result
                failed.append(batch)
        if failed:
            sleep = backoff(attempt)
            log.warning(
                "%d batches failed transiently; retry %d in %.1fs", len(failed), attempt + 1, sleep
            )
            time.sleep(sleep)
            attempt += 1
        pending = failed
    return total


def close_all() -> None:
    with _lock:
        for session in _sessions.values():
            try:
                session.cluster.shutdown()
            except Exception:  # already down
                pass
        _sessions.clear()
        _prepared.clear()
