"""Per-user settings (cost-basis method, pooling, currency) and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from cassandra.cluster import Session

from ingest.config import Settings
from ingest.load.cassandra import execute
from ingest.load.jobs import now
from ingest.tax.engine import check_options
from ingest.vocabulary import Method, Pooling, currency_code


@dataclass(frozen=True)
class UserSettings:
    method: Method
    pooling: Pooling
    currency: str  # ISO 4217, upper case: the job's one reporting currency


def get_user_settings(session: Session, user_id: str, defaults: UserSettings) -> UserSettings:
    """The user's stored settings, each missing one from `defaults` (the deployment's)."""
    row = execute(
        session, "SELECT method, pooling, currency FROM user_settings WHERE user_id = ?", (user_id,)
    ).one()
    if row is None:
        return defaults
    return UserSettings(
        Method(row["method"] or defaults.method),
        Pooling(row["pooling"] or defaults.pooling),
        currency_code(row["currency"] or defaults.currency),
    )


def put_user_settings(session: Session, user_id: str, value: UserSettings) -> None:
    check_options(value.method, value.pooling)  # never store a pair every later job would refuse
    execute(
        session,
        "INSERT INTO user_settings (user_id, method, pooling, currency, updated_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (user_id, value.method, value.pooling, value.currency, now()),
    )


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, user_id: str) -> str:
    """A new random token for `user_id`; only its SHA-256 is stored."""
    token = "lf_" + secrets.token_urlsafe(32)
    execute(
        session,
        "INSERT INTO api_tokens (token_sha256, user_id, created_at) VALUES (?, ?, ?)",
        (hash_token(token), user_id, now()),
    )
    return token


def user_for_token(session: Session, token: str) -> str | None:
    row = execute(
        session, "SELECT user_id FROM api_tokens WHERE token_sha256 = ?", (hash_token(token),)
    ).one()
    return row["user_id"] if row else None


def deployment_defaults(settings: Settings) -> UserSettings:
    """What a user who never chose gets: LEDGERFLOW_DEFAULT_METHOD / _POOLING / FIAT_CURRENCY
    (the UK method pools per person, so it always comes with universal pooling)."""
    method = Method(settings.default_method)
    pooling = Pooling.UNIVERSAL if method is Method.UK else Pooling(settings.default_pooling)
    return UserSettings(method, pooling, currency_code(settings.fiat_currency))
