"""The run's outputs: benchmarks/out/results-<timestamp>.json (everything measured),
benchmarks/RESULTS.md (the figures and the targets, for people) and benchmarks/out/stage_timings.png
(stage seconds per file size). Only figures present in the results are written.

`python -m benchmarks.report out/results-<timestamp>.json` re-renders RESULTS.md and the chart
from a results file (targets re-evaluated from its figures; nothing is measured).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.facts import RARE_MIN_ROWS

STAGE_ORDER = ("upload", "parse", "store", "prices", "tax")
CHART_NAME = "stage_timings.png"


def write_all(
    results: dict[str, Any], out_dir: Path, results_md: Path, json_path: Path | None = None
) -> list[Path]:
    """Write the results JSON (unless `json_path` names an existing one), the chart, RESULTS.md."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if json_path is None:
        json_path = out_dir / f"results-{datetime.now():%Y%m%d-%H%M%S}.json"
        json_path.write_text(json.dumps(results, indent=2, default=str))
        written.append(json_path)
    # The chart, the figures and RESULTS.md are committed together (out/ is not).
    committed_json = results_md.parent / "results.json"
    committed_json.write_text(json.dumps(results, indent=2, default=str))
    written.append(committed_json)
    json_path = committed_json
    chart = results_md.parent / CHART_NAME
    try:
        if write_chart(results, chart):
            written.append(chart)
    except Exception as exc:  # a chart problem must not lose the figures
        results.setdefault("failures", []).append({"step": "chart", "error": repr(exc)})
    text = markdown(results, json_path, chart if chart in written else None, results_md.parent)
    analysis = results_md.parent / "analysis.md"  # hand-written reading of the figures
    if analysis.exists():
        text = text.rstrip("\n") + "\n\n" + analysis.read_text()
    results_md.write_text(text)
    written.append(results_md)
    return written


# --- chart ---------------------------------------------------------------------------------------
def stage_seconds(run: dict) -> dict[str, float]:
    out = {"upload": run["upload"]["send_s"] + run["upload"]["answer_s"]}
    for stage, figures in run.get("stages", {}).items():
        out[stage] = figures["seconds"]
    return out


