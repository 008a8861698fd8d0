"""Opaque page tokens: url-safe base64 of a small JSON cursor holding the Cassandra driver's
paging state (and, for transactions, the month partition and rows to skip), signed with HMAC.

Only a token this API issued is accepted: a crafted one (a huge `skip` that would make the server
read past the page cap, a paging state of another list) fails its signature and is a 400, like
any garbage. The key is `LEDGERFLOW_PAGE_TOKEN_KEY`, else a random one the deployment keeps in its
keyspace (`page_token_key`).
A token names its list and its user (`list_scope`, signed with the payload): a /v1/jobs token on
/v1/balances, another user's token or one of another job's rejected rows is a 400, never a
page of another list. A token also only moves a cursor within the caller's own partitions: every
query binds the authenticated user's id. One forged with a known key (the local default) and
refused by Cassandra is a 400 too (`paged` in query_api)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

from cassandra import InvalidRequest
from cassandra.cluster import NoHostAvailable
from cassandra.protocol import ProtocolException, ServerError
from fastapi import Query

from ingest.load import queries
from ingest.load.cassandra import is_retryable
from ingest.load.queries import TxCursor
from ingest.load.secrets import shared_secret
from serve.deps import db, settings
from serve.errors import ApiError

MAC_BYTES = 16
MAX_LIMIT = 1000
ResultT = TypeVar("ResultT")

# A list's query parameters
Limit = Query(100, ge=1, le=MAX_LIMIT, description="Items per page")
PageToken = Query(None, description="next_page_token of the previous page")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


PAGE_TOKEN_SECRET = "page_token_key"


@lru_cache(maxsize=4)
def _stored_key(keyspace: str) -> bytes:
    # Made at random once per deployment and kept in its keyspace (the same on every replica,
    # known to no client). A key derived from public values let anyone forge tokens.
    return shared_secret(db(), PAGE_TOKEN_SECRET)


def page_token_key() -> bytes:
    """LEDGERFLOW_PAGE_TOKEN_KEY, else the deployment's stored random key."""
    cfg = settings()
    return cfg.page_token_key.encode() if cfg.page_token_key else _stored_key(cfg.keyspace)


def list_scope(name: str, user_id: str, *params: str | None) -> bytes:
    """What a token is valid for, signed with it: the list (its path), the user, and the
    parameters that select the list's partition (a job id, a year, a wallet filter)."""
    fields = [name, user_id, *(p or "" for p in params)]
    return json.dumps(fields, separators=(",", ":")).encode()


def _mac(scope: bytes, payload: bytes) -> bytes:
    return hmac.new(page_token_key(), scope + b"\0" + payload, hashlib.sha256).digest()[:MAC_BYTES]


def invalid_token() -> ApiError:
    return ApiError(
        400,
        "invalid_page_token",
        "page_token is not one this API issued for this list; start again without it",
    )


def _encode(scope: bytes, fields: dict[str, Any]) -> str:
    payload = json.dumps(fields, separators=(",", ":")).encode()
    return f"{_b64encode(payload)}.{_b64encode(_mac(scope, payload))}"


def _decode(scope: bytes, token: str) -> dict[str, Any]:
    body, _, mac = token.partition(".")
    try:
        payload, signature = _b64decode(body), _b64decode(mac)
        if not hmac.compare_digest(signature, _mac(scope, payload)):
            raise invalid_token()
        fields = json.loads(payload)
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


def encode_paging_state(paging_state: bytes | None, scope: bytes) -> str | None:
    return None if paging_state is None else _encode(scope, {"s": _b64encode(paging_state)})


def decode_paging_state(token: str | None, scope: bytes) -> bytes | None:
    if not token:
        return None
    state = _state(_decode(scope, token))
    if state is None:
        raise invalid_token()
    return state


def encode_tx_cursor(cursor: TxCursor | None, scope: bytes) -> str | None:
    if cursor is None:
        return None
    fields: dict[str, Any] = {"m": cursor.month, "k": cursor.skip}
    if cursor.paging_state is not None:
        fields["s"] = _b64encode(cursor.paging_state)
    return _encode(scope, fields)


def decode_tx_cursor(token: str | None, scope: bytes) -> TxCursor | None:
    if not token:
        return None
    fields = _decode(scope, token)
    month, skip = fields.get("m"), fields.get("k", 0)
    if (
        not isinstance(month, int)
        or not isinstance(skip, int)
        or skip < 0
        or not (1 <= month % 100 <= 12)
    ):
        raise invalid_token()
    return TxCursor(month, _state(fields), skip)


def paged(read: Callable[[], ResultT], token: str | None) -> ResultT:
    """Run a read that resumes from a client's page token; a token Cassandra refuses (an answer a
    retry cannot change, possibly wrapped in NoHostAvailable) is a 400."""
    try:
        return read()
    except (
        InvalidRequest,
        ProtocolException,
        ServerError,
        NoHostAvailable,
        queries.BadCursor,
    ) as exc:
        if token and not is_retryable(exc):
            raise invalid_token() from None
        raise
