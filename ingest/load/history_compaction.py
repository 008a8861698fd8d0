"""Compaction of a user's history chunks: a month whose published chunks pile up gets each
upload's chunks of that month merged into as few as the row and byte caps allow.

Why they pile up: every store task writes its own chunks per month (a first upload of P
partitions leaves P chunks in every month it touches), and every later upload adds its own.
Reading a month reads each of them, so a 600k-row history of P = 16 partitions would be ~1,000
small chunks instead of ~60.

Holders are kept by construction: a chunk holds the rows of one upload (history_chunks), so only
chunks of the same (month, upload) are merged, and the merged chunk is that upload's again.
Chunks of different uploads are never merged (their rows' holders would be lost); a month with
more uploads than the threshold stays above it, one compact chunk per upload.

The change is write, swap, delete: the merged chunk is written under new keys (unpublished),
then one batch of the user's manifest partition publishes it and retires the merged ones (a
single-partition batch is applied whole and isolated: a reader of the manifest sees the old
chunks or the new one, never both or neither), then the old bodies are deleted. A reader that
read the manifest before the swap and finds an old body gone reads the manifest again
(history_chunks.read_history). Keys are deterministic (the next generation after the ones
published), so a compaction killed before its swap is redone over the same keys; one killed
after its swap and before the delete leaves the old bodies unlisted (bytes no reader asks for,
not rows seen twice).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa
from cassandra.cluster import Session

from ingest.load.cassandra import execute_many
from ingest.load.chunk_codec import merge_chunks
from ingest.load.history_chunks import (
    CHUNKS_IN_FLIGHT,
    PIECES_PER_PART,
    ChunkKey,
    publish,
    published,
    read_chunks,
    write_chunks,
)

# A compacted chunk's store partition number is this plus its generation (the first compaction
# of a (month, upload) is generation 1, a compaction of that and later chunks 2, ...):
# history_chunks.chunk_part(COMPACTED_PARTITION + generation, piece), far above any store
# partition (one per parse chunk) and the conversion's (history_conversion).
COMPACTED_PARTITION = 1_000_000
STEPS_IN_FLIGHT = 4  # (month, upload) compactions run at once
DELETE_CHUNK = (
    "DELETE FROM history_chunks WHERE user_id = ? AND month = ? AND upload_id = ? AND part = ?"
)


@dataclass(frozen=True, slots=True)
class Compaction:
    """Merge `retired` (published chunks of one upload in one month) into new chunks of store
    partition `partition`."""

    month: int
    upload_id: uuid.UUID
    partition: int
    retired: tuple[ChunkKey, ...]

    @property
    def rows(self) -> int:
        return sum(k.rows for k in self.retired)


@dataclass(frozen=True, slots=True)
class CompactionReport:
    months: int  # months compacted
    retired: int  # chunks merged away
    written: int  # chunks written in their place
    rows: int  # rows the new chunks hold (each tx_id once per upload)


def generation(part: int) -> int:
    """The compaction generation of a chunk's `part` (0: written by a store task or the
    conversion)."""
    return part // PIECES_PER_PART - COMPACTED_PARTITION + 1 if is_compacted(part) else 0


def is_compacted(part: int) -> bool:
    return part // PIECES_PER_PART >= COMPACTED_PARTITION


def compaction_plan(keys: Iterable[ChunkKey], max_chunks: int) -> list[Compaction]:
    """Which chunks to merge: in each month holding more than `max_chunks` published chunks,
    each upload whose chunks there come from more than one write (store partitions, an earlier
    compaction and later ones): one write's pieces are already as few as the row and byte caps
    allow (history_chunks.month_pieces). Pure; the same manifest always gives the same plan
    (and the same new keys). `max_chunks` 0: none."""
    if max_chunks <= 0:
        return []
    by_month: dict[int, dict[uuid.UUID, list[ChunkKey]]] = defaultdict(lambda: defaultdict(list))
    for key in keys:
        by_month[key.month][key.upload_id].append(key)
    plan = []
    for month, uploads in sorted(by_month.items()):
        if sum(len(ks) for ks in uploads.values()) <= max_chunks:
            continue
        for upload_id, ks in sorted(uploads.items()):
            if len({k.part // PIECES_PER_PART for k in ks}) == 1:
                continue
            latest = max(generation(k.part) for k in ks)
            plan.append(
                Compaction(month, upload_id, COMPACTED_PARTITION + latest, tuple(sorted(ks)))
            )
    return plan


def compacted_rows(tables: Sequence[pa.Table]) -> pa.Table:
    """The rows of one upload's chunks of a month as one chunk's: each tx_id once (a retried
    store task's rows can be in two of its chunks), sorted as a chunk is."""
    return merge_chunks(tables)


def compact_history(session: Session, user_id: str, max_chunks: int) -> CompactionReport:
    """Compact the user's months holding more than `max_chunks` published chunks (module doc).
    Run where no other writer publishes this user's chunks: the store stage's end (one job per
    user at a time). Returns what changed."""
    plan = compaction_plan(published(session, user_id), max_chunks)

    def run(step: Compaction) -> tuple[int, int]:
        merged = compacted_rows(read_chunks(session, user_id, step.retired))
        new_keys = write_chunks(session, user_id, step.upload_id, step.partition, merged)
        publish(session, user_id, new_keys, retire=step.retired)
        delete_bodies(session, user_id, step.retired)
        return len(new_keys), merged.num_rows

    # steps touch disjoint (month, upload) chunks: a few at once (decoding and encoding release
    # the GIL, the rest is waiting on the node)
    with ThreadPoolExecutor(STEPS_IN_FLIGHT, thread_name_prefix="compact") as pool:
        done = list(pool.map(run, plan))
    return CompactionReport(
        months=len({s.month for s in plan}),
        retired=sum(len(s.retired) for s in plan),
        written=sum(n for n, _ in done),
        rows=sum(r for _, r in done),
    )


def delete_bodies(session: Session, user_id: str, keys: Sequence[ChunkKey]) -> None:
    """The bodies of retired chunks (no longer in the manifest: no new reader asks for them)."""
    execute_many(
        session,
        DELETE_CHUNK,
        [(user_id, k.month, k.upload_id, k.part) for k in keys],
        concurrency=CHUNKS_IN_FLIGHT,
    )
