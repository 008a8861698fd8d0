"""The replica's configuration and Cassandra session: a Serve replica is an entry point, so it
reads the settings here, once, and every route uses these two."""

from __future__ import annotations

from cassandra.cluster import Session

from ingest.config import Settings, get_settings
from ingest.load.cassandra import get_session


def settings() -> Settings:
    return get_settings()


def db() -> Session:
    return get_session(get_settings())
