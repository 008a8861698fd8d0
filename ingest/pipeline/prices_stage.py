"""Prices stage of an upload: fetch (or find cached) every price window the job's rows need.

Needs come from the store stage as distinct (asset, day) pairs, which is all the planner needs to
pick 90-day windows; the tax stage later asks again for the user's whole history, which retries
windows that were unavailable before and costs nothing for cached ones.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa

from ingest.load import jobs
from ingest.load.cassandra import get_session
from ingest.normalize.canonical import TIMESTAMP
from ingest.prices.fetcher import fetch_prices


def needs_from_days(price_days: dict[str, list[int]]) -> pa.Table:
    assets: list[str] = []
    stamps: list[datetime] = []
    for asset, days in sorted(price_days.items()):
        for day in days:
            assets.append(asset)
            stamps.append(datetime.fromtimestamp(day * 86400, tz=timezone.utc))
    return pa.table({"asset": pa.array(assets, pa.string()), "ts": pa.array(stamps, TIMESTAMP)})


def run_prices(job: jobs.JobRecord) -> None:
    session = get_session()
    needs = needs_from_days(job.summary.get("price_days", {}))
    report = fetch_prices(needs)
    total = report.windows_needed
    jobs.set_progress(session, job.job_id, "prices", 0, total - len(report.windows_unavailable), total)
    summary = dict(job.summary)
    summary["prices"] = report.model_dump(mode="json", exclude={"fetched_windows"})
    jobs.save_summary(session, job.job_id, summary)
