"""What each step of a job hands to the next, typed. The runner keeps them in the job record
(`jobs.summary`, JSON), so a resumed job gets the results of the steps that are already done."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from ingest.prices.report import PriceFetchReport


class IngestResult(BaseModel):
    format: str
    rows: int = 0  # data rows in the file
    accepted: int = 0  # canonical transactions stored
    rejected: int = 0  # rows refused, with line and reason
    skipped: int = 0  # rows deliberately not stored (fiat-only, internal moves)
    already_present: int = 0  # of the accepted, stored before by another job (a re-upload)
    wallets: list[str] = Field(default_factory=list)  # the wallets the stored rows carry
    # reason (quoted values and numbers folded: reasons.reason_kind) -> rows, for the summary
    rejected_reasons: dict[str, int] = Field(default_factory=dict)
    skipped_reasons: dict[str, int] = Field(default_factory=dict)
    # asset -> (earliest, latest) timestamp (epoch seconds) among the stored rows
    asset_ranges: dict[str, tuple[float, float]] = Field(default_factory=dict)
    # asset -> distinct days (epoch day numbers) with rows that need a fetched price
    price_days: dict[str, list[int]] = Field(default_factory=dict)
    parse_seconds: float = 0.0
    # the user's months (yyyymm) when the store began: where view rows of an earlier job can be
    # (None: not known, e.g. a summary written before this field; any month may hold some)
    stored_months: list[int] | None = None
    # how the file was read where it reads two ways (FileLayout.notes: the order of its dates)
    notes: list[str] = Field(default_factory=list)


class TaxStageResult(BaseModel):
    assets: int = 0
    history_rows: int = 0
    shards: int = 0  # the plan's shards
    shards_computed: int = 0  # of those, recomputed by this job (incremental: the touched)
    view_rows_written: int = 0
    # checkpoints (ingest/tax/checkpoints.py): shards resumed at a tax-year start, the rows the
    # computed shards read from their starts on, and the checkpoints written
    shards_resumed: int = 0
    rows_computed: int = 0
    checkpoints_written: int = 0
    # the most rows one shard's walk held at once (a shard walks period by period: a tax year
    # of its assets and the reach after it; ShardSummary.rows_held): its memory's instrument
    rows_held: int = 0
    seconds: float = 0.0
    steps: dict[str, float] = Field(default_factory=dict)  # per-step timings of the stage
    # what the job recomputed: the assets its upload or corrections touched (all: a settings
    # recompute), per asset the earliest time the job's new corrections change, and the
    # tax-year start it resumed from (None: from the first row)
    recomputed_assets: list[str] = Field(default_factory=list)
    corrections_touched: dict[str, datetime] = Field(default_factory=dict)
    recompute_from: datetime | None = None
    # corrections in effect that changed nothing (correction id -> why): shown, never dropped
    corrections_unapplied: dict[str, str] = Field(default_factory=dict)


class StageResults(BaseModel):
    # a correction job's input, recorded with the job (ingest/pipeline/recompute.py): the
    # corrections it applies (an undo is one); the stage recomputes what they change
    corrections: list[uuid.UUID] | None = None
    ingest: IngestResult | None = None
    prices: PriceFetchReport | None = None
    tax: TaxStageResult | None = None
    # Ray tasks the job submitted, by kind (parse, finalize, store, read, split, tax), over the
    # steps run so far (a resumed job: the steps this run ran; a step run again after an outage
    # counts again, a task Ray retries once)
    tasks: dict[str, int] | None = None
