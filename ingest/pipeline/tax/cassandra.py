"""The tax stage's ports on Cassandra (a job): the user's history chunks, the shared price
cache, tax_checkpoints, and the query API's view tables (ingest/load/views.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa

from ingest.config import Settings
from ingest.corrections import store as corrections_store
from ingest.load import history_chunks, queries, views
from ingest.load.transactions import month_keys, record_user_months, user_months
from ingest.pipeline.context import JobContext, SessionFactory
from ingest.pipeline.placement import stage_options
from ingest.pipeline.tax import checkpoint_store
from ingest.pipeline.tax.corrected import CorrectedHistory
from ingest.pipeline.tax.ports import (
    CheckpointStore,
    CheckpointWrite,
    ShardCommit,
    TaxPorts,
)
from ingest.prices import cache_store
from ingest.prices.planner import CoverageRecord
from ingest.prices.pool import fetch_prices
from ingest.prices.report import PriceFetchReport
from ingest.tax.checkpoints import AssetCheckpoint, CheckpointMeta
from ingest.tax.records import BalanceRecord, DisposalLine, TxMetrics, YearSummary
from ingest.tax.shards import Shard, ShardSummary, UserTotals


@dataclass(frozen=True)
class CassandraHistory:
    sessions: SessionFactory
    user_id: str

    def months(self) -> list[int]:
        return history_chunks.history_months(self.sessions(), self.user_id)

    def read(self, months: Sequence[int]) -> pa.Table:
        return history_chunks.read_history(self.sessions(), self.user_id, months)


@dataclass(frozen=True)
class CassandraPrices:
    settings: Settings
    currency: str  # the job's reporting currency

    def fetch(self, needs: pa.Table) -> PriceFetchReport:
        return fetch_prices(
            needs,
            settings=self.settings,
            currency=self.currency,
            placed=stage_options(self.settings, "prices"),
        )

    def load(self, assets: Sequence[str], start: datetime, end: datetime) -> pa.Table | None:
        return cache_store.load_prices(
            SessionFactory(self.settings)(), assets, start, end, currency=self.currency.lower()
        )

    def coverage(self, assets: Iterable[str]) -> list[CoverageRecord]:
        return cache_store.read_coverage(
            SessionFactory(self.settings)(), assets, currency=self.currency.lower()
        )


@dataclass(frozen=True)
class CassandraCheckpoints:
    sessions: SessionFactory
    user_id: str

    def index(self) -> dict[tuple[str, int], CheckpointMeta]:
        return checkpoint_store.read_index(self.sessions(), self.user_id)

    def get(self, metas: Sequence[CheckpointMeta]) -> dict[str, list[AssetCheckpoint]]:
        return checkpoint_store.read_checkpoints(self.sessions(), self.user_id, metas)

    def put(self, write: CheckpointWrite) -> int:
        return checkpoint_store.write_checkpoints(
            self.sessions(),
            self.user_id,
            write.checkpoints,
            digests=write.digests,
            fingerprint=write.fingerprint,
            usable=write.usable,
            written_us=write.written_us,
        )


def view_base_rows(valued: pa.Table) -> list[dict[str, Any]]:
    """transactions_view rows' own columns (views.VIEW_BASE_COLUMNS), by name."""
    columns = {n: valued.column(n).to_pylist() for n in views.VIEW_BASE_COLUMNS if n != "month"}
    columns["month"] = month_keys(valued.column("timestamp")).tolist()
    names = list(columns)
    return [dict(zip(names, values)) for values in zip(*columns.values())]


