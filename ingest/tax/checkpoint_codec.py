"""A tax checkpoint's stored body: plain versioned data, never a pickle (pure).

The body is ``MAGIC``, the format version (2 bytes, little-endian), the length of the JSON text
(8 bytes) and that text zstd-compressed. The JSON document holds the checkpoint as tables of
columns (one list per field, one entry per row), so a reader in any language can take it apart:

- ``walk``: null, or the walk state at the period start: ``pools`` (key, kind, totals, the
  next insertion number), ``pool_lots`` (per lot: its pool, quantity, cost, acquired, basis
  known, sequence, origin transaction, the order key it entered its pool with and its insertion
  number, in the pool's heap order), ``in_flight`` (transfer ids) and ``flight_lots`` (per lot:
  its transfer), ``ledger`` (wallet, quantity), ``holdings``, ``negative``, ``early_arrivals``
  (transfer, wallet) and ``seq``. Which pool class holds the lots, and how it orders lots added
  later, comes from the method on restore (engine._AssetWalk.restore);
- ``transfers`` (matches crossing the start), ``near_misses`` (withdrawal/deposit pairs only the
  fee limit keeps apart, crossing the start), ``carried`` (UK 30-day matches: acquisition day,
  quantity, cost), ``years`` (the period's totals per tax year) and ``findings``.

Decimals are their exact strings (``str(Decimal)``: digits and exponent round-trip), times are
microseconds since the epoch, absent values null.

FORMAT_VERSION is raised whenever the document changes shape, with a step in ``MIGRATIONS``
turning a document of the previous version into the new one (``migrate`` applies them in
order). A body of a version with no path to the current one (format 1: the pickles of migration
009, which are never read again), of a newer version than this code, or one that does not decode,
raises CheckpointFormatError: the store calls it unreadable and the shard computes from its
first row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa

from ingest.tax.checkpoints import AssetCheckpoint
from ingest.tax.engine import WalkState
from ingest.tax.methods.base import Lot, PoolState
from ingest.tax.reconcile import NearMiss, TransferMatch
from ingest.tax.records import Finding, YearSummary
from ingest.tax.years import datetime_from_micros, micros_from_datetime

MAGIC = b"LFTC"
FORMAT_VERSION = 2  # 1: migration 009's zstd pickles, never read again
_HEADER = len(MAGIC) + 2 + 8

Document = dict[str, Any]
# version -> the step turning a document of that version into one of the next version
MIGRATIONS: dict[int, Callable[[Document], Document]] = {}


class CheckpointFormatError(ValueError):
    """A body this code cannot read: not a checkpoint, corrupted, or of a version with no
    migration path to FORMAT_VERSION."""


def migrate(document: Document, version: int) -> Document:
    """``document`` of format ``version`` as a FORMAT_VERSION document, step by step."""
    if version > FORMAT_VERSION:
        raise CheckpointFormatError(
            f"checkpoint format {version} is newer than this code's {FORMAT_VERSION}"
        )
    while version < FORMAT_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise CheckpointFormatError(
                f"checkpoint format {version} has no migration to {version + 1}"
            )
        document, version = step(document), version + 1
    return document


def encode_checkpoint(checkpoint: AssetCheckpoint) -> bytes:
    raw = json.dumps(_document(checkpoint), separators=(",", ":")).encode()
    return (
        MAGIC
        + FORMAT_VERSION.to_bytes(2, "little")
        + len(raw).to_bytes(8, "little")
        + pa.Codec("zstd").compress(raw, asbytes=True)
    )


def decode_checkpoint(body: bytes) -> AssetCheckpoint:
    if len(body) < _HEADER or body[: len(MAGIC)] != MAGIC:
        raise CheckpointFormatError("not a checkpoint body of this project")
    version = int.from_bytes(body[len(MAGIC) : len(MAGIC) + 2], "little")
    size = int.from_bytes(body[len(MAGIC) + 2 : _HEADER], "little")
    try:
        raw = pa.Codec("zstd").decompress(body[_HEADER:], decompressed_size=size, asbytes=True)
        document = json.loads(raw)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise CheckpointFormatError(f"checkpoint body does not decompress: {exc}") from exc
    document = migrate(document, version)
    try:
        return _checkpoint(document)
    except (KeyError, TypeError, ValueError, InvalidOperation, AttributeError) as exc:
        raise CheckpointFormatError(f"checkpoint document does not decode: {exc!r}") from exc


# --- columns ---------------------------------------------------------------------------------------
# A table is a list of (field, type); a type names how a value is written: "str", "int", "bool"
# as JSON; "dec" an exact decimal string; "time" microseconds; "key" an order key (a tuple of
# decimals, integers and nulls); "?" after a type: the value may be null.
Spec = Sequence[tuple[str, str]]

LOT: Spec = (
    ("quantity", "dec"),
    ("cost", "dec"),
    ("acquired_us", "int?"),
    ("basis_known", "bool"),
    ("seq", "int"),
    ("origin_tx_id", "str"),
)
POOL_LOT: Spec = (("pool", "str"), *LOT, ("order_key", "key"), ("added", "int"))
FLIGHT_LOT: Spec = (("transfer", "str"), *LOT)
POOL: Spec = (
    ("key", "str"),
    ("kind", "str"),
    ("quantity", "dec"),
    ("cost", "dec"),
    ("unknown_quantity", "dec"),
    ("next_added", "int"),
)
LEDGER: Spec = (("wallet", "str"), ("quantity", "dec"))
EARLY_ARRIVAL: Spec = (("transfer", "str"), ("wallet", "str"))
TRANSFER: Spec = (
    ("withdrawal_tx_id", "str"),
    ("deposit_tx_id", "str"),
    ("asset", "str"),
    ("from_wallet", "str"),
    ("to_wallet", "str"),
    ("withdrawn_us", "int"),
    ("deposited_us", "int"),
    ("sent_quantity", "dec"),
    ("received_quantity", "dec"),
    ("hash_matched", "bool"),
)
NEAR_MISS: Spec = (
    ("asset", "str"),
    ("withdrawal_tx_id", "str"),
    ("deposit_tx_id", "str"),
    ("withdrawn_us", "int"),
    ("deposited_us", "int"),
    ("lost_share", "dec"),
    ("withdrawal_note", "str"),
    ("deposit_note", "str"),
)
CARRIED: Spec = (("day", "int"), ("quantity", "dec"), ("cost", "dec"))
YEAR: Spec = (
    ("year", "str"),
    ("proceeds", "dec"),
    ("cost_basis", "dec"),
    ("short_term_gain", "dec?"),
    ("long_term_gain", "dec?"),
    ("income", "dec"),
    ("gain", "dec"),
)
FINDING: Spec = (
    ("kind", "str"),
    ("asset", "str?"),
    ("wallet", "str?"),
    ("timestamp", "time?"),
    ("tx_id", "str?"),
    ("detail", "str"),
)


def _encode_value(value: Any, kind: str) -> Any:
    if value is None:
        if not kind.endswith("?"):
            raise TypeError(f"a {kind} value is missing")
        return None
    kind = kind.rstrip("?")
    if kind == "dec":
        return str(Decimal(value))
    if kind == "time":
        assert isinstance(value, datetime)
        return micros_from_datetime(value)
    if kind == "key":
        return [_encode_key_part(part) for part in value]
    return value


def _encode_key_part(part: Any) -> Any:
    if part is None or (isinstance(part, int) and not isinstance(part, bool)):
        return part
    if isinstance(part, Decimal):
        return str(part)
    raise TypeError(f"an order key holds a {type(part).__name__}: decimals, integers, nulls only")


def _decode_value(value: Any, kind: str) -> Any:
    if value is None:
        if not kind.endswith("?"):
            raise ValueError(f"a {kind} value is missing")
        return None
    kind = kind.rstrip("?")
    if kind == "dec":
        if not isinstance(value, str):
            raise TypeError(f"a decimal is written as a string, not {value!r}")
        return Decimal(value)
    if kind == "time":
        return datetime_from_micros(_typed(value, int))
    if kind == "key":
        return tuple(Decimal(p) if isinstance(p, str) else p for p in value)
    return _typed(value, {"str": str, "int": int, "bool": bool}[kind])


def _typed(value: Any, kind: type) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"expected {kind.__name__}, found {value!r}")
    return value


def _columns(rows: Iterable[Mapping[str, Any]], spec: Spec) -> dict[str, list]:
    out: dict[str, list] = {name: [] for name, _ in spec}
    for row in rows:
        for name, kind in spec:
            out[name].append(_encode_value(row[name], kind))
    return out


def _rows(columns: Mapping[str, list], spec: Spec) -> list[dict[str, Any]]:
    lengths = {len(columns[name]) for name, _ in spec}
    if len(lengths) > 1:
        raise ValueError(f"columns of unequal length: {sorted(lengths)}")
    count = lengths.pop() if lengths else 0
    decoded = {name: [_decode_value(v, kind) for v in columns[name]] for name, kind in spec}
    return [{name: decoded[name][i] for name, _ in spec} for i in range(count)]


def _fields(record: Any, spec: Spec, **extra: Any) -> dict[str, Any]:
    return {**{name: getattr(record, name) for name, _ in spec if name not in extra}, **extra}


def _lot(row: Mapping[str, Any]) -> Lot:
    return Lot(**{name: row[name] for name, _ in LOT})


# --- the document ------------------------------------------------------------------------------------
def _document(checkpoint: AssetCheckpoint) -> Document:
    return {
        "key": checkpoint.key,
        "start_us": checkpoint.start_us,
        "walk": None if checkpoint.walk is None else _walk_document(checkpoint.walk),
        "transfers": _columns((_fields(m, TRANSFER) for m in checkpoint.transfers), TRANSFER),
        "near_misses": _columns((_fields(n, NEAR_MISS) for n in checkpoint.near_misses), NEAR_MISS),
        "carried": _columns(
            (
                {"day": day, "quantity": quantity, "cost": cost}
                for day, (quantity, cost) in checkpoint.carried.items()
            ),
            CARRIED,
        ),
        "years": _columns(
            (_fields(s, YEAR, year=year) for year, s in checkpoint.years.items()), YEAR
        ),
        "findings": _columns((_fields(f, FINDING) for f in checkpoint.findings), FINDING),
    }


def _walk_document(walk: WalkState) -> Document:
    return {
        "pools": _columns(
            (_fields(p, POOL, key=key) for key, p in walk.pools.items()),
            POOL,
        ),
        "pool_lots": _columns(
            (
                _fields(lot, POOL_LOT, pool=key, order_key=order_key, added=added)
                for key, p in walk.pools.items()
                for lot, order_key, added in zip(p.lots, p.order_keys, p.added)
            ),
            POOL_LOT,
        ),
        "in_flight": list(walk.in_flight),
        "flight_lots": _columns(
            (
                _fields(lot, FLIGHT_LOT, transfer=transfer)
                for transfer, lots in walk.in_flight.items()
                for lot in lots
            ),
            FLIGHT_LOT,
        ),
        "ledger": _columns(
            ({"wallet": w, "quantity": q} for w, q in walk.ledger.items()),
            LEDGER,
        ),
        "holdings": _encode_value(walk.holdings, "dec"),
        "negative": list(walk.negative),
        "early_arrivals": _columns(
            ({"transfer": t, "wallet": w} for t, w in walk.early_arrivals.items()),
            EARLY_ARRIVAL,
        ),
        "seq": walk.seq,
    }


def _checkpoint(document: Document) -> AssetCheckpoint:
    walk = document["walk"]
    return AssetCheckpoint(
        key=_typed(document["key"], str),
        start_us=_typed(document["start_us"], int),
        walk=None if walk is None else _walk(walk),
        transfers=[TransferMatch(**row) for row in _rows(document["transfers"], TRANSFER)],
        near_misses=[NearMiss(**row) for row in _rows(document["near_misses"], NEAR_MISS)],
        carried={
            row["day"]: (row["quantity"], row["cost"])
            for row in _rows(document["carried"], CARRIED)
        },
        years={row.pop("year"): YearSummary(**row) for row in _rows(document["years"], YEAR)},
        findings=[Finding(**row) for row in _rows(document["findings"], FINDING)],
    )


def _walk(document: Document) -> WalkState:
    pools = {row.pop("key"): PoolState(**row) for row in _rows(document["pools"], POOL)}
    for row in _rows(document["pool_lots"], POOL_LOT):
        pool = pools[row["pool"]]
        pool.lots.append(_lot(row))
        pool.order_keys.append(row["order_key"])
        pool.added.append(row["added"])
    in_flight: dict[str, list[Lot]] = {
        _typed(transfer, str): [] for transfer in document["in_flight"]
    }
    for row in _rows(document["flight_lots"], FLIGHT_LOT):
        in_flight[row["transfer"]].append(_lot(row))
    return WalkState(
        pools=pools,
        ledger={row["wallet"]: row["quantity"] for row in _rows(document["ledger"], LEDGER)},
        holdings=_decode_value(document["holdings"], "dec"),
        negative=[_typed(key, str) for key in document["negative"]],
        in_flight=in_flight,
        early_arrivals={
            row["transfer"]: row["wallet"]
            for row in _rows(document["early_arrivals"], EARLY_ARRIVAL)
        },
        seq=_typed(document["seq"], int),
    )
