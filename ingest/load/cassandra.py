"""One Cassandra Session per process, prepared statements, bounded concurrent writes with retry.

The python driver is CPU-bound under the GIL and a Session must not cross a fork, so every process
(driver, Ray worker, Serve replica) opens its own through `get_session()`, keyed by pid.
"""
from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.policies import (DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy,
                                TokenAwarePolicy)
from cassandra.query import BatchStatement, BatchType, PreparedStatement, dict_factory

from ingest.config import Settings, get_settings

log = logging.getLogger(__name__)

_lock = threading.Lock()
_sessions: dict[tuple[int, str], Session] = {}
_prepared: dict[tuple[int, str, str], PreparedStatement] = {}

# Errors worth retrying: the node restarting, timeouts, overload.
RETRYABLE = ("NoHostAvailable", "OperationTimedOut", "WriteTimeout", "ReadTimeout", "Unavailable",
             "OverloadedErrorMessage", "ConnectionShutdown", "ConnectionException", "WriteFailure",
             "ReadFailure", "CoordinationFailure", "ServerError")


def is_retryable(exc: BaseException) -> bool:
    return type(exc).__name__ in RETRYABLE or any(n in repr(exc) for n in RETRYABLE)


def make_cluster(settings: Settings) -> Cluster:
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
        consistency_level=getattr(ConsistencyLevel, settings.consistency),
        request_timeout=30.0,
        row_factory=dict_factory,
    )
    auth = (PlainTextAuthProvider(settings.cassandra_username, settings.cassandra_password)
            if settings.cassandra_username else None)
    return Cluster(contact_points=settings.contact_points, port=settings.cassandra_port,
                   execution_profiles={EXEC_PROFILE_DEFAULT: profile}, auth_provider=auth,
                   protocol_version=5, connect_timeout=10, idle_heartbeat_interval=10,
                   # Reconnect within seconds after a node restart (the default backs off to 10 min).
                   reconnection_policy=ExponentialReconnectionPolicy(0.5, 4.0))


def get_session(keyspace: str | None = None, settings: Settings | None = None) -> Session:
    """This process's session, connected to `keyspace` (default: the configured one)."""
    settings = settings or get_settings()
    keyspace = keyspace or settings.keyspace
    key = (os.getpid(), keyspace)
    with _lock:
        session = _sessions.get(key)
        if session is None or session.is_shutdown:
            session = connect_with_retry(settings)
            if keyspace:
                session.set_keyspace(keyspace)
            _sessions[key] = session
        return session


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


def _budget(budget_s: float | None) -> float:
    """How long transient failures are retried: the call's own budget, else
    LEDGERFLOW_CASSANDRA_RETRY_BUDGET (long enough for a node restart, ~30 s here)."""
    return get_settings().cassandra_retry_budget if budget_s is None else budget_s


def execute(session: Session, cql: str, params: Sequence[Any] = (), *,
            paging_state: bytes | None = None, fetch_size: int | None = None,
            budget_s: float | None = None, consistency: str | None = None):
    """Execute a prepared statement, retrying transient failures with jittered backoff for up to
    `budget_s` seconds (0: fail fast, e.g. for a health check). `consistency` overrides the
    configured level for this statement (e.g. ONE to note an outage while quorum is lost)."""
    stmt = prepared(session, cql)
    bound = stmt.bind(params)
    if fetch_size:
        bound.fetch_size = fetch_size
    if consistency:
        bound.consistency_level = getattr(ConsistencyLevel, consistency)
    return with_retry(lambda: session.execute(bound, paging_state=paging_state), budget_s=budget_s)


def backoff(attempt: int, base: float = 0.2, cap: float = 5.0) -> float:
    return min(cap, base * 2 ** attempt) * (0.5 + random.random())


def with_retry(fn, *, budget_s: float | None = None):
    """Call fn until it succeeds, retrying retryable errors until `budget_s` has passed."""
    deadline = time.monotonic() + _budget(budget_s)
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_retryable(exc) or time.monotonic() > deadline:
                raise
            sleep = backoff(attempt)
            log.warning("retryable Cassandra error %r; retry %d in %.1fs", exc, attempt + 1, sleep)
            time.sleep(sleep)
            attempt += 1


def execute_many(session: Session, cql: str, rows: Iterable[Sequence[Any]], *,
                 concurrency: int | None = None, budget_s: float | None = None) -> int:
    """Run one prepared statement over many parameter rows, `concurrency` in flight; rows that fail
    transiently are retried (writes here are idempotent upserts). Returns rows written."""
    stmt = prepared(session, cql)
    concurrency = concurrency or get_settings().write_concurrency
    pending = list(rows)
    total = len(pending)
    deadline = time.monotonic() + _budget(budget_s)
    attempt = 0
    while pending:
        results = execute_concurrent_with_args(session, stmt, pending, concurrency=concurrency,
                                               raise_on_first_error=False)
        failed = []
        for params, (ok, result) in zip(pending, results):
            if not ok:
                if not is_retryable(result) or time.monotonic() > deadline:
                    raise result
                failed.append(params)
        if failed:
            sleep = backoff(attempt)
            log.warning("%d writes failed transiently; retry %d in %.1fs", len(failed), attempt + 1,
                        sleep)
            time.sleep(sleep)
            attempt += 1
        pending = failed
    return total


def execute_batches(session: Session, cql: str, rows_by_partition: dict[Any, list[Sequence[Any]]],
                    *, max_rows: int = 20, concurrency: int | None = None,
                    budget_s: float | None = None) -> int:
    """Write rows as UNLOGGED batches whose rows share one partition (the only efficient kind),
    at most `max_rows` per batch to stay under the server's batch size warning."""
    stmt = prepared(session, cql)
    batches: list[BatchStatement] = []
    total = 0
    for part_rows in rows_by_partition.values():
        for i in range(0, len(part_rows), max_rows):
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            for params in part_rows[i:i + max_rows]:
                batch.add(stmt, params)
            batches.append(batch)
            total += len(part_rows[i:i + max_rows])
    pending = batches
    concurrency = concurrency or get_settings().write_concurrency
    deadline = time.monotonic() + _budget(budget_s)
    attempt = 0
    while pending:
        failed = []
        # Bounded in-flight: submit in windows of `concurrency`.
        for i in range(0, len(pending), concurrency):
            window = [(b, session.execute_async(b)) for b in pending[i:i + concurrency]]
            for batch, fut in window:
                try:
                    fut.result()
                except Exception as exc:
                    if not is_retryable(exc) or time.monotonic() > deadline:
                        raise
                    failed.append(batch)
        if failed:
            sleep = backoff(attempt)
            log.warning("%d batches failed transiently; retry %d in %.1fs", len(failed),
                        attempt + 1, sleep)
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
