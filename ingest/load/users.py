"""Per-user settings (cost-basis method, pooling, currency) and API tokens."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from cassandra.cluster import Session

from ingest.config import get_settings
from ingest.load.cassandra import execute
from ingest.load.jobs import now

METHODS = ("fifo", "lifo", "hifo", "acb", "uk")
POOLINGS = ("per-wallet", "universal")


@dataclass(frozen=True)
class UserSettings:
    method: str
    pooling: str
    currency: str


def get_user_settings(session: Session, user_id: str) -> UserSettings:
    row = execute(session, "SELECT method, pooling, currency FROM user_settings WHERE user_id = ?",
                  (user_id,)).one()
    cfg = get_settings()
    if row is None:
        return UserSettings(cfg.default_method, cfg.default_pooling, cfg.fiat_currency)
    return UserSettings(row["method"] or cfg.default_method, row["pooling"] or cfg.default_pooling,
                        row["currency"] or cfg.fiat_currency)


def put_user_settings(session: Session, user_id: str, value: UserSettings) -> None:
    if value.method not in METHODS or value.pooling not in POOLINGS:
        raise ValueError(f"method must be one of {METHODS}, pooling one of {POOLINGS}")
    execute(session, "INSERT INTO user_settings (user_id, method, pooling, currency, updated_at) "
            "VALUES (?, ?, ?, ?, ?)", (user_id, value.method, value.pooling, value.currency, now()))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, user_id: str) -> str:
    """A new random token for `user_id`; only its SHA-256 is stored."""
    token = "lf_" + secrets.token_urlsafe(32)
    execute(session, "INSERT INTO api_tokens (token_sha256, user_id, created_at) VALUES (?, ?, ?)",
            (hash_token(token), user_id, now()))
    return token


def user_for_token(session: Session, token: str) -> str | None:
    row = execute(session, "SELECT user_id FROM api_tokens WHERE token_sha256 = ?",
                  (hash_token(token),)).one()
    return row["user_id"] if row else None
