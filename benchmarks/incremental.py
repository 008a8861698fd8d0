"""An upload of recent rows over a long history, with and without tax checkpoints, in one run.

    .venv/bin/python -m benchmarks.incremental --rows 600000 --late-days 30

A generated Koinly history (3 years) is split at `--late-days` before its end. One user uploads
the early part, then the late part three times (re-uploading a file stores no new row, so the
three jobs do the same work on the same history):

1. with checkpoints (the late rows' price windows are fetched here: not compared),
2. with LEDGERFLOW_TAX_CHECKPOINTS=false: every touched asset is walked from its first row,
3. with checkpoints again: shards resume at the last tax-year start the late rows cannot reach.

The late uploads 2 and 3 find the same price cache; their tax stages are the comparison (the
ratio is 2 over 3). The local Cassandra node (started if it is not up), a throw-away keyspace, the price
simulator and a local Ray instance of this machine's CPUs; the job runs as the Serve app would
run it (`run_job` on Ray), only the upload's HTTP hop is left out. Writes
benchmarks/INCREMENTAL.md and benchmarks/out/incremental-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from benchmarks.stack import Knobs, Stack

HERE = Path(__file__).resolve().parent
KEYSPACE = "lf_incr"


def split_file(path: Path, late_days: int, out_dir: Path) -> tuple[Path, Path, str]:
    header, *rows = path.read_text().splitlines(keepends=True)
    last = max(r[:10] for r in rows)
    cut = (datetime.fromisoformat(last) - timedelta(days=late_days)).date().isoformat()
    early, late = out_dir / "early.csv", out_dir / "late.csv"
    early.write_text(header + "".join(r for r in rows if r[:10] < cut))
    late.write_text(header + "".join(r for r in rows if r[:10] >= cut))
    return early, late, cut


def run_upload(user: str, path: Path, env: dict[str, str], checkpoints: bool) -> dict[str, Any]:
    import ray

    from ingest.config import get_settings
    from ingest.load import jobs
    from ingest.load.cassandra import get_session
    from ingest.pipeline.backfill import backfill_file
    from ingest.pipeline.runner import run_job

    session = get_session(get_settings())
    # recorded as every upload is, run here with this benchmark's environment
    job_id, _ = backfill_file(session, get_settings(), user, path, fmt="koinly", hand_over=False)
    flag = {"LEDGERFLOW_TAX_CHECKPOINTS": "true" if checkpoints else "false"}
    started = time.perf_counter()
    status = ray.get(run_job.options(runtime_env={"env_vars": {**env, **flag}}).remote(job_id))
    wall = time.perf_counter() - started
    job = jobs.get_job(session, job_id)
    assert job is not None
    if status != "succeeded":
        raise RuntimeError(f"job {job_id} ended {status}: {job.error}")
    return {
        "file": path.name,
        "checkpoints": checkpoints,
        "job_s": round(wall, 2),
        "accepted": job.accepted,
        "tax": job.summary.get("tax", {}),
    }


def yearly_summary(user: str) -> list[tuple]:
    from ingest.config import get_settings
    from ingest.load import queries
    from ingest.load.cassandra import get_session

    return sorted(
        tuple(str(v) for v in r.values())
        for r in queries.summary_rows(get_session(get_settings()), user)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=600_000)
    parser.add_argument("--late-days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    out_dir = HERE / "out"
    data = out_dir / "incremental"
    data.mkdir(parents=True, exist_ok=True)
    stack = Stack(KEYSPACE, out_dir, Knobs(price_rate=1000.0), log=print)
    results: dict[str, Any] = {
        "command": f".venv/bin/python -m benchmarks.incremental --rows {args.rows} "
        f"--late-days {args.late_days}",
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
    }
    try:
        stack.start_storage()
        stack.start_price_simulator()
        from devtools.generate import generate

        env = {k: v for k, v in os.environ.items() if k.startswith("LEDGERFLOW_")}
        stack.start_ray()
        full = data / f"koinly-{args.rows}.csv"
        generate(args.rows, "koinly", args.seed, full, years=3.0)
        early, late, cut = split_file(full, args.late_days, data)
        results["split_at"] = cut
        user = f"incr-{uuid.uuid4().hex[:6]}"
        runs = []
        for label, path, flag in (
            ("early part", early, True),
            ("late part, checkpoints (fetches its windows)", late, True),
            ("late part again, no checkpoints", late, False),
            ("late part again, checkpoints", late, True),
        ):
            print(f"{label}: {path.name} ...", flush=True)
            run = run_upload(user, path, env, flag)
            run["label"] = label
            run["yearly_summary"] = yearly_summary(user)
            runs.append(run)
            print(f"  job {run['job_s']} s, tax {run['tax'].get('seconds')} s", flush=True)
        off, on = runs[2], runs[3]
        results["runs"] = [{k: v for k, v in r.items() if k != "yearly_summary"} for r in runs]
        results["same_results"] = off["yearly_summary"] == on["yearly_summary"]
        results["tax_stage_ratio"] = round(off["tax"]["seconds"] / on["tax"]["seconds"], 2)
        results["job_ratio"] = round(off["job_s"] / on["job_s"], 2)
    finally:
        stack.stop()
    results["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (out_dir / f"incremental-{stamp}.json").write_text(json.dumps(results, indent=2))
    (HERE / "INCREMENTAL.md").write_text(render(results))
    print(render(results))


def render(results: dict[str, Any]) -> str:
    lines = [
        "# An upload of recent rows: tax checkpoints on and off",
        "",
        f"`{results['command']}`, {results['started_at']} to {results['finished_at']}, "
        f"{results['cpus']} CPUs. History split at {results['split_at']} (see the module "
        "docstring of benchmarks/incremental.py for the method).",
        "",
        "| job | checkpoints | job s | tax stage s | shards step s | shards resumed / computed "
        "| rows the shards read | history rows |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in results["runs"]:
        tax = run["tax"]
        lines.append(
            f"| {run['label']} | {'on' if run['checkpoints'] else 'off'} | {run['job_s']} | "
            f"{tax.get('seconds')} | {tax.get('steps', {}).get('shards')} | "
            f"{tax.get('shards_resumed')} / {tax.get('shards_computed')} | "
            f"{tax.get('rows_computed')} | {tax.get('history_rows')} |"
        )
    lines += [
        "",
        f"Tax stage, checkpoints off over on (the last two jobs): **{results['tax_stage_ratio']}x**; "
        f"whole job: {results['job_ratio']}x. Same yearly totals either way: "
        f"{results['same_results']}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
