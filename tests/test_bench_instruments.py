"""The benchmark's pure instruments: checking a bulk load against its file, reading the node's
tombstone counts from a trace, DSBulk's summary, and the issue-24 targets from measured figures."""

from __future__ import annotations

import csv
from dataclasses import asdict
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from benchmarks import dsbulk, targets
from benchmarks.copy_from import COLUMNS
from benchmarks.loaded_rows import expected_sample, mismatches, verdict
from benchmarks.tombstones import read_counts


def canonical_row(line: int, description: str, **overrides: str) -> dict[str, str]:
    row = {c: "" for c in COLUMNS}
    row.update(
        user_id="copy-3",
        month="202401",
        timestamp=f"2024-01-0{line} 10:00:00+0000",
        tx_id=f"tx{line}",
        wallet="main",
        type="buy",
        sent_asset="USD",
        sent_amount="100.50",
        received_asset="BTC",
        received_amount="0.00250000",
        description=description,
        source="koinly",
        source_file="koinly-3.csv",
        source_line=str(line),
    )
    row.update(overrides)
    return row


def write_canonical(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def as_stored(row: dict[str, str]) -> dict[str, object]:
    """What the node returns for a correctly loaded row (typed values, nulls for empty cells)."""
    out: dict[str, object] = {}
    for column, text in row.items():
        if text == "":
            out[column] = None
        elif column in ("sent_amount", "received_amount", "fee_amount", "fiat_value"):
            out[column] = Decimal(text)
        elif column in ("month", "source_line"):
            out[column] = int(text)
        elif column == "timestamp":  # the driver returns naive UTC datetimes
            out[column] = datetime.strptime(text, "%Y-%m-%d %H:%M:%S+0000")
        else:
            out[column] = text
    return out


@pytest.fixture
def three_rows(tmp_path: Path) -> tuple[Path, list[dict[str, str]]]:
    rows = [
        canonical_row(1, "plain"),
        canonical_row(2, 'Paid "invoice" 42'),
        canonical_row(3, "", received_amount="1"),
    ]
    return write_canonical(tmp_path / "copy-3.csv", rows), rows


def test_the_sample_holds_every_quoted_description_and_every_stride_th_row(three_rows):
    path, _ = three_rows
    expected = expected_sample(path, stride=3)
    assert expected.rows == 3 and expected.months == {202401} and expected.user_id == "copy-3"
    assert sorted(key[3] for key in expected.sample) == ["tx1", "tx2"]
    assert expected.quoted == 1


def test_a_correct_load_has_no_mismatch_and_passes_the_check(three_rows):
    path, rows = three_rows
    expected = expected_sample(path, stride=1)
    loaded = {key: as_stored(row) for key, row in zip(expected.sample, rows)}
    assert mismatches(expected.sample, loaded) == []
    check = verdict(expected, 3, [], "copy_transactions")
    assert (check.loaded_rows, check.sampled_rows, check.sampled_quoted_descriptions) == (3, 3, 1)


def test_a_description_stored_with_its_doubled_quotes_is_a_mismatch(three_rows):
    path, rows = three_rows
    expected = expected_sample(path, stride=1)
    loaded = {key: as_stored(row) for key, row in zip(expected.sample, rows)}
    quoted_key = next(k for k in expected.sample if k[3] == "tx2")
    loaded[quoted_key]["description"] = 'Paid ""invoice"" 42'  # what a backslash escape stores
    problems = mismatches(expected.sample, loaded)
    assert len(problems) == 1 and "tx2" in problems[0] and "description" in problems[0]
    with pytest.raises(ValueError, match="1 sampled cells differ"):
        verdict(expected, 3, problems, "copy_transactions")


def test_a_missing_row_or_a_short_count_fails_the_check(three_rows):
    path, rows = three_rows
    expected = expected_sample(path, stride=1)
    loaded = {key: as_stored(row) for key, row in zip(expected.sample, rows)}
    first = next(iter(expected.sample))
    del loaded[first]
    assert mismatches(expected.sample, loaded) == ["row tx1 (line 1) not loaded"]
    with pytest.raises(ValueError, match="2 rows loaded for 3 in the file"):
        verdict(expected, 2, [], "dsbulk_transactions")


def test_decimals_compare_by_value_and_an_empty_cell_means_null(three_rows):
    path, rows = three_rows
    expected = expected_sample(path, stride=1)
    loaded = {key: as_stored(row) for key, row in zip(expected.sample, rows)}
    key = next(k for k in expected.sample if k[3] == "tx1")
    loaded[key]["sent_amount"] = Decimal("100.5")  # same value, other scale
    loaded[key]["timestamp"] = datetime(2024, 1, 1, 10, tzinfo=timezone.utc)
    assert mismatches(expected.sample, loaded) == []
    loaded[key]["tx_hash"] = "0xabc"  # the file's cell is empty
    assert len(mismatches(expected.sample, loaded)) == 1


def test_trace_events_sum_the_nodes_live_rows_and_tombstone_cells():
    events = [
        "Executing single-partition query on transactions_view",
        "Read 5000 live rows and 16292 tombstone cells",
        "Merged data from memtables and 2 sstables",
        "Read 12 live rows and 0 tombstone cells (see tombstone_warn_threshold)",
    ]
    assert read_counts(events) == (5012, 16292, 2)
    assert read_counts(["Parsing SELECT * FROM t"]) == (0, 0, 0)


def test_dsbulk_summary_gives_rows_failures_and_rate():
    output = (
        "Operation directory: /tmp/x/LOAD_1\n"
        # printed as the load goes (no terminal): not the operation's figures
        " total | failed | rows/s | p50ms | p99ms | p999ms | batches\n"
        " 52,790 |      0 |  9,740 | 19.66 | 159.38 | 417.33 |   31.90\n"
        " total | failed | rows/s | p50ms | p99ms | p999ms | batches\n"
        "600,000 |      0 | 30,512 | 18.45 | 63.96 |  78.64 |   28.82\n"
        "Operation LOAD_1 completed successfully in 19 seconds.\n"
    )
    assert dsbulk.parse_summary(output) == (600000, 0, 30512.0)
    with pytest.raises(ValueError, match="no DSBulk summary"):
        dsbulk.parse_summary("Operation LOAD_1 failed: connection refused")


def test_issue_24_targets_are_evaluated_from_the_measured_figures():
    results = {
        "runs": [{"size": 50000, "e2e_s": 30.0}],
        "copy_from": {"rows_per_s": 15000.0, "seconds": 40.0},
        "dsbulk": {"size": 50000, "rows_per_s": 30000.0, "seconds": 20.0, "check": {}},
        "concurrent_users": {
            "users": 8,
            "rows_each": 50000,
            "rows": 400000,
            "wall_s": 40.0,
            "rows_per_s": 10000.0,
            "single_user_e2e_s": 30.0,
            "slowest_e2e_s": 100.0,
            "slowest_vs_single": 100.0 / 30.0,
        },
        "tombstones": {"user": "u", "live_rows": 1000, "tombstone_cells": 0, "pages": 1},
    }
    results["tombstones"]["per_live_row"] = 0.0
    before_chunks = dict(results, history_read={"user": "u", "rows": 9, "seconds": 1.0})
    got = {t.name: asdict(t) for t in targets.issue24_targets(before_chunks)}
    assert got["reading a whole history: chunks vs rows"]["verdict"] == "NOT MEASURED"
    results["history_read"] = {
        "user": "h",
        "rows": 600000,
        "months": 60,
        "chunks_read": 60,
        "rounds": 3,
        "seconds": 12.0,
        "chunk_seconds": 2.0,
        "speedup": 6.0,
    }
    got = {t.name: asdict(t) for t in targets.issue24_targets(results)}
    assert got["DSBulk vs cqlsh COPY FROM (second load anchor)"]["by_how_much"].startswith("2.00x")
    assert got["largest file end to end vs DSBulk"]["achieved"].endswith("= 1.50x")
    assert got["many users at once: aggregate rows/s vs COPY FROM"]["verdict"] == "MISSED"
    assert got["many users at once: slowest job vs the single-user job"]["verdict"] == "MISSED"
    assert got["tombstones per live view row read (first upload)"]["verdict"] == "MET"
    history = got["reading a whole history: chunks vs rows"]
    assert (history["verdict"], history["achieved"]) == (
        "MET",
        "row read 12.00 s / chunk read 2.00 s = 6.00x",
    )
    assert got["read API p99 vs driver p99, filtered page"]["verdict"] == "NOT MEASURED"


def test_worker_memory_is_judged_on_rss_and_its_heap_only_reported():
    def run(size: int, rss_mib: int, heap_mib: int) -> dict:
        memory = {
            "ray_worker_largest_bytes": rss_mib * 2**20,
            "ray_worker_largest_heap_bytes": heap_mib * 2**20,
            "ray_worker_largest_heap_title": "ray::IDLE > ray::tax:<job>:1",
        }
        return {"size": size, "e2e_s": 1.0, "memory": memory, "stages": {}}

    results = {"runs": [run(50000, 300, 200), run(600000, 600, 250)]}
    got = {t.name: asdict(t) for t in targets._issue7_targets(results)}
    rss = got["peak worker memory, largest file vs 50k"]
    heap = got["peak worker heap, largest file vs 50k"]
    assert (rss["verdict"], rss["achieved"]) == ("MISSED", "600 MiB vs 300 MiB = 2.00x")
    assert (heap["verdict"], heap["achieved"]) == ("REPORTED", "250 MiB vs 200 MiB = 1.25x")
    assert (
        heap["evaluated_on"]
        == "600000 vs 50000 rows (that worker ran ray::IDLE > ray::tax:<job>:1)"
    )
    # a run from before the heap was sampled has no such figure
    old = {"runs": [run(50000, 300, 0), run(600000, 600, 0)]}
    assert {t.name: t.verdict for t in targets._issue7_targets(old)}[
        "peak worker heap, largest file vs 50k"
    ] == "NOT MEASURED"
