"""The job's task graph on the real services (Ray, Cassandra, price simulator), without HTTP:
exact counts, idempotent re-upload, rejected rows with lines, transfers matched across files."""

from __future__ import annotations

import re
import shutil
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from devtools.generate import GenerateStats, generate
from ingest.config import get_settings
from ingest.extract import storage
from ingest.load import jobs
from ingest.load.cassandra import execute
from ingest.load.chunk_codec import decode_chunk
from ingest.load.history_chunks import count_history, history_months, read_history
from ingest.load.transactions import user_months
from ingest.normalize.canonical import SIDE_COLUMNS
from ingest.pipeline.runner import submit_job
from ingest.vocabulary import FINISHED

pytestmark = [pytest.mark.cassandra, pytest.mark.ray, pytest.mark.pricesim]


def upload(session, user: str, path: Path, fmt: str | None = None, wallet: str | None = None):
    job_id = uuid.uuid1()
    uri = storage.upload_uri(get_settings().uploads_uri, user, str(job_id), path.name)
    with open(path, "rb") as src, storage.open_output(uri) as dst:
        shutil.copyfileobj(src, dst)
    jobs.create_job(
        session,
        user_id=user,
        file_uri=uri,
        file_name=path.name,
        format=fmt,
        wallet=wallet,
        size_bytes=path.stat().st_size,
        job_id=job_id,
    )
    submit_job(job_id)
    return job_id


def wait(session, job_id, timeout: float = 300.0) -> jobs.JobRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = jobs.get_job(session, job_id)
        if job.status in FINISHED:
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish: {jobs.get_job(session, job_id)}")


def view_count(session, user: str) -> int:
    total = 0
    for m in {
        r["month"]
        for r in execute(session, "SELECT month FROM user_months WHERE user_id = ?", (user,))
    }:
        total += execute(
            session,
            "SELECT count(*) AS n FROM transactions_view WHERE user_id = ? AND month = ?",
            (user, m),
        ).one()["n"]
    return total


def history_rows(session, user: str) -> list[dict]:
    """The user's history as the tax stage reads it (published chunks, each id once): tx_id and
    the amounts."""
    table = read_history(session, user, history_months(session, user))
    return table.select(["tx_id", *SIDE_COLUMNS]).to_pylist()


def published_tx_ids(
    session, user: str, upload_id: uuid.UUID | None = None, consistency: str | None = None
) -> list[str]:
    """Every tx_id of every published chunk of `user` (of one upload when given), read at
    `consistency`, not merged: a row stored twice (by one upload) is listed twice."""
    ids: list[str] = []
    for key in execute(
        session,
        "SELECT month, upload_id, part FROM history_manifest WHERE user_id = ?",
        (user,),
        consistency=consistency,
    ):
        if upload_id is not None and key["upload_id"] != upload_id:
            continue
        body = execute(
            session,
            "SELECT format, body FROM history_chunks "
            "WHERE user_id = ? AND month = ? AND upload_id = ? AND part = ?",
            (user, key["month"], key["upload_id"], key["part"]),
            consistency=consistency,
        ).one()
        ids += decode_chunk(body["body"], body["format"]).column("tx_id").to_pylist()
    return ids


def stored_rows(session, user: str, table: str) -> list[dict]:
    """Every row of `user` in transactions_view (tx_id and the amounts)."""
    rows: list[dict] = []
    for month in sorted(user_months(session, user)):
        rows += execute(
            session,
            f"SELECT tx_id, {', '.join(SIDE_COLUMNS)} FROM {table} WHERE user_id = ? AND month = ?",
            (user, month),
            fetch_size=5000,
        )
    return rows


def net_units(rows: list[dict], assets: tuple[str, ...]) -> dict[str, int]:
    """asset -> received minus sent minus fees, in the generator's 1e-8 units."""
    net: dict[str, Decimal] = {}
    for row in rows:
        for side, sign in (("received", 1), ("sent", -1), ("fee", -1)):
            asset, amount = row[f"{side}_asset"], row[f"{side}_amount"]
            if asset in assets and amount is not None:
                net[asset] = net.get(asset, Decimal(0)) + sign * amount
    return {a: int(q * 10**8) for a, q in sorted(net.items()) if q}


