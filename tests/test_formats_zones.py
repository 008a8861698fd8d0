"""`tz` (the API's tz=, the CLI's --tz) applies to zone-less timestamps only: every header version
declares whether its timestamps carry their zone (FormatSpec.zoned), and a column that is UTC
by its name or by the exchange's documentation is never re-read as local time."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ingest.extract.formats import FORMATS
from ingest.extract.parse import parse_local_file

FIXTURES = Path(__file__).parent / "fixtures" / "formats"
TOKYO = timedelta(hours=9)  # Asia/Tokyo: UTC+9 all year, no daylight saving
# Fixtures whose timestamps are zone-less (or say so per row or on a preamble line): what tz
# shifts, per row.
ZONE_LESS = {
    "binance_2025.csv": {TOKYO},  # "Time": the zone picked when the statement was made
    "binance_auto_invest.csv": {TOKYO},
    "okx_trades.csv": {TOKYO},
    "okx_trades_2023.csv": {TOKYO},
    "okx_trades_2025.csv": {timedelta(0)},  # the preamble line states 'Time Zone:UTC+0'
    "okx_funding.csv": {TOKYO},
    "okx_funding_2025.csv": {timedelta(0)},  # ... and here too
    "okex_2020.csv": {TOKYO, timedelta(0)},  # a time ending in ' CST' carries +08:00
    "kucoin_fills.csv": {TOKYO},  # the fills API's tradeCreatedAt as written, no zone
    "coinbase_2017.csv": {TOKYO},  # US dates without a zone
    "coinbase_2019.csv": {TOKYO},
    "bitvavo.csv": {timedelta(0)},  # each row names its zone in Timezone
    "bitvavo_2023.csv": {timedelta(0)},
    "bitvavo_fees.csv": {timedelta(0)},
}


def test_every_version_declares_whether_its_timestamps_have_a_zone() -> None:
    undeclared = [name for name, spec in FORMATS.items() if spec.zoned is None]
    assert undeclared == []


# Fixtures whose every row is skipped or rejected (nothing to shift): only the declaration counts.
NOTHING_KEPT = {"binance_eth2_staking.csv"}  # ETH -> BETH is one holding: every row skipped


def shift(fixture: str) -> set[timedelta]:
    """How far tz=Asia/Tokyo moves each parsed timestamp."""
    plain = parse_local_file(FIXTURES / fixture, user_id="u")
    local = parse_local_file(FIXTURES / fixture, user_id="u", tz="Asia/Tokyo")
    assert plain.table.num_rows == local.table.num_rows > 0
    return {
        a - b
        for a, b in zip(
            plain.table.column("timestamp").to_pylist(), local.table.column("timestamp").to_pylist()
        )
    }


@pytest.mark.parametrize(
    "fixture",
    sorted(p.name for p in FIXTURES.iterdir() if p.name != "mapped.csv"),
)
def test_tz_moves_zone_less_timestamps_only(fixture: str) -> None:
    version = parse_local_file(FIXTURES / fixture, user_id="u").version
    expected = ZONE_LESS.get(fixture, {timedelta(0)})
    if fixture not in NOTHING_KEPT:
        assert shift(fixture) == expected, version
    assert FORMATS[version].zoned is (fixture not in ZONE_LESS), version