@dataclass(frozen=True)
class CassandraViews:
    sessions: SessionFactory
    user_id: str
    checkpoints: CheckpointStore
    # months where an earlier job may have written view rows (None: any); only their stored
    # rows are read before a rewrite, to clear what it empties (views.write_view_rows)
    prior_months: frozenset[int] | None = None
    # the user's (user, month, asset) keys in user_months when the stage began: the view writes
    # record only the others (an upload's store recorded its rows' keys already)
    recorded_months: frozenset[tuple[str, int, str]] = frozenset()

    def write(
        self,
        shard: Shard,
        rows: pa.Table,
        anchored: np.ndarray,
        per_tx: Mapping[str, Mapping[str, TxMetrics]],
    ) -> None:
        session = self.sessions()
        own = rows.filter(pa.array(anchored))
        own_rows = view_base_rows(own)
        views.write_view_rows(
            session,
            [(row, per_tx.get(row["tx_id"], {})) for row in own_rows],
            prior_months=self.prior_months,
        )
        # the query API lists the view by the months (and their assets) user_months names: a row
        # added by hand may be in a month, or of an asset there, no upload stored
        record_user_months(
            session, own, [row["month"] for row in own_rows], recorded=self.recorded_months
        )
        others = rows.filter(pa.array(~anchored))  # rows another shard anchors: elements only
        views.write_view_metrics(
            session,
            [
                (self.user_id, month, ts, tx_id, per_tx[tx_id])
                for month, ts, tx_id in zip(
                    month_keys(others.column("timestamp")).tolist(),
                    others.column("timestamp").to_pylist(),
                    others.column("tx_id").to_pylist(),
                )
                if tx_id in per_tx
            ],
        )

    def write_lines(
        self, shard: Shard, assets: Sequence[str], year: str, lines: Sequence[DisposalLine]
    ) -> None:
        session = self.sessions()
        views.delete_disposal_assets(session, self.user_id, year, sorted(assets))
        views.write_disposals(session, self.user_id, [views.disposal_line_row(x) for x in lines])

    def commit(self, commit: ShardCommit) -> int:
        session, user_id, result = self.sessions(), self.user_id, commit.result
        owned = sorted(r.asset for r in result.assets)
        by_year: dict[str, list[DisposalLine]] = {}
        for r in result.assets:
            for line in r.disposals:
                by_year.setdefault(line.tax_year, []).append(line)
        for year in sorted(set(commit.years) | set(by_year)):  # a year at a time
            self.write_lines(commit.shard, owned, year, by_year.get(year, ()))
        findings = result.findings + [f for r in result.assets for f in r.findings]
        views.replace_findings_of_assets(
            session,
            user_id,
            owned + ([""] if commit.shard.catch_all else []),
            [views.finding_row(f) for f in findings],
        )
        if commit.checkpoints is None:
            return 0
        return self.checkpoints.put(commit.checkpoints)  # last

    def remove(self, rows: pa.Table) -> None:
        views.delete_view_rows(
            self.sessions(),
            self.user_id,
            zip(
                month_keys(rows.column("timestamp")).tolist(),
                rows.column("timestamp").to_pylist(),
                rows.column("tx_id").to_pylist(),
            ),
        )

    def drop_assets(self, assets: set[str], years: Sequence[str]) -> None:
        session = self.sessions()
        for year in years:
            views.delete_disposal_assets(session, self.user_id, year, sorted(assets))
        views.replace_findings_of_assets(session, self.user_id, sorted(assets), [])

    def stored_years(self) -> tuple[str, ...]:
        return tuple(
            sorted({r["year"] for r in queries.summary_rows(self.sessions(), self.user_id)})
        )

    def stored_totals(self, assets: set[str]) -> tuple[ShardSummary, list[BalanceRecord]]:
        session = self.sessions()
        years = {
            (r["year"], r["asset"]): YearSummary(
                r["proceeds"],
                r["cost_basis"],
                r["short_term_gain"],
                r["long_term_gain"],
                r["income"],
                r["gain"],
            )
            for r in queries.summary_rows(session, self.user_id)
            if r["asset"] in assets
        }
        balances = [
            BalanceRecord(r["wallet"], r["asset"], r["quantity"], r["cost_basis"])
            for r in queries.balance_rows(session, self.user_id)
            if r["asset"] in assets
        ]
        return ShardSummary(-1, tuple(sorted(assets)), years, 0, 0, 0, 0), balances

    def write_totals(
        self, totals: UserTotals, balances: Sequence[BalanceRecord], dropped_years: set[str]
    ) -> None:
        session = self.sessions()
        rows = [(year, queries.TOTALS_ASSET, s) for year, s in totals.years.items()]
        rows += [(year, asset, s) for (year, asset), s in totals.years_by_asset.items()]
        views.replace_yearly_summary(session, self.user_id, rows)
        views.replace_balances(session, self.user_id, balances)
        views.delete_disposal_years(session, self.user_id, dropped_years)


def corrected_history(
    sessions: SessionFactory, user_id: str, new: frozenset[uuid.UUID] = frozenset()
) -> CorrectedHistory:
    """The user's stored rows with their corrections applied (read once, here: the tasks get
    them as data). ``new``: the corrections the running job applies."""
    session = sessions()
    corrections = tuple(corrections_store.list_corrections(session, user_id))
    return CorrectedHistory(
        CassandraHistory(sessions, user_id),
        corrections,
        new=new,
        uploads_of=corrections_store.deleted_upload_holders(session, user_id, corrections),
    )


def cassandra_ports(
    ctx: JobContext,
    new: frozenset[uuid.UUID] = frozenset(),
    prior_months: frozenset[int] | None = None,
) -> TaxPorts:
    """A job's tax ports; ``new``: the corrections a correction job applies; ``prior_months`` as
    CassandraViews takes it."""
    user_id = ctx.job.user_id
    checkpoints = CassandraCheckpoints(ctx.sessions, user_id)
    recorded = frozenset(
        (user_id, month, asset)
        for month, assets in user_months(ctx.session(), user_id).items()
        for asset in assets
    )
    return TaxPorts(
        history=corrected_history(ctx.sessions, user_id, new),
        prices=CassandraPrices(ctx.settings, ctx.currency),
        checkpoints=checkpoints,
        views=CassandraViews(ctx.sessions, user_id, checkpoints, prior_months, recorded),
    )