def assert_landed_as_generated(
    session,
    user: str,
    stats: GenerateStats,
    job: jobs.JobRecord,
    wallets: tuple[str, ...] | None = None,
    transactions: int | None = None,
) -> set[str]:
    """The generator is the oracle: as many transactions as it made (`transactions` when the
    user has more files than `stats` describes), each id once in the history (and once in the
    job's own published chunks: each of its rows stored once) and the same ids in
    transactions_view, and per asset the quantities add up to the generator's final
    holdings of `wallets` (all when None). Returns the ids."""
    expected = (
        sum(stats.by_type.values()) - stats.peer_rows if transactions is None else transactions
    )
    assert job.status == "succeeded", job.error
    raw, view = history_rows(session, user), stored_rows(session, user, "transactions_view")
    raw_ids, view_ids = [r["tx_id"] for r in raw], [r["tx_id"] for r in view]
    assert len(raw_ids) == len(set(raw_ids)) == expected, (len(raw_ids), expected)
    own = published_tx_ids(session, user, job.job_id)
    assert len(own) == len(set(own)) == job.accepted, (len(own), job.accepted)
    assert len(view_ids) == len(set(view_ids)) and set(view_ids) == set(raw_ids)
    holdings = stats.net_units(wallets)
    assert net_units(raw, stats.assets) == holdings
    assert net_units(view, stats.assets) == holdings
    return set(raw_ids)


def assert_balances_as_generated(session, user: str, stats: GenerateStats) -> None:
    """The balances the tax stage wrote are the generator's final holdings, wallet by wallet."""
    from ingest.load.queries import balance_rows

    stored = {
        (r["wallet"], r["asset"]): int(r["quantity"] * 10**8)
        for r in balance_rows(session, user)
        if r["asset"] in stats.assets and r["quantity"]
    }
    expected = {(w, a): u for w, book in stats.holdings.items() for a, u in book.items() if u}
    assert stored == expected


def test_upload_lands_exactly_once_and_reupload_adds_nothing(ray_local, session, tmp_path):
    user = f"pipe-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "binance.csv"
    peer = tmp_path / "peer.csv"
    stats = generate(50_000, "binance", seed=11, out=path, peer_out=peer, years=3.0)
    expected = sum(stats.by_type.values()) - stats.peer_rows
    job = wait(session, upload(session, user, path))
    ids = assert_landed_as_generated(session, user, stats, job, wallets=("binance",))
    assert (job.accepted, job.rejected) == (expected, 0)
    assert job.completed_stages == {"parse", "store", "prices", "tax"}
    progress = jobs.progress(session, job.job_id)
    assert progress["store"] == {"done": job.accepted, "total": job.accepted}

    assert job.summary["ingest"]["already_present"] == 0
    assert job.summary["ingest"]["wallets"] == ["binance"]

    again = wait(session, upload(session, user, path))
    assert again.status == "succeeded"
    assert again.summary["ingest"]["already_present"] == again.accepted == expected
    assert assert_landed_as_generated(session, user, stats, again, wallets=("binance",)) == ids

    # The peer file holds the other side of the transfers: once it is uploaded, every binance
    # leg of a transfer is matched (the remaining unmatched legs are external funding/payouts).
    unmatched_before = unmatched(session, user)
    peer_job = wait(session, upload(session, user, peer, fmt="koinly"))
    assert_landed_as_generated(
        session, user, stats, peer_job, transactions=sum(stats.by_type.values())
    )
    assert_balances_as_generated(session, user, stats)
    unmatched_after = unmatched(session, user)
    assert stats.transfers > 0
    assert len(unmatched_before) - len(unmatched_after) == stats.transfers
    assert unmatched_after <= unmatched_before  # nothing of the peer file is left unmatched


def unmatched(session, user: str) -> set[str]:
    from ingest.load.queries import findings_page

    found, state = set(), None
    while True:
        page = findings_page(session, user, 1000, state)
        found |= {
            r["tx_id"]
            for r in page.rows
            if r["kind"] in ("unmatched_withdrawal", "unmatched_deposit")
        }
        if (state := page.paging_state) is None:
            return found


