"""The tax stage's one composition (ingest/pipeline/tax/stage.py) over in-memory ports, in process:
no Ray, no Cassandra. The same code a job runs on Ray over Cassandra."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from devtools.generate import generate
from ingest.pipeline.executors import InProcessExecutor
from ingest.pipeline.tax import stage as tax_stage
from ingest.pipeline.tax.cli import load_parsed, load_valued
from ingest.pipeline.tax.memory import MemoryViews, NoPrices, memory_ports
from ingest.pipeline.tax.options import TaxOptions
from ingest.pipeline.tax.ports import TaxPorts
from ingest.pipeline.tax.stage import TaxRun, compose_tax
from ingest.tax.engine import compute
from ingest.vocabulary import Method, Pooling


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("stage") / "koinly.csv"
    generate(1200, "koinly", seed=21, out=path, years=3.0, user_values="all")
    return path


def views_of(ports: TaxPorts) -> MemoryViews:
    assert isinstance(ports.views, MemoryViews)
    return ports.views


@pytest.fixture(params=["default", 100], ids=["periods", "month-periods"])
def period_rows(request, monkeypatch) -> None:
    """The stage's periods as shipped (tax years: this history's shards are small), or ended at
    month starts every 100 rows too (SHARD_PERIOD_ROWS), as a big shard's are."""
    if request.param != "default":
        monkeypatch.setattr(tax_stage, "SHARD_PERIOD_ROWS", request.param)


@pytest.mark.parametrize(
    "method,pooling", [(Method.FIFO, Pooling.PER_WALLET), (Method.UK, Pooling.UNIVERSAL)]
)
def test_the_stage_in_process_equals_the_single_process_engine(
    export, method, pooling, period_rows
):
    options = TaxOptions(method, pooling, "USD")
    ports = memory_ports(load_parsed([export]))
    result = compose_tax(ports, InProcessExecutor(), TaxRun(options, label="t"))
    staged = views_of(ports).tax_result(method=method, pooling=pooling, currency="USD")
    oracle = compute(load_valued([export], currency="USD"), method=method, pooling=pooling)
    assert staged.disposals == oracle.disposals
    assert staged.income == oracle.income
    assert staged.balances == oracle.balances
    assert staged.years == oracle.years
    assert staged.findings == oracle.findings
    assert staged.per_tx == oracle.per_tx  # folded from the view cells the periods wrote
    assert result.shards_computed == result.shards
    assert 0 < result.rows_held < result.history_rows  # a shard walked a period at a time


def touched_ranges(rows: pa.Table) -> dict[str, tuple[float, float]]:
    """What an upload of ``rows`` touched: asset -> (earliest, latest) epoch seconds."""
    out: dict[str, tuple[float, float]] = {}
    for name in ("sent_asset", "received_asset", "fee_asset"):
        for asset, ts in zip(rows.column(name).to_pylist(), rows.column("timestamp").to_pylist()):
            if asset is not None:
                lo, hi = out.get(asset, (ts.timestamp(), ts.timestamp()))
                out[asset] = (min(lo, ts.timestamp()), max(hi, ts.timestamp()))
    return out


def test_an_upload_resumed_from_checkpoints_equals_a_recompute(export, period_rows):
    options = TaxOptions(Method.FIFO, Pooling.PER_WALLET, "USD")
    rows = load_parsed([export])
    ts = rows.column("timestamp")
    cut = pc.max(ts).as_py().replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    late = pc.greater_equal(ts, pa.scalar(cut, ts.type))
    early_rows, late_rows = rows.filter(pc.invert(late)), rows.filter(late)
    assert early_rows.num_rows and late_rows.num_rows

    # the first upload, then the later rows as a second one over the same stored state
    ports = memory_ports(early_rows)
    compose_tax(ports, InProcessExecutor(), TaxRun(options, label="1", checkpoints=True))
    views = views_of(ports)
    assert views.checkpoints.stored
    second = TaxPorts(
        history=memory_ports(rows).history,
        prices=ports.prices,
        checkpoints=views.checkpoints,
        views=views,
    )
    upload = TaxRun(options, label="2", touched=touched_ranges(late_rows), checkpoints=True)
    resumed = compose_tax(second, InProcessExecutor(), upload)
    assert resumed.shards_resumed >= 1 and resumed.rows_computed < rows.num_rows

    full = memory_ports(rows)
    compose_tax(full, InProcessExecutor(), TaxRun(options, label="full"))
    assert views.totals == views_of(full).totals
    assert views.balances == views_of(full).balances


@dataclass
class LoggedPrices(NoPrices):
    """No prices, but every load a shard asks for is logged (a period's rows being valued)."""

    log: list[tuple[str, datetime]] = field(default_factory=list)

    def load(self, assets: Sequence[str], start: datetime, end: datetime) -> pa.Table | None:
        self.log.append(("value", start + timedelta(days=2)))  # the period's first row
        return None


@dataclass
class LoggedViews(MemoryViews):
    log: list[tuple[str, datetime]] = field(default_factory=list)

    def write(self, shard, rows, anchored, per_tx) -> None:  # type: ignore[no-untyped-def]
        self.log.append(("write", pc.max(rows.column("timestamp")).as_py()))
        super().write(shard, rows, anchored, per_tx)


@pytest.fixture(scope="module")
def unvalued_export(tmp_path_factory) -> Path:
    """Transfers and fees without a value in the file: valued from prices (LoggedPrices)."""
    path = tmp_path_factory.mktemp("stage") / "koinly-some.csv"
    generate(1200, "koinly", seed=21, out=path, years=3.0, user_values="some")
    return path


def test_a_shard_writes_each_periods_cells_before_it_values_the_next(unvalued_export):
    """Years of history: each shard's periods are valued and written in turn, every row of a
    period written before the next period's rows are valued (the in-process executor runs the
    shards one after another: a shard's first period starts earlier than its predecessor's
    last)."""
    rows = load_parsed([unvalued_export])
    base = memory_ports(rows)
    log: list[tuple[str, datetime]] = []
    prices, views = LoggedPrices(log=log), LoggedViews(checkpoints=base.checkpoints, log=log)
    ports = TaxPorts(history=base.history, prices=prices, checkpoints=base.checkpoints, views=views)
    options = TaxOptions(Method.FIFO, Pooling.PER_WALLET, "USD")
    result = compose_tax(ports, InProcessExecutor(), TaxRun(options, label="s"))
    assert result.rows_held < result.history_rows
    values = [i for i, (kind, _) in enumerate(log) if kind == "value"]
    periods = 0
    for here, after in zip(values, values[1:]):
        if log[after][1] < log[here][1]:  # the next shard's first period
            continue
        periods += 1
        written = [at for kind, at in log[here:after] if kind == "write"]
        assert written, "a period valued but none of its cells written before the next"
        assert max(written) < log[after][1]  # before the next period's first row
    assert periods >= 2  # a period per tax year
