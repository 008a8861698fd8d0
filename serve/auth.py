"""Bearer-token authentication: every /v1 route depends on `current_user`.

Token lookups are cached per replica for `TOKEN_CACHE_TTL_S` seconds (only hits: a new token
works at once; a deleted token keeps working on a replica for at most that long).
"""

from __future__ import annotations

import threading
import time

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ingest.load.users import hash_token, user_for_token
from serve.deps import db
from serve.errors import ApiError

TOKEN_CACHE_TTL_S = 60.0
TOKEN_CACHE_MAX = 10_000


class TokenCache:
    """token sha256 -> (user id, expiry on the monotonic clock)."""

    def __init__(
        self, ttl_s: float = TOKEN_CACHE_TTL_S, max_entries: int = TOKEN_CACHE_MAX
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, token_sha256: str, now: float | None = None) -> str | None:
        now = time.monotonic() if now is None else now
        with self._lock:
            entry = self._entries.get(token_sha256)
            if entry is None or entry[1] <= now:
                self._entries.pop(token_sha256, None)
                return None
            return entry[0]

    def put(self, token_sha256: str, user_id: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._entries) >= self.max_entries:  # crude bound: start over
                self._entries.clear()
            self._entries[token_sha256] = (user_id, now + self.ttl_s)


token_cache = TokenCache()
bearer_scheme = HTTPBearer(
    auto_error=False, description="`ledgerflow token create USER` prints one."
)


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def current_user(credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)) -> str:
    """The user id the request's bearer token belongs to; 401 without a valid one."""
    if credentials is None or not credentials.credentials:
        raise unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    key = hash_token(credentials.credentials)
    user_id = token_cache.get(key)
    if user_id is None:
        user_id = user_for_token(db(), credentials.credentials)
        if user_id is None:
            raise unauthorized("invalid token")
        token_cache.put(key, user_id)
    return user_id
