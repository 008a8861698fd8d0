"""What a price fetch answers: one result per (asset, window), and the job's report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel

from ingest.prices.providers.base import OutcomeKind

STATUS_OF_KIND = {
    OutcomeKind.OK: "ok",
    OutcomeKind.NO_DATA: "no_data",
    OutcomeKind.UNLISTED: "unlisted",
}
UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class WindowResult:
    asset: str
    window_start: int
    window_end: int
    status: str  # ok | no_data | unlisted | unavailable
    points: int = 0
    requests: int = 0  # HTTP requests sent for it (retries included)
    provider: str = ""
    detail: str = ""


class UnavailableWindow(BaseModel):
    asset: str
    start: datetime
    end: datetime
    reason: str


class PriceFetchReport(BaseModel):
    requests_sent: int = 0
    windows_needed: int = 0  # distinct (asset, window) pairs the needs fall in
    windows_cached: int = 0  # already covered before this job
    windows_fetched: int = 0  # answered this job (ok, no_data or unlisted)
    windows_no_data: int = 0  # of those fetched, answered "no price here"
    windows_unavailable: list[UnavailableWindow] = []
    assets_unlisted: list[str] = []
    elapsed_s: float = 0.0
    windows_resubmitted: int = 0  # re-run because their fetcher actor died
    # (asset, window start) answered this job: rows in them may have changed value or status.
    fetched_windows: list[tuple[str, datetime]] = []

    @property
    def unavailable_assets(self) -> set[str]:
        """What value_transactions(unavailable_assets=...) wants."""
        return {w.asset for w in self.windows_unavailable}
