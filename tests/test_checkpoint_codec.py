"""A checkpoint's stored body is plain versioned data (pure: no Cassandra): every checkpoint a
run makes comes back equal, its document is JSON tables of columns with exact decimals, a body
of an older or newer format or a corrupted one is refused with CheckpointFormatError, a pickled
body of migration 009 is refused without being unpickled, and format migrations run step by step."""

from __future__ import annotations

import json
import pickle
from decimal import Decimal

import pyarrow as pa
import pytest

from ingest.tax import checkpoint_codec as codec
from ingest.tax.checkpoint_codec import (
    FORMAT_VERSION,
    MAGIC,
    CheckpointFormatError,
    decode_checkpoint,
    encode_checkpoint,
    migrate,
)
from ingest.tax.checkpoints import AssetCheckpoint
from ingest.tax.engine import WalkState
from ingest.tax.methods.base import Lot, PoolState
from ingest.tax.reconcile import NearMiss
from tests.fixtures.tax.builders import valued_table
from tests.fixtures.tax.synthetic import synthetic_history
from tests.test_tax_checkpoints import boundary_rows, full_run
from tests.test_tax_shards import ALL


def made_checkpoints(tx: pa.Table, method: str, pooling: str) -> list[AssetCheckpoint]:
    results, _starts, _plan = full_run(tx, method, pooling)
    return [c for r in results for c in r.checkpoints]


@pytest.fixture(scope="module")
def synthetic() -> pa.Table:
    return synthetic_history(3000, assets=8, seed=11)


@pytest.mark.parametrize("method,pooling", ALL)
def test_every_checkpoint_a_run_makes_decodes_equal(synthetic, method, pooling):
    for tx in (synthetic, valued_table(boundary_rows())):
        checkpoints = made_checkpoints(tx, method, pooling)
        assert any(c.walk is not None and c.walk.pools for c in checkpoints)
        for checkpoint in checkpoints:
            assert decode_checkpoint(encode_checkpoint(checkpoint)) == checkpoint


def payload(body: bytes) -> dict:
    size = int.from_bytes(body[6:14], "little")
    return json.loads(pa.Codec("zstd").decompress(body[14:], decompressed_size=size, asbytes=True))


def sample() -> AssetCheckpoint:
    lot = Lot(
        Decimal("0.100000000000000001"), Decimal("12.5E-3"), 1_700_000_000_000_000, True, 3, "t1"
    )
    heap = PoolState(
        "heap",
        Decimal("0.100000000000000001"),
        Decimal("0.0125"),
        lots=[lot],
        order_keys=[(Decimal("-0.124999999999999998750"), 1_700_000_000_000_000, 3)],
        added=[7],
        next_added=9,
    )
    walk = WalkState(
        pools={"exchange": heap},
        ledger={"exchange": Decimal("0.100000000000000001"), "ledger": Decimal("-2")},
        holdings=Decimal("-1.899999999999999999"),
        negative=["ledger"],
        in_flight={"w1": [Lot(Decimal(1), Decimal(0), None, False, 4, "t2")], "w2": []},
        early_arrivals={"w3": "ledger"},
        seq=5,
    )
    return AssetCheckpoint(key="BTC", start_us=1_735_689_600_000_000, walk=walk)


def test_the_body_is_versioned_json_columns_with_exact_decimals():
    checkpoint = sample()
    body = encode_checkpoint(checkpoint)
    assert body[:4] == MAGIC and int.from_bytes(body[4:6], "little") == FORMAT_VERSION
    document = payload(body)
    lots = document["walk"]["pool_lots"]
    assert lots["quantity"] == ["0.100000000000000001"] and lots["cost"] == ["0.0125"]
    assert lots["order_key"] == [["-0.124999999999999998750", 1_700_000_000_000_000, 3]]
    assert document["walk"]["pools"]["kind"] == ["heap"]  # the class comes from the method
    assert document["walk"]["in_flight"] == ["w1", "w2"]
    assert decode_checkpoint(body) == checkpoint


def test_near_misses_crossing_the_start_round_trip():
    checkpoint = sample()
    checkpoint.near_misses = [
        NearMiss(
            "SOL",
            "w",
            "d",
            1_735_686_000_000_000,
            1_735_693_200_000_000,
            Decimal("0.075"),
            "near miss: the deposit ... (fee 7.5% > 5% limit)",
            "near miss: the withdrawal ... (fee 7.5% > 5% limit)",
        )
    ]
    body = encode_checkpoint(checkpoint)
    assert payload(body)["near_misses"]["lost_share"] == ["0.075"]
    assert decode_checkpoint(body) == checkpoint


def with_version(body: bytes, version: int) -> bytes:
    return body[:4] + version.to_bytes(2, "little") + body[6:]


@pytest.mark.parametrize("version", [1, FORMAT_VERSION + 1])
def test_a_body_of_an_older_or_newer_format_is_refused(version):
    with pytest.raises(CheckpointFormatError, match=f"format {version}"):
        decode_checkpoint(with_version(encode_checkpoint(sample()), version))


def test_a_corrupted_body_is_refused():
    body = bytearray(encode_checkpoint(sample()))
    body[20:40] = bytes(20)
    with pytest.raises(CheckpointFormatError):
        decode_checkpoint(bytes(body))
    with pytest.raises(CheckpointFormatError):
        decode_checkpoint(encode_checkpoint(sample())[:-5])


def test_a_document_of_the_wrong_shape_is_refused():
    document = codec._document(sample())
    document["walk"]["pool_lots"]["cost"] = [12.5]  # a float: not an exact decimal
    raw = json.dumps(document).encode()
    body = (
        MAGIC
        + FORMAT_VERSION.to_bytes(2, "little")
        + len(raw).to_bytes(8, "little")
        + pa.Codec("zstd").compress(raw, asbytes=True)
    )
    with pytest.raises(CheckpointFormatError, match="decimal"):
        decode_checkpoint(body)


UNPICKLED: list[str] = []


class Trap:
    def __reduce__(self):
        return (UNPICKLED.append, ("ran",))


def test_a_pickled_body_of_migration_009_is_refused_without_unpickling():
    raw = pickle.dumps(Trap())
    old_body = len(raw).to_bytes(8, "little") + pa.Codec("zstd").compress(raw, asbytes=True)
    with pytest.raises(CheckpointFormatError):
        decode_checkpoint(old_body)
    assert UNPICKLED == []


def test_migrations_run_step_by_step_up_to_the_current_format(monkeypatch):
    monkeypatch.setattr(codec, "FORMAT_VERSION", 4)
    monkeypatch.setattr(
        codec,
        "MIGRATIONS",
        {
            2: lambda d: {**d, "steps": d["steps"] + [3]},
            3: lambda d: {**d, "steps": d["steps"] + [4]},
        },
    )
    assert migrate({"steps": [2]}, 2) == {"steps": [2, 3, 4]}
    assert migrate({"steps": [3]}, 3) == {"steps": [3, 4]}
    assert migrate({"steps": [4]}, 4) == {"steps": [4]}
    with pytest.raises(CheckpointFormatError, match="format 1 has no migration to 2"):
        migrate({}, 1)
    with pytest.raises(CheckpointFormatError, match="newer"):
        migrate({}, 5)
