"""The canonical column list is defined once (ingest/normalize/canonical.py) and the named
subsets derive from it; what depends on an order says so (pure)."""

from __future__ import annotations

from ingest.extract.formats.base import DRAFT_SCHEMA
from ingest.extract.parse import CONTENT_COLUMNS
from ingest.load.views import VIEW_COLUMNS
from ingest.normalize.canonical import (
    CANONICAL_COLUMNS,
    SIDE_COLUMNS,
    STATED_COLUMNS,
    VALUED_SCHEMA,
)
from ingest.tax.events import REQUIRED_COLUMNS


def test_the_content_key_hashes_the_columns_every_stored_id_was_made_with():
    # A row's id derives from its content key, which joins these columns in this order:
    # reordering them would give every stored row a new id.
    assert CONTENT_COLUMNS == (
        "timestamp",
        "wallet",
        "type",
        "label",
        "sent_asset",
        "sent_amount",
        "received_asset",
        "received_amount",
        "fee_asset",
        "fee_amount",
        "fiat_value",
        "fiat_currency",
        "tx_hash",
        "description",
    )


def test_the_subsets_are_canonical_columns():
    assert set(STATED_COLUMNS) < set(CANONICAL_COLUMNS)
    assert DRAFT_SCHEMA.names[: len(STATED_COLUMNS)] == list(STATED_COLUMNS)
    assert SIDE_COLUMNS == tuple(c for c in CANONICAL_COLUMNS if c in SIDE_COLUMNS)
    assert set(REQUIRED_COLUMNS) <= set(VALUED_SCHEMA.names)
    view_only = {"month", "cost_basis", "gain", "term", "balance_after", "flags"}
    assert set(VIEW_COLUMNS) - view_only <= set(VALUED_SCHEMA.names)
