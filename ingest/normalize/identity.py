"""Idempotent transaction ids.

tx_id = blake2b-128 (32 hex chars) of (user, source format, identity key, occurrence):
- the identity key is the exchange's own id where it has one ("x:<Coinbase ID>",
  "x:<Kraken refid>"), the group key of a multi-row transaction ("g:<refid>" or
  "g:<Binance user|time|account|family>"), else the normalized content of the row ("c:...": the
  canonical values, so re-exports that only format numbers or dates differently keep their ids);
- the occurrence is the rank, by line, of the row among rows with the same key in the file: two
  identical rows get two ids, and rows added to the file elsewhere change no existing id.
The file name and line are not part of it: re-uploading a file (or a renamed copy) gives the
same ids, so loading is an idempotent upsert.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PERSON = b"ledgerflow-tx"  # domain separation from other blake2b uses
SEPARATOR = "\x1f"  # unit separator: cannot occur in the parsed text fields' meaning


def tx_id(user_id: str, source: str, key: str, occurrence: int = 0) -> str:
    h = hashlib.blake2b(digest_size=16, person=PERSON)
    h.update(
        SEPARATOR.join((user_id, source, key, str(occurrence))).encode("utf-8", "surrogatepass")
    )
    return h.hexdigest()


def tx_ids(user_id: str, source: str, keys: Sequence[str], occurrences: Sequence[int]) -> list[str]:
    """tx_id for many keys: the (user, source) prefix is hashed once and copied."""
    base = hashlib.blake2b(digest_size=16, person=PERSON)
    base.update(SEPARATOR.join((user_id, source, "")).encode("utf-8", "surrogatepass"))
    out = []
    for key, occurrence in zip(keys, occurrences):
        h = base.copy()
        h.update(f"{key}{SEPARATOR}{occurrence}".encode("utf-8", "surrogatepass"))
        out.append(h.hexdigest())
    return out


def content_key(columns: Sequence[pa.Array], prefix: str = "c:") -> pa.Array:
    """Vectorized normalized-content key: the columns as text (null -> ''), joined."""
    texts = [
        pc.fill_null(
            pc.cast(c.cast(pa.int64()) if pa.types.is_timestamp(c.type) else c, pa.string()), ""
        )
        for c in columns
    ]
    return pc.binary_join_element_wise(prefix, *texts, SEPARATOR)


def occurrence_index(keys: pa.Array, lines: pa.Array) -> np.ndarray:
    """Rank of each row among rows with an equal key, ordered by line (0 for the first).
    Most keys are unique: only the repeated ones are sorted."""
    n = len(keys)
    ranks = np.zeros(n, dtype=np.int64)
    if n < 2:
        return ranks
    if len(pc.unique(keys)) == n:
        return ranks
    counts = pa.table({"k": keys}).group_by("k").aggregate([("k", "count")])
    repeated = counts.filter(pc.greater(counts.column("k_count"), 1)).column("k")
    if len(repeated) == 0:
        return ranks
    where = np.flatnonzero(pc.is_in(keys, value_set=repeated).to_numpy(zero_copy_only=False))
    sub_keys, sub_lines = keys.take(pa.array(where)), lines.take(pa.array(where))
    order = pc.sort_indices(
        pa.table({"k": sub_keys, "l": sub_lines}),
        sort_keys=[("k", "ascending"), ("l", "ascending")],
    ).to_numpy()
    sorted_keys = sub_keys.take(pa.array(order))
    m = len(where)
    new_run = np.ones(m, dtype=bool)
    new_run[1:] = pc.not_equal(sorted_keys[1:], sorted_keys[:-1]).to_numpy(zero_copy_only=False)
    run_start = np.maximum.accumulate(np.where(new_run, np.arange(m), 0))
    ranks[where[order]] = np.arange(m) - run_start
    return ranks
