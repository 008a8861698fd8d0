"""What a job's stages are given instead of reading configuration themselves: the deployment's
settings, the user's tax settings (method, pooling, the one reporting currency), a way to open
this process's Cassandra session, and where to report progress. Built once per job, at the job
task (the entry point); small and picklable, so it travels to the stages' Ray tasks as is.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from cassandra.cluster import Session

from ingest.config import Settings
from ingest.load import jobs
from ingest.load.cassandra import get_session
from ingest.load.users import UserSettings, deployment_defaults, get_user_settings
from ingest.vocabulary import Stage


@dataclass(frozen=True)
class SessionFactory:
    """Opens (or reuses) the calling process's session: a Session never crosses processes."""

    settings: Settings

    def __call__(self) -> Session:
        return get_session(self.settings)


class ProgressReporter(Protocol):
    """Per-stage progress in parts (dlt's Collector is the model). Each part's figures are
    absolute, so a retried task reports the same cells again instead of double counting."""

    def report(self, stage: Stage, part: int, done: int, total: int) -> None: ...

    def reset(self, stage: Stage) -> None: ...


@dataclass(frozen=True)
class JobProgress:
    """Progress rows of one job in Cassandra (`job_progress`), read by GET /v1/jobs/{id}."""

    job_id: uuid.UUID
    sessions: SessionFactory

    def report(self, stage: Stage, part: int, done: int, total: int) -> None:
        jobs.set_progress(self.sessions(), self.job_id, stage, part, done, total)

    def reset(self, stage: Stage) -> None:
        jobs.clear_progress(self.sessions(), self.job_id, stage)


class NoProgress:
    """For runs nobody watches (the CLI, unit tests)."""

    def report(self, stage: Stage, part: int, done: int, total: int) -> None:
        pass

    def reset(self, stage: Stage) -> None:
        pass


@dataclass(frozen=True)
class JobContext:
    job: jobs.JobRecord
    settings: Settings
    user: UserSettings
    sessions: SessionFactory
    progress: ProgressReporter

    @property
    def currency(self) -> str:
        """The job's one reporting currency: prices are fetched, cached, read and valued in it."""
        return self.user.currency

    def session(self) -> Session:
        return self.sessions()


def job_context(job: jobs.JobRecord, settings: Settings) -> JobContext:
    sessions = SessionFactory(settings)
    user = get_user_settings(sessions(), job.user_id, deployment_defaults(settings))
    return JobContext(
        job=job,
        settings=settings,
        user=user,
        sessions=sessions,
        progress=JobProgress(job.job_id, sessions),
    )
