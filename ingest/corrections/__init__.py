"""Corrections as data (issue 21): what a user changes about their history, recorded apart from
the uploaded rows (which stay as uploaded) and applied as an overlay.

Built here:
- `kinds`: one frozen dataclass per correction kind (edit type/label/fiat value, cost basis of a
  deposit from outside, ignore/un-ignore, mark/unmark an own transfer, add/delete a transaction by
  hand, delete an upload, rename/merge a wallet, undo), keyed by the stable tx_id; validation
  returning `Problem(field, message)`; the JSON form the store keeps.
- `overlay`: `apply_corrections(history, corrections, uploads_of=...)` -> `Overlay` (corrected
  canonical table, forced and forbidden transfer pairs, stated cost bases, corrections that
  changed nothing); `touched_from(...)` -> earliest timestamp per asset a set of corrections
  changes. Pure: no Ray, no Cassandra.
- `store`: the `corrections` table (migration 012): record, list in order, undo, audit listing;
  and which uploads hold each stored row (read from the history chunks, each of one upload),
  which deleting an upload needs.

What the wiring step (on the ports of issue 20) must do:
- history source: read the user's corrections (`store.list_corrections`) and the upload
  membership of the rows (`store.uploads_of`), serve `apply_corrections(...).history` instead of
  the raw rows, and hand `forced_transfers`, `forbidden_transfers` and `cost_basis` to the tax
  engine: reconcile matches the forced pairs first and outside its window/fee/hash tests, never
  matches a forbidden pair, and an unmatched deposit with a stated basis in the reporting
  currency is acquired at that basis (another currency: a finding, basis unknown);
- store stage: write each upload's rows as its own history chunks
  (ingest/load/history_chunks.py), so a row uploaded twice is held by both uploads;
- incremental planner: a correction job's cutoffs are `touched_from(history, corrections,
  new_ids)` (treated like new rows at those times), and the checkpoint digests must cover the
  corrected rows and the pairs/bases naming them, so a stale checkpoint is not reused;
- API (pydantic models mapping to these dataclasses; `problems_in_history` -> 4xx naming the
  field) and the page.
"""