def test_broken_rows_are_rejected_with_lines_and_the_rest_stored(ray_local, session, tmp_path):
    user = f"broken-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "koinly.csv"
    generate(1000, "koinly", seed=5, out=path, years=1.0, user_values="all")
    lines = path.read_text().splitlines()
    broken = {10: "not-a-date", 500: "abc", 900: None}
    for n, bad in broken.items():
        cells = lines[n - 1].split(",")
        if bad == "not-a-date":
            cells[0] = bad
        elif bad == "abc":
            cells[1], cells[3] = "abc", "abc"
        else:
            cells = cells[:3]
        lines[n - 1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    job = wait(session, upload(session, user, path))
    assert job.status == "succeeded", job.error
    assert (job.accepted, job.rejected) == (997, 3)
    rows, _ = jobs.list_rejected(session, job.job_id, 100)
    assert [r["line"] for r in rows] == sorted(broken)
    assert all(r["reason"] for r in rows)
    assert count_history(session, user) == 997
    ingest = job.summary["ingest"]
    assert sum(ingest["rejected_reasons"].values()) == 3
    assert ingest["rows"] - ingest["rejected"] - ingest["skipped"] >= ingest["accepted"]


def test_a_file_whose_every_row_is_rejected_fails_as_nothing_imported(ray_local, session, tmp_path):
    path = tmp_path / "koinly.csv"
    generate(40, "koinly", seed=5, out=path, years=1.0)
    header, *rows = path.read_text().splitlines()
    path.write_text("\n".join([header] + ["not-a-date" + r[r.index(",") :] for r in rows]) + "\n")
    job = wait(session, upload(session, f"none-{uuid.uuid4().hex[:8]}", path))
    assert job.status == "failed" and job.error_code == "invalid_input"
    assert job.error.startswith(f"nothing imported: of the file's {len(rows)} rows, {len(rows)}")
    assert (job.accepted, job.rejected) == (0, len(rows))
    reasons = job.summary["ingest"]["rejected_reasons"]
    assert sum(reasons.values()) == len(rows) and len(reasons) == 1, reasons
    assert "'…'" in next(iter(reasons))


def test_a_line_over_16_mib_is_rejected_alone_with_its_head_and_length(
    ray_local, session, tmp_path
):
    """Its raw text was stored whole: Cassandra refused the 20 MB write and the job failed
    'internal' with 0 accepted."""
    user = f"hugeline-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "koinly.csv"
    generate(200, "koinly", seed=7, out=path, years=1.0, user_values="all")
    lines = path.read_text().splitlines()
    cells = lines[99].split(",")
    cells[-1] = "x" * (17 * 1024 * 1024)  # the description: 17 MiB
    cells[0] = "not-a-date"
    lines[99] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    job = wait(session, upload(session, user, path))
    assert job.status == "succeeded", job.error
    assert (job.accepted, job.rejected) == (199, 1)
    (row,), _ = jobs.list_rejected(session, job.job_id, 10)
    assert row["line"] == 100 and len(row["raw"]) < 5000 and row["raw"].startswith("not-a-date,")
    length = re.search(r"\[([\d,]+) characters in all", row["raw"])
    assert length and int(length.group(1).replace(",", "")) >= 17 * 1024 * 1024, row["raw"][-200:]
    assert count_history(session, user) == 199


def test_not_a_csv_fails_the_job_with_one_clear_message(ray_local, session, tmp_path):
    path = tmp_path / "photo.csv"
    path.write_bytes(b"this is not, a known\nexport at all\n")
    job = wait(session, upload(session, f"bad-{uuid.uuid4().hex[:8]}", path))
    assert job.status == "failed"
    # one short line: what was seen, and where the known layouts are listed
    assert "no known header" in job.error and "GET /v1/formats" in job.error, job.error
    assert len(job.error) <= 300 and "\n" not in job.error


def test_skipped_rows_are_listed_once_with_one_skipped_prefix(ray_local, session, tmp_path):
    user = f"skips-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "kraken.csv"
    stats = generate(1000, "kraken", seed=5, out=path, years=1.0)
    assert stats.skipped > 0
    job = wait(session, upload(session, user, path))
    assert job.status == "succeeded", job.error
    assert (job.accepted, job.rejected) == (sum(stats.by_type.values()), 0)
    rows, _ = jobs.list_rejected(session, job.job_id, 1000)
    assert len(rows) == stats.skipped
    for row in rows:
        assert row["reason"].startswith("skipped: ") and "skipped: skipped" not in row["reason"]
