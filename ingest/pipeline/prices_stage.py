"""Prices stage of an upload: fetch (or find cached) every price window the job's rows need.

It runs alongside store (ingest_stage.py starts it once the partitions are finalized). Needs are
the finalized rows' distinct (asset, day) pairs, which is all the planner needs to pick its
windows; the tax stage later asks again for the user's whole history, which retries windows that
were unavailable before and costs nothing for cached ones.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa

from ingest.normalize.canonical import TIMESTAMP
from ingest.pipeline.context import JobContext
from ingest.pipeline.placement import stage_options
from ingest.prices.pool import fetch_prices
from ingest.prices.report import PriceFetchReport
from ingest.vocabulary import Stage


def needs_from_days(price_days: dict[str, list[int]]) -> pa.Table:
    assets: list[str] = []
    stamps: list[datetime] = []
    for asset, days in sorted(price_days.items()):
        for day in days:
            assets.append(asset)
            stamps.append(datetime.fromtimestamp(day * 86400, tz=timezone.utc))
    return pa.table({"asset": pa.array(assets, pa.string()), "ts": pa.array(stamps, TIMESTAMP)})


def run_prices(ctx: JobContext, days: dict[str, list[int]]) -> PriceFetchReport:
    report = fetch_prices(
        needs_from_days(days),
        settings=ctx.settings,
        currency=ctx.currency,
        placed=stage_options(ctx.settings, "prices"),
    )
    total = report.windows_needed
    ctx.progress.report(Stage.PRICES, 0, total - len(report.windows_unavailable), total)
    return report.model_copy(update={"fetched_windows": []})