def write_chart(results: dict, path: Path) -> bool:
    runs = sorted(results.get("runs") or [], key=lambda r: r["size"])
    if not runs:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    stages = [s for s in STAGE_ORDER if any(s in stage_seconds(r) for r in runs)]
    x = np.arange(len(runs))
    width = 0.8 / max(1, len(stages))
    fig, ax = plt.subplots(figsize=(9, 5))
    for i, stage in enumerate(stages):
        values = [stage_seconds(r).get(stage, 0.0) for r in runs]
        bars = ax.bar(x + (i - (len(stages) - 1) / 2) * width, values, width, label=stage)
        ax.bar_label(
            bars,
            labels=[f"{v:.2f}" if v < 10 else f"{v:.0f}" for v in values],
            fontsize=7,
            padding=1,
        )
    ax.set_xticks(x, [f"{r['size']:,} rows\n(e2e {r['e2e_s']:.1f} s)" for r in runs])
    ax.set_yscale("log")
    ax.set_ylabel("seconds (log scale)")
    ax.set_title(
        "ledgerflow stage timings per file size (store = exclusive of parse; prices overlaps store)"
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


# --- markdown ----------------------------------------------------------------------------------
def _f(value: Any, fmt: str = ",.1f", missing: str = "n/a", unit: str = "") -> str:
    if value is None:
        return missing
    try:
        return format(value, fmt) + unit
    except (TypeError, ValueError):
        return str(value) + unit


def _pct(cpu: dict | None) -> str:
    return (
        "n/a"
        if not cpu
        else f"{cpu['mean'] * 100:.0f}% (max {cpu['max'] * 100:.0f}%, n={cpu['samples']})"
    )


def largest_worker_titles(runs: list[dict]) -> str:
    """' The largest worker ran ...' (its process titles, in order, and how much of its peak RSS
    was shared pages: the object store's among them), for runs that recorded it."""
    titles = [
        f"{r['memory']['ray_worker_largest_title']} ({r['size']:,}"
        + _shared_part(r["memory"])
        + ")"
        for r in runs
        if (r.get("memory") or {}).get("ray_worker_largest_title")
    ]
    return f" The largest worker ran (sampled titles): {'; '.join(titles)}." if titles else ""


def _shared_part(memory: dict) -> str:
    shared = memory.get("ray_worker_largest_shared_bytes")
    return f"; {_mb(shared)} of its peak RSS shared pages" if shared else ""


def _mb(n: int | None) -> str:
    return "n/a" if not n else f"{n / 2**20:,.0f} MiB"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def markdown(results: dict, json_path: Path, chart: Path | None, md_dir: Path) -> str:
    m = results.get("machine", {})
    cfg = results.get("config", {})
    parts = [
        "# Benchmark results",
        "",
        f"Run {results.get('started_at')} to {results.get('finished_at')}. Every figure below was "
        "measured by that run (raw data: "
        f"`{_rel(json_path, md_dir)}`); nothing is estimated except where marked *extrapolated*.",
        "",
        "```bash\n" + results.get("command", "") + "\n```",
        "",
        *(
            [
                "**Smoke run (`--quick`): small sizes on a development machine, not the benchmark's "
                "figures.**",
                "",
            ]
            if cfg.get("quick")
            else []
        ),
        "## Machine",
        "",
        f"- CPU: {m.get('cpu_model')} x {m.get('logical_cpus')} logical CPUs",
        f"- load average at start: {', '.join(f'{x:.2f}' for x in m.get('loadavg_at_start', []))}"
        " (CPU utilization below is machine-wide: other load on the machine is included)",
        f"- {m.get('platform')}, Python {m.get('python')}",
        "",
        "```\n" + (m.get("free_m") or "") + "\n```",
        "",
        "## Knobs",
        "",
        table(
            ["knob", "value"],
            [
                [k, f"`{v}`"]
                for k, v in {
                    **{f"bench: {k}": v for k, v in cfg.items()},
                    **{
                        f"LEDGERFLOW_{k.upper()}": v
                        for k, v in (results.get("settings") or {}).items()
                    },
                }.items()
            ],
        ),
        "",
        "LEDGERFLOW_PARSE_PARALLELISM 0 = the cluster's CPUs; LEDGERFLOW_CHUNK_BYTES 0 = adaptive "
        "(from the file's row width). Knobs not listed have their documented defaults "
        "(ingest/config.py).",
        "",
        "## Targets",
        "",
    ]
    tgts = results.get("targets") or []
    parts.append(
        table(
            ["target", "requirement", "evaluated on", "achieved", "verdict", "by how much"],
            [
                [
                    t["name"],
                    t["requirement"],
                    t["evaluated_on"] or "-",
                    t["achieved"] or "-",
                    f"**{t['verdict']}**",
                    t["by_how_much"] or "-",
                ]
                for t in tgts
            ],
        )
    )
    parts += [
        "",
        *end_to_end_section(results),
        *price_section(results),
        *copy_section(results),
        *together_section(results),
        *storage_reads_section(results),
        *latency_section(results),
        *baseline_section(results),
    ]
    if chart is not None:
        parts += ["## Stage timings chart", "", f"![stage timings]({_rel(chart, md_dir)})", ""]
    failures = results.get("failures") or []
    skipped = results.get("skipped") or []
    if failures or skipped:
        parts += ["## Failed or not run", ""]
        parts += [f"- **{f['step']}** failed: {one_line(f['error'])}" for f in failures]
        parts += [f"- {s['step']}: skipped ({s['because']})" for s in skipped]
        parts.append("")
    return "\n".join(parts) + "\n"


def one_line(text: str, limit: int = 700) -> str:
    """A multi-line error (e.g. a tool's output) as one Markdown list line."""
    text = " / ".join(line.strip() for line in text.splitlines() if line.strip())
    return text if len(text) <= limit else text[:limit] + " ..."


def _rel(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def end_to_end_section(results: dict) -> list[str]:
    runs = sorted(results.get("runs") or [], key=lambda r: r["size"])
    if not runs:
        return []
    rows = []
    for r in runs:
        st = r.get("stages", {})
        rows.append(
            [
                f"{r['size']:,}",
                f"{r['file_bytes'] / 1e6:.1f} MB",
                _f(r.get("accepted"), ","),
                f"{r['upload']['answer_s'] * 1000:.1f} ms",
                f"{r['bare_upload']['answer_s_median'] * 1000:.1f} ms",
                f"{r['e2e_s']:.2f} s",
                *[
                    _f(st.get(s, {}).get("seconds"), ".2f", unit=" s")
                    for s in ("parse", "store", "prices", "tax")
                ],
                _pct(r.get("cpu_whole_run")),
                _mb(r["memory"].get("ray_workers_sum_bytes")),
                _mb(r["memory"].get("ray_worker_largest_bytes")),
            ]
        )
    rate_rows = []
    for r in runs:
        st = r.get("stages", {})
        rate_rows.append(
            [
                f"{r['size']:,}",
                f"{r['upload']['send_s'] * 1000:.1f} ms",
                *[
                    _f(st.get(s, {}).get("rows_per_s"), ",.0f")
                    for s in ("parse", "store", "prices", "tax")
                ],
                *[_pct(st.get(s, {}).get("cpu")) for s in ("parse", "store", "prices", "tax")],
            ]
        )
    return [
        "## ledgerflow end to end",
        "",
        "Upload over real HTTP (raw text/csv body, 1 MiB writes); answer time = last byte sent to "
        "202. End to end = first byte sent until GET /v1/jobs/{id} shows `succeeded` (polled every "
        f"{results['config'].get('poll_interval_s')} s). Stage seconds from the job record's "
        "`stage_timings`; store is exclusive of parse (the runner times store over the whole "
        "parse+store map/reduce); prices is the fetch's own time, which runs alongside store "
        "(so the stage columns overlap and do not add up to the end to end). Price cache cold "
        "for every size; one user per size.",
        "",
        table(
            [
                "rows",
                "file",
                "accepted",
                "202 after",
                "bare 202 after",
                "end to end",
                "parse",
                "store",
                "prices",
                "tax",
                "CPU busy (whole run)",
                "peak RSS Ray workers (sum)",
                "largest worker",
            ],
            rows,
        ),
        "",
        "Load average (1 min) before each upload: "
        + ", ".join(
            f"{r['size']:,} rows: {r['loadavg_before'][0]:.2f}"
            for r in runs
            if r.get("loadavg_before")
        )
        + ". Peak RSS sums every Ray worker process of this run's Ray instance (Serve controller, "
        "proxy and replicas included; shared pages count once per process); before the upload "
        "the sum was "
        + ", ".join(
            f"{_mb(r['memory'].get('ray_workers_sum_before_upload_bytes'))} ({r['size']:,})"
            for r in runs
        )
        + "."
        + largest_worker_titles(runs),
        "",
        table(
            [
                "rows",
                "upload send",
                "parse rows/s",
                "store rows/s",
                "prices rows/s",
                "tax rows/s",
                "CPU parse",
                "CPU store",
                "CPU prices",
                "CPU tax",
            ],
            rate_rows,
        ),
        "",
    ]


def price_section(results: dict) -> list[str]:
    runs = sorted(results.get("runs") or [], key=lambda r: r["size"])
    out = []
    if runs:
        rows = []
        for r in runs:
            p = r["price_requests"]
            rows.append(
                [
                    f"{r['size']:,}",
                    _f(p.get("total"), ","),
                    _f(p.get("ok"), ","),
                    _f(p.get("throttled_429"), ","),
                    _f(p.get("price_stage"), ","),
                    _f(r.get("price_window_pairs_in_file"), ","),
                    _f(r.get("stages", {}).get("prices", {}).get("seconds"), ".3f"),
                    _f(p.get("max_rate_1s"), ","),
                ]
            )
        out += [
            "## Price stage",
            "",
            f"Simulator at {results['config'].get('price_rate')} req/s (burst the same), "
            f"{results['config'].get('simulator_latency_ms')} ms latency. Pairs = distinct "
            "(asset, price window) over every crypto asset of the file, windows as "
            "ingest.prices.planner defines them (aligned to the epoch), counted with the csv "
            "module independently of ledgerflow.",
            "",
            table(
                [
                    "rows",
                    "requests (job)",
                    "200",
                    "429",
                    "during prices stage",
                    "(asset, window) pairs",
                    "prices stage s",
                    "max req in 1 s",
                ],
                rows,
            ),
            "",
        ]
    naive = results.get("naive_fetcher")
    if naive:
        out += [
            "### Naive one-request-per-transaction fetcher",
            "",
            f"Measured on {naive['transactions_fetched']:,} transactions of the "
            f"{naive['file_rows']:,}-row file: {naive['requests']:,} requests "
            f"({naive['throttled_429']:,} answered 429) in {naive['seconds']:.1f} s = "
            f"{naive['seconds_per_transaction'] * 1000:.1f} ms per transaction. "
            f"*Extrapolated* ({naive['extrapolation']}): "
            f"{naive['extrapolated_seconds_all_transactions']:,.0f} s for all "
            f"{naive['priceable_transactions']:,} priceable transactions.",
            "",
        ]
    return out


def _load_check(load: dict) -> str:
    c = load.get("check")
    if not c:
        return "The loaded table was not checked against the file."
    return (
        f"Checked against the file after the load: {c['loaded_rows']:,} rows in the table for "
        f"{c['file_rows']:,} in the file, {c['sampled_rows']:,} sampled rows equal column by "
        f"column ({c['sampled_quoted_descriptions']:,} of them descriptions with a quote)."
    )


def copy_section(results: dict) -> list[str]:
    c, d = results.get("copy_from"), results.get("dsbulk")
    out = []
    if c:
        out += [
            "## Store stage vs cqlsh COPY FROM",
            "",
            f"`{c['command']}` on the {c['size']:,}-row file exported as canonical columns "
            f"({c['exported_rows']:,} rows): {c['rows']:,} rows in {c['seconds']:.2f} s as cqlsh "
            f"reports it = **{c['rows_per_s']:,.0f} rows/s** (whole cqlsh process "
            f"{c['wall_seconds']:.2f} s; CPU {_pct(c.get('cpu'))}). {_load_check(c)}",
            "",
        ]
    if d:
        vs_copy = (
            f" = {d['rows_per_s'] / c['rows_per_s']:.2f}x COPY FROM's"
            if c and c.get("rows_per_s")
            else ""
        )
        out += [
            "## Second load anchor: DSBulk",
            "",
            f"`{d['command']}` on the same canonical CSV ({d['exported_rows']:,} rows): "
            f"{d['rows']:,} rows ({d['failed']} failed) at **{d['rows_per_s']:,.0f} rows/s** as "
            f"DSBulk reports it{vs_copy} ({d['seconds']:.2f} s at that rate; whole java process "
            f"{d['wall_seconds']:.2f} s; CPU {_pct(d.get('cpu'))}). {_load_check(d)}",
            "",
        ]
    return out


def together_section(results: dict) -> list[str]:
    t = results.get("concurrent_users")
    if not t:
        return []
    rows = [
        [
            j["user"],
            _f(j.get("accepted"), ","),
            f"{j['answer_s'] * 1000:.0f} ms",
            f"{j['e2e_s']:.2f} s",
            f"{j['vs_single']:.2f}x",
        ]
        for j in t["jobs"]
    ]
    return [
        "## Many users at once",
        "",
        f"{t['users']} users each upload `{t['file']}` ({t['rows_each']:,} rows) through "
        f"POST /v1/uploads at the same moment ({t['price_cache']}): {t['rows']:,} rows in "
        f"{t['wall_s']:.2f} s from the first byte sent to the last job's `succeeded` = "
        f"**{t['rows_per_s']:,.0f} rows/s**; the single-user job of the same file took "
        f"{t['single_user_e2e_s']:.2f} s. CPU {_pct(t.get('cpu'))}; largest worker "
        f"{_mb((t.get('memory') or {}).get('ray_worker_largest_bytes'))}.",
        "",
        table(["user", "accepted", "202 after", "end to end", "vs single user"], rows),
        "",
    ]


def storage_reads_section(results: dict) -> list[str]:
    tomb, history = results.get("tombstones"), results.get("history_read")
    out = []
    if tomb:
        per_row = tomb.get("per_live_row")
        out += [
            "## Tombstones read from the view (first upload)",
            "",
            f"User {tomb['user']}, every row of its transactions_view ({tomb['months']} months, "
            f"{tomb['pages']} pages). Method: {tomb['method']}. The node counted "
            f"**{tomb['tombstone_cells']:,} tombstone cells for {tomb['live_rows']:,} live rows"
            f" = {_f(per_row, '.2f')} per live row** ({tomb['traced_reads']} traced reads).",
            "",
        ]
    if history and "chunk_seconds" not in history:  # a run from before the chunk read
        out += [
            "## Reading a whole raw history (today's row read)",
            "",
            f"User {history['user']}: {history['rows']:,} rows of raw_transactions in "
            f"{history['months']} month partitions read in **{history['seconds']:.2f} s** "
            f"({_f(history.get('rows_per_s'), ',.0f')} rows/s) by {history['read_path']}.",
            "",
        ]
    elif history:
        out += [
            "## Reading a whole raw history: rows vs chunks",
            "",
            f"User {history['user']}: {history['rows']:,} rows in {history['months']} months, "
            "loaded both ways in this run: raw_transactions rows in "
            f"{history['row_write_s']:.2f} s; chunks of {history['store_partitions']} store "
            f"partitions ({history['chunks_written']} chunks) in "
            f"{history['chunk_write_s']:.2f} s, then compacted (months over "
            f"{history['compact_chunks']} chunks) in {history['compaction_s']:.2f} s to "
            f"{history['chunks_read']} chunks. Read whole {history['rounds']} times each, "
            f"alternating, by {history['read_path']}:",
            "",
            table(
                ["read", "median", "rows/s", "each read (s)"],
                [
                    [
                        "rows (today)",
                        f"{history['seconds']:.2f} s",
                        _f(history.get("rows_per_s"), ",.0f"),
                        ", ".join(f"{s:.2f}" for s in history["row_reads_s"]),
                    ],
                    [
                        "chunks",
                        f"{history['chunk_seconds']:.2f} s",
                        _f(history.get("chunk_rows_per_s"), ",.0f"),
                        ", ".join(f"{s:.2f}" for s in history["chunk_reads_s"]),
                    ],
                ],
            ),
            "",
            f"The chunk read is **{_f(history.get('speedup'), '.2f')}x** faster; both reads "
            "gave the same rows.",
            "",
        ]
    return out


def filtered_paths(f: dict | None) -> list[tuple[str, dict]]:
    if not f:
        return []
    return [
        (
            f"API ...&asset={f['asset']}&wallet={f['wallet']} ({f['page_rows']} rows on the page)",
            f["api"],
        ),
        (f"driver (same filtered page, {f['driver_page_rows']} rows)", f["driver"]),
    ]


def latency_section(results: dict) -> list[str]:
    lat = results.get("read_latency")
    if not lat:
        return []
    rows = [
        [
            name,
            _f(v["requests"], ","),
            _f(v["errors"], ","),
            f"{v['p50_ms']:.1f}",
            f"{v['p99_ms']:.1f}",
            f"{v['mean_ms']:.1f}",
            f"{v['max_ms']:.1f}",
            f"{v['requests'] / v['wall_s']:,.0f}",
        ]
        for name, v in (
            ("API GET /v1/transactions?limit=100", lat["api"]),
            ("driver (same page)", lat["driver"]),
            *filtered_paths(lat.get("filtered")),
        )
    ]
    return [
        "## Read latency",
        "",
        f"User {lat['user']} ({_f(lat.get('history_rows'), ',')} rows), pages of "
        f"{lat['page_rows']} rows, {lat['api']['concurrency']} concurrent clients, "
        f"up to {lat['warmup_requests_each']} warm-up requests each first (not counted; at most "
        f"as many as the timed ones). Driver: {lat['driver_call']}."
        + (
            f" Filtered page: {f['driver_call']}, the file's rarest asset of at least "
            f"{RARE_MIN_ROWS} rows ({f['asset_rows_in_file']:,} rows) in the wallet holding most "
            "of them; the view's indexes answer both filters in each month partition (only "
            "matching rows are read; migration 014)."
            if (f := lat.get("filtered"))
            else ""
        ),
        "",
        table(
            ["path", "requests", "errors", "p50 ms", "p99 ms", "mean ms", "max ms", "req/s"], rows
        ),
        "",
    ]


def baseline_section(results: dict) -> list[str]:
    b = results.get("baseline")
    if not b:
        return []
    a = b.get("answer") or {}
    sec = a.get("seconds", {})
    same = next((r for r in results.get("runs") or [] if r["size"] == b["size"]), None)
    lines = [
        "## Synchronous baseline",
        "",
        f"One request handler (benchmarks/baseline.py) on the {b['size']:,}-row file: "
        f"**{b['e2e_s']:.1f} s** from first byte to answer; inside it insert "
        f"{_f(sec.get('insert'), '.1f')} s, price fetches {_f(sec.get('fetch'), '.1f')} s "
        f"({_f(a.get('price_requests'), ',')} requests, {_f(a.get('price_429'), ',')} answered "
        f"429, {_f(sec.get('retry_after_sleep'), '.1f')} s sleeping on Retry-After), "
        f"reconcile + FIFO {_f(sec.get('reconcile_and_metrics'), '.2f')} s. Answer: "
        f"{a.get('rows')} rows, {a.get('priced')} priced, {a.get('transfers_matched')} "
        f"transfers matched, {a.get('disposals')} disposals, realized gain "
        f"{a.get('realized_gain_usd')} USD. CPU {_pct(b.get('cpu'))}.",
    ]
    if same:
        lines.append(f"ledgerflow on a file of the same size: {same['e2e_s']:.2f} s end to end.")
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    import argparse

    from benchmarks import targets

    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description="re-render RESULTS.md from a results JSON")
    parser.add_argument("results_json", type=Path)
    parser.add_argument("--results-md", type=Path, default=here / "RESULTS.md")
    args = parser.parse_args(argv)
    results = json.loads(args.results_json.read_text())
    results["targets"] = targets.evaluate(results)
    for path in write_all(results, args.results_json.parent, args.results_md, args.results_json):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
