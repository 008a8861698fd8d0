"""Tombstones per live row read from a user's transactions_view, counted by the node itself.

Chosen instrument: query tracing. Every page of a full read of the user's view (every month
partition, `SELECT *`, pages of PAGE_ROWS) runs with tracing on; the node's trace of each page
holds Cassandra's own count, "Read N live rows and M tombstone cells" (ReadCommand, the same
figures its tombstone warnings log and `nodetool tablestats` folds into its per-slice
histograms). Tracing counts exactly this read, whereas tablestats' histograms are five-minute
decaying estimates of every read of the table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

READ_RE = re.compile(r"Read (\d+) live rows and (\d+) tombstone cells")
PAGE_ROWS = 5000


@dataclass
class TombstoneCount:
    live_rows: int
    tombstone_cells: int
    pages: int  # traced pages
    traced_reads: int  # trace events with the node's count (one per page read on a replica)

    @property
    def per_live_row(self) -> float | None:
        return self.tombstone_cells / self.live_rows if self.live_rows else None


def read_counts(descriptions: Iterable[str]) -> tuple[int, int, int]:
    """(live rows, tombstone cells, events counted) summed over a trace's event descriptions."""
    live = tombstones = events = 0
    for text in descriptions:
        match = READ_RE.search(text)
        if match:
            live += int(match.group(1))
            tombstones += int(match.group(2))
            events += 1
    return live, tombstones, events


def traced_view_read(session: Any, user_id: str, months: Iterable[int]) -> TombstoneCount:
    """Read every row of `user_id`'s view in `months`, tracing each page; the node's counts."""
    from cassandra.query import SimpleStatement

    statement = SimpleStatement(
        "SELECT * FROM transactions_view WHERE user_id = %s AND month = %s", fetch_size=PAGE_ROWS
    )
    total = TombstoneCount(0, 0, 0, 0)
    for month in sorted(months):
        state = None
        while True:
            result = session.execute(
                statement, (user_id, month), trace=True, paging_state=state, timeout=120
            )
            trace = result.get_query_trace(max_wait_sec=30)
            live, tombstones, events = read_counts(e.description for e in trace.events)
            if events == 0:
                raise RuntimeError(
                    f"the trace of month {month}'s page has no 'Read N live rows and M tombstone "
                    "cells' event: cannot count tombstones"
                )
            total.live_rows += live
            total.tombstone_cells += tombstones
            total.traced_reads += events
            total.pages += 1
            state = result.paging_state
            if state is None:
                break
    return total


def as_dict(count: TombstoneCount) -> dict:
    return {**asdict(count), "per_live_row": count.per_live_row}
