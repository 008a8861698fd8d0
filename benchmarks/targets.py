"""The issue's targets, evaluated from what the run measured (a target whose inputs were not
measured is reported as NOT MEASURED, never guessed). Size-dependent targets are evaluated on the
largest size of the run (600k in the full benchmark)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

UPLOAD_MARGIN_S = 0.050
STORE_VS_COPY = 1.5
PARSE_VS_STORE = 10.0
API_VS_DRIVER_P99 = 2.0  # issue 24: the unfiltered and a filtered page (was 3x)
BASELINE_SPEEDUP = 25.0  # cold price cache (the rate-limit floor is about 31x at 10k)
WARM_BASELINE_SPEEDUP = 50.0  # warm price cache
DERIVED_PER_INPUT = 1.5  # derived rows left per input row, largest file
PRICE_TIME_FACTOR = 1.2


@dataclass
class Target:
    name: str
    requirement: str
    achieved: str = ""
    verdict: str = "NOT MEASURED"  # MET | MISSED | NOT MEASURED | REPORTED (a figure, no bound)
    by_how_much: str = ""
    evaluated_on: str = ""


def at_least(t: Target, value: float, required: float, unit: str = "x") -> Target:
    t.achieved = f"{value:.2f}{unit}"
    share = value / required
    t.verdict = "MET" if value >= required else "MISSED"
    t.by_how_much = (
        f"{share:.2f}x the required {required:g}{unit}"
        if t.verdict == "MET"
        else f"short: {share:.0%} of the required {required:g}{unit}"
    )
    return t


def at_most(t: Target, value: float, limit: float, unit: str = "x") -> Target:
    """`unit` "x": a ratio (margin told as a share of the limit); else an amount ("ms", "s")."""
    t.achieved = f"{value:.2f}{unit}"
    t.verdict = "MET" if value <= limit else "MISSED"
    if unit == "x":
        t.by_how_much = (
            f"{value / limit:.0%} of the limit {limit:g}x"
            if t.verdict == "MET"
            else f"over: {value / limit:.2f}x the limit {limit:g}x"
        )
    elif t.verdict == "MET":
        t.by_how_much = f"{limit - value:.3g}{unit} under the limit {limit:.3g}{unit}"
    else:
        t.by_how_much = (
            f"{value - limit:.3g}{unit} over the limit {limit:.3g}{unit} ({value / limit:.2f}x)"
        )
    return t


def _largest_run(results: dict) -> dict | None:
    runs = results.get("runs") or []
    return max(runs, key=lambda r: r["size"]) if runs else None


def _run_of(results: dict, size: int) -> dict | None:
    return next((r for r in results.get("runs") or [] if r["size"] == size), None)


def _stage(run: dict | None, stage: str, key: str) -> float | None:
    if run is None:
        return None
    return (run.get("stages", {}).get(stage) or {}).get(key)


def evaluate(results: dict[str, Any]) -> list[dict]:
    run = _largest_run(results)
    where = f"{run['size']} rows" if run else ""
    out: list[Target] = []

    t = Target(
        "upload answer vs bare Serve endpoint",
        f"ledgerflow's 202 within {UPLOAD_MARGIN_S * 1000:.0f} ms of the bare endpoint's",
        evaluated_on=where,
    )
    if run:
        diff = run["upload"]["answer_s"] - run["bare_upload"]["answer_s_median"]
        at_most(t, diff * 1000, UPLOAD_MARGIN_S * 1000, " ms")
        t.achieved = (
            f"{run['upload']['answer_s'] * 1000:.1f} ms vs bare "
            f"{run['bare_upload']['answer_s_median'] * 1000:.1f} ms (median): "
            f"{diff * 1000:+.1f} ms"
        )
    out.append(t)

    t = Target(
        "store stage vs cqlsh COPY FROM",
        f"store rows/s >= {STORE_VS_COPY:g}x COPY's",
        evaluated_on=where,
    )
    store = _stage(run, "store", "rows_per_s")
    copy = results.get("copy_from")
    if store and copy and copy.get("rows_per_s"):
        at_least(t, store / copy["rows_per_s"], STORE_VS_COPY)
        t.achieved = (
            f"{store:,.0f} vs {copy['rows_per_s']:,.0f} rows/s = {store / copy['rows_per_s']:.2f}x"
        )
    out.append(t)

    t = Target(
        "parse vs store", f"parse rows/s >= {PARSE_VS_STORE:g}x store rows/s", evaluated_on=where
    )
    parse = _stage(run, "parse", "rows_per_s")
    if parse and store:
        at_least(t, parse / store, PARSE_VS_STORE)
        t.achieved = f"{parse:,.0f} vs {store:,.0f} rows/s = {parse / store:.2f}x"
    out.append(t)

    t = Target(
        "read API p99 vs driver p99",
        f"GET /v1/transactions?limit=100 p99 <= {API_VS_DRIVER_P99:g}x the driver's p99 "
        "(16 concurrent clients)",
    )
    lat = results.get("read_latency")
    if lat:
        t.evaluated_on = f"user {lat['user']} ({lat.get('history_rows')} rows)"
        ratio = lat["api"]["p99_ms"] / lat["driver"]["p99_ms"]
        at_most(t, ratio, API_VS_DRIVER_P99)
        t.achieved = (
            f"{lat['api']['p99_ms']:.1f} ms vs {lat['driver']['p99_ms']:.1f} ms = {ratio:.2f}x"
        )
    out.append(t)

    t = Target(
        "end to end vs the synchronous baseline",
        f"ledgerflow >= {BASELINE_SPEEDUP:g}x faster on the same file",
    )
    base = results.get("baseline")
    same = _run_of(results, base["size"]) if base else None
    if base and same:
        t.evaluated_on = f"{base['size']} rows"
        ratio = base["e2e_s"] / same["e2e_s"]
        at_least(t, ratio, BASELINE_SPEEDUP)
        t.achieved = (
            f"{base['e2e_s']:.1f} s vs {same['e2e_s']:.2f} s = {ratio:.1f}x (cold price cache)"
        )
    out.append(t)

    warm = next(
        (r for r in results.get("warm_runs", []) if base and r["size"] == base["size"]), None
    )
    if base and warm:
        t = Target(
            "end to end vs the synchronous baseline, warm price cache",
            f"ledgerflow >= {WARM_BASELINE_SPEEDUP:g}x faster on the same file",
            evaluated_on=f"{base['size']} rows",
        )
        ratio = base["e2e_s"] / warm["e2e_s"]
        at_least(t, ratio, WARM_BASELINE_SPEEDUP)
        t.achieved = (
            f"{base['e2e_s']:.1f} s vs {warm['e2e_s']:.2f} s = {ratio:.1f}x (warm price cache)"
        )
        out.append(t)

    t = Target(
        "price requests vs (asset, window) pairs",
        "at most one successful request per distinct (asset, price window) pair of the "
        "file (cold cache)",
        evaluated_on=where,
    )
    if run and run["price_requests"].get("ok") is not None:
        ok, pairs = run["price_requests"]["ok"], run["price_window_pairs_in_file"]
        t.achieved = (
            f"{ok} successful requests ({run['price_requests']['throttled_429']} more "
            f"answered 429) for {pairs} pairs"
        )
        t.verdict = "MET" if ok <= pairs else "MISSED"
        t.by_how_much = f"{ok / pairs:.2f} requests per pair" if pairs else "no pairs"
    out.append(t)

    t = Target(
        "price stage time vs requests/rate",
        f"prices stage <= {PRICE_TIME_FACTOR:g} x requests/rate + simulator latency",
        evaluated_on=where,
    )
    prices_s = _stage(run, "prices", "seconds")
    if run and prices_s is not None:
        rate = results["config"]["price_rate"]
        latency = results["config"]["simulator_latency_ms"] / 1000
        requests = run["price_requests"]["price_stage"]
        limit = PRICE_TIME_FACTOR * requests / rate + latency
        at_most(t, prices_s, limit, " s")
        t.achieved = (
            f"{prices_s:.3f} s for {requests} requests at {rate:g} req/s (limit {limit:.3f} s)"
        )
    out.append(t)
    t = Target(
        "derived rows per input row",
        f"rows the tax and price stages leave <= {DERIVED_PER_INPUT:g} per input row",
        evaluated_on=where,
    )
    derived = (run or {}).get("derived_rows")
    if run and derived and run.get("accepted"):
        per_row = derived["total"] / run["accepted"]
        at_most(t, per_row, DERIVED_PER_INPUT, "")
        parts = ", ".join(f"{k} {v:,}" for k, v in derived.items() if k != "total")
        t.achieved = (
            f"{derived['total']:,} rows for {run['accepted']:,} transactions = "
            f"{per_row:.2f} ({parts})"
        )
    out.append(t)
    out.extend(_issue7_targets(results))
    out.extend(issue24_targets(results))
    return [asdict(x) for x in out]


E2E_VS_COPY = 2.0  # 600k end to end under 2x the time COPY FROM needs to load the rows
CPU_BUSY = 0.85  # share of all cores busy during parse and tax
MEMORY_GROWTH = 1.5  # peak worker memory, largest file vs 50k


def _issue7_targets(results: dict[str, Any]) -> list[Target]:
    out: list[Target] = []
    run, copy = _largest_run(results), results.get("copy_from")
    t = Target(
        "largest file end to end vs cqlsh COPY FROM",
        f"end to end < {E2E_VS_COPY:g}x the seconds COPY FROM needs to load the same rows",
    )
    if run and copy and copy.get("seconds"):
        t.evaluated_on = f"{run['size']} rows (cold price cache)"
        ratio = run["e2e_s"] / copy["seconds"]
        at_most(t, ratio, E2E_VS_COPY)
        t.achieved = f"{run['e2e_s']:.1f} s vs {copy['seconds']:.1f} s = {ratio:.2f}x"
    out.append(t)
    for stage in ("parse", "tax"):
        t = Target(f"CPU busy during {stage}", f">= {CPU_BUSY:.0%} of all cores")
        cpu = (run or {}).get("stages", {}).get(stage, {}).get("cpu") or {}
        if run and cpu.get("samples"):  # (no run: no samples)
            t.evaluated_on = f"{run['size']} rows ({cpu['samples']} samples of 0.5 s)"
            at_least(t, cpu["mean"] * 100, CPU_BUSY * 100, " %")
            t.achieved = f"{cpu['mean']:.0%} mean (machine-wide)"
        out.append(t)
    small = _run_of(results, 50_000)
    t = Target(
        "peak worker memory, largest file vs 50k",
        f"largest Ray worker at most {MEMORY_GROWTH:g}x the 50k run's",
    )
    if run and small and run is not small:
        big_b = run["memory"]["ray_worker_largest_bytes"]
        small_b = small["memory"]["ray_worker_largest_bytes"]
        t.evaluated_on = f"{run['size']} vs 50000 rows"
        at_most(t, big_b / small_b, MEMORY_GROWTH)
        t.achieved = (
            f"{big_b / 2**20:,.0f} MiB vs {small_b / 2**20:,.0f} MiB = {big_b / small_b:.2f}x"
        )
    out.append(t)
    t = Target(
        "peak worker heap, largest file vs 50k",
        "reported: the largest RSS minus shared pages of any Ray worker (Ray's memory guide: "
        "shared object store pages count in every process that touched them)",
    )
    big_h = ((run or {}).get("memory") or {}).get("ray_worker_largest_heap_bytes")
    small_h = ((small or {}).get("memory") or {}).get("ray_worker_largest_heap_bytes")
    if run and small and run is not small and big_h and small_h:
        ran = run["memory"].get("ray_worker_largest_heap_title")  # sampled titles, in order
        t.evaluated_on = f"{run['size']} vs 50000 rows" + (
            f" (that worker ran {ran})" if ran else ""
        )
        t.verdict = "REPORTED"
        t.achieved = (
            f"{big_h / 2**20:,.0f} MiB vs {small_h / 2**20:,.0f} MiB = {big_h / small_h:.2f}x"
        )
        t.by_how_much = (
            f"{big_h / small_h / MEMORY_GROWTH:.0%} of the {MEMORY_GROWTH:g}x asked of RSS"
        )
    out.append(t)
    return out


TOGETHER_VS_COPY = 0.7  # many users at once: aggregate rows/s vs COPY FROM's
TOGETHER_SLOWEST = 3.0  # no concurrent job slower than this x the single-user job
CHUNK_READ_SPEEDUP = 5.0  # reading a history from chunks vs today's row read


def _checked(load: dict) -> str:
    check = load.get("check") or {}
    return (
        f"table checked against the file: {check.get('loaded_rows', 0):,} rows, "
        f"{check.get('sampled_rows', 0):,} sampled rows equal "
        f"({check.get('sampled_quoted_descriptions', 0):,} with quoted descriptions)"
    )


def issue24_targets(results: dict[str, Any]) -> list[Target]:
    out: list[Target] = []
    run, copy, ds = _largest_run(results), results.get("copy_from"), results.get("dsbulk")

    t = Target("DSBulk vs cqlsh COPY FROM (second load anchor)", "reported: rows/s of each load")
    if ds and copy and copy.get("rows_per_s"):
        t.evaluated_on = f"{ds['size']} rows, canonical CSV"
        ratio = ds["rows_per_s"] / copy["rows_per_s"]
        t.achieved = (
            f"DSBulk {ds['rows_per_s']:,.0f} vs COPY {copy['rows_per_s']:,.0f} rows/s = "
            f"{ratio:.2f}x; each {_checked(ds)}"
        )
        t.verdict, t.by_how_much = "REPORTED", f"{ratio:.2f}x COPY FROM's rows/s"
    out.append(t)

    t = Target("largest file end to end vs DSBulk", "reported: the ratio to the second anchor")
    if run and ds and ds.get("seconds"):
        t.evaluated_on = f"{run['size']} rows (cold price cache)"
        ratio = run["e2e_s"] / ds["seconds"]
        t.achieved = f"{run['e2e_s']:.1f} s vs {ds['seconds']:.1f} s = {ratio:.2f}x"
        t.verdict = "REPORTED"
        t.by_how_much = f"{ratio / E2E_VS_COPY:.2f}x the {E2E_VS_COPY:g}x asked of COPY FROM"
    out.append(t)

    together = results.get("concurrent_users")
    t = Target(
        "many users at once: aggregate rows/s vs COPY FROM",
        f"users uploading at the same moment: total rows / wall >= {TOGETHER_VS_COPY:g}x "
        "COPY FROM's rows/s",
    )
    if together and copy and copy.get("rows_per_s"):
        t.evaluated_on = f"{together['users']} users x {together['rows_each']:,} rows"
        ratio = together["rows_per_s"] / copy["rows_per_s"]
        at_least(t, ratio, TOGETHER_VS_COPY)
        t.achieved = (
            f"{together['rows_per_s']:,.0f} vs {copy['rows_per_s']:,.0f} rows/s = {ratio:.2f}x "
            f"({together['rows']:,} rows in {together['wall_s']:.1f} s)"
        )
    out.append(t)

    t = Target(
        "many users at once: slowest job vs the single-user job",
        f"no job slower than {TOGETHER_SLOWEST:g}x the single-user job of the same file",
    )
    if together:
        t.evaluated_on = f"{together['users']} users x {together['rows_each']:,} rows"
        at_most(t, together["slowest_vs_single"], TOGETHER_SLOWEST)
        t.achieved = (
            f"slowest {together['slowest_e2e_s']:.1f} s vs single {together['single_user_e2e_s']:.1f}"
            f" s = {together['slowest_vs_single']:.2f}x"
        )
    out.append(t)

    tomb = results.get("tombstones")
    t = Target(
        "tombstones per live view row read (first upload)",
        "0 tombstone cells per live row reading a first upload's whole view (query tracing)",
    )
    if tomb and tomb.get("per_live_row") is not None:
        t.evaluated_on = f"user {tomb['user']} ({tomb['live_rows']:,} rows, {tomb['pages']} pages)"
        t.achieved = (
            f"{tomb['tombstone_cells']:,} tombstone cells / {tomb['live_rows']:,} live rows = "
            f"{tomb['per_live_row']:.2f}"
        )
        t.verdict = "MET" if tomb["tombstone_cells"] == 0 else "MISSED"
        t.by_how_much = (
            "none" if t.verdict == "MET" else f"{tomb['per_live_row']:.2f} per row over 0"
        )
    out.append(t)

    history = results.get("history_read")
    t = Target(
        "reading a whole history: chunks vs rows",
        f"the chunk read >= {CHUNK_READ_SPEEDUP:g}x faster than today's row read",
    )
    if history and history.get("speedup") is not None:
        t.evaluated_on = (
            f"user {history['user']} ({history['rows']:,} rows, {history['months']} months, "
            f"{history['chunks_read']} chunks), medians of {history['rounds']} reads each"
        )
        at_least(t, history["speedup"], CHUNK_READ_SPEEDUP)
        t.achieved = (
            f"row read {history['seconds']:.2f} s / chunk read {history['chunk_seconds']:.2f} s"
            f" = {history['speedup']:.2f}x"
        )
    out.append(t)

    lat = results.get("read_latency") or {}
    filtered = lat.get("filtered")
    t = Target(
        "read API p99 vs driver p99, filtered page",
        f"GET /v1/transactions?limit=100&asset=..&wallet=.. p99 <= {API_VS_DRIVER_P99:g}x the "
        "driver's p99 for the same page",
    )
    if filtered:
        t.evaluated_on = (
            f"user {lat['user']}: asset {filtered['asset']} ({filtered['asset_rows_in_file']:,} "
            f"rows), wallet {filtered['wallet']}"
        )
        ratio = filtered["api"]["p99_ms"] / filtered["driver"]["p99_ms"]
        at_most(t, ratio, API_VS_DRIVER_P99)
        t.achieved = (
            f"{filtered['api']['p99_ms']:.1f} ms vs {filtered['driver']['p99_ms']:.1f} ms = "
            f"{ratio:.2f}x"
        )
    out.append(t)
    return out
