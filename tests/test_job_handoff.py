"""A job recorded is a job that runs: the hand-off from the upload to the job supervisor fails
(the supervisor is unreachable, then killed, at submit time) or never happens, and the job still
runs to its end. Real Ray, real Serve, real Cassandra; the failures are real actor states."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest
import ray

from ingest.config import get_settings
from ingest.extract import storage
from ingest.load import jobs
from ingest.pipeline.ray_runtime import NAMESPACE
from ingest.pipeline.runner import SUPERVISOR_NAME, JobSupervisor
from ingest.vocabulary import FINISHED

pytestmark = [pytest.mark.cassandra, pytest.mark.ray]

# Every row has a fiat side: no price provider is needed.
EXPORT = (
    b"Date,Sent Amount,Sent Currency,Received Amount,Received Currency,Fee Amount,"
    b"Fee Currency,Net Worth Amount,Net Worth Currency,Label,Description,TxHash\n"
    b"2024-01-05 10:00:00 UTC,1000,USD,0.025,BTC,,,1000,USD,,buy,\n"
    b"2024-02-10 12:00:00 UTC,0.01,BTC,450,USD,,,450,USD,,sell,\n"
)
DEADLINE_S = 180


def kill_supervisor() -> None:
    """End the running supervisor for good (no restart): the next one is a new actor."""
    try:
        handle = ray.get_actor(SUPERVISOR_NAME, namespace=NAMESPACE)
    except ValueError:
        return
    ray.kill(handle, no_restart=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the name is free once the GCS saw it die
        try:
            ray.get_actor(SUPERVISOR_NAME, namespace=NAMESPACE)
        except ValueError:
            return
        time.sleep(0.1)
    raise AssertionError("the killed supervisor's name was not released")


def wait_status(session, job_id: uuid.UUID, deadline_s: float = DEADLINE_S) -> jobs.JobRecord:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        job = jobs.get_job(session, job_id)
        if job is not None and job.status in FINISHED:
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still {jobs.get_job(session, job_id).status}")


def recorded_job(session, user: str, deadline_s: float = 60) -> uuid.UUID:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        row = session.execute(
            "SELECT job_id FROM jobs_by_user WHERE user_id = %s LIMIT 1", (user,)
        ).one()
        if row is not None:
            return row["job_id"]
        time.sleep(0.05)
    raise AssertionError("the upload recorded no job")


def test_a_job_whose_hand_off_fails_once_still_runs(serve_app, api_client_for, fresh_user, session):
    user = fresh_user("handoff")
    client = api_client_for(user)
    kill_supervisor()
    # The supervisor the upload reaches is a real JobSupervisor that cannot be placed (it asks
    # for a resource no node has): calls to it wait. Killed while the upload hands its job over,
    # the pending call fails: the hand-off failed once.
    unreachable = JobSupervisor.options(
        name=SUPERVISOR_NAME,
        namespace=NAMESPACE,
        lifetime="detached",
        resources={"ledgerflow-test-nowhere": 1},
    ).remote()
    answers: list[httpx.Response] = []
    uploading = threading.Thread(
        target=lambda: answers.append(
            client.post(
                "/v1/uploads",
                params={"format": "koinly"},
                content=EXPORT,
                headers={"content-type": "text/csv"},
                timeout=120,
            )
        )
    )
    uploading.start()
    try:
        job_id = recorded_job(session, user)  # recorded: the hand-off is under way
    finally:
        ray.kill(unreachable, no_restart=True)
    uploading.join(timeout=150)
    assert answers and answers[0].status_code == 202, answers and answers[0].text
    assert uuid.UUID(answers[0].json()["job_id"]) == job_id
    job = wait_status(session, job_id)
    assert (job.status, job.accepted, job.rejected) == ("succeeded", 2, 0), job.error


def test_a_recorded_job_never_handed_over_is_started_by_the_periodic_resume(
    serve_app, session, fresh_user
):
    user = fresh_user("resume")
    kill_supervisor()  # no supervisor runs; nothing restarts one for this job but the resume
    job_id = uuid.uuid1()
    uri = storage.upload_uri(get_settings().uploads_uri, user, str(job_id), "export.csv")
    with storage.open_output(uri) as out:
        out.write(EXPORT)
    jobs.create_job(
        session,
        job_id=job_id,
        user_id=user,
        file_uri=uri,
        file_name="export.csv",
        format="koinly",
        size_bytes=len(EXPORT),
    )
    job = wait_status(session, job_id)
    assert (job.status, job.accepted) == ("succeeded", 2), job.error
