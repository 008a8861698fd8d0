"""Opaque page tokens: url-safe base64 of a small JSON cursor holding the Cassandra driver's
paging state (and, for transactions, the month partition and rows to skip). A token only moves a
cursor within the caller's own partitions: every query binds the authenticated user's id."""
from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from ingest.load.queries import TxCursor
from serve.errors import ApiError


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def invalid_token() -> ApiError:
    return ApiError(400, "invalid_page_token", "page_token is not one this API issued for this "
                    "list; start again without it")


def _encode(fields: dict[str, Any]) -> str:
    return _b64encode(json.dumps(fields, separators=(",", ":")).encode())


def _decode(token: str) -> dict[str, Any]:
    try:
        fields = json.loads(_b64decode(token))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid_token() from None
    if not isinstance(fields, dict):
        raise invalid_token()
    return fields


def _state(fields: dict[str, Any]) -> bytes | None:
    raw = fields.get("s")
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise invalid_token()
    try:
        return _b64decode(raw)
    except (ValueError, binascii.Error):
        raise invalid_token() from None


def encode_paging_state(paging_state: bytes | None) -> str | None:
    return None if paging_state is None else _encode({"s": _b64encode(paging_state)})


def decode_paging_state(token: str | None) -> bytes | None:
    if not token:
        return None
    state = _state(_decode(token))
    if state is None:
        raise invalid_token()
    return state


def encode_tx_cursor(cursor: TxCursor | None) -> str | None:
    if cursor is None:
        return None
    fields: dict[str, Any] = {"m": cursor.month, "k": cursor.skip}
    if cursor.paging_state is not None:
        fields["s"] = _b64encode(cursor.paging_state)
    return _encode(fields)


def decode_tx_cursor(token: str | None) -> TxCursor | None:
    if not token:
        return None
    fields = _decode(token)
    month, skip = fields.get("m"), fields.get("k", 0)
    if not isinstance(month, int) or not isinstance(skip, int) or skip < 0 or not (
            1 <= month % 100 <= 12):
        raise invalid_token()
    return TxCursor(month, _state(fields), skip)
