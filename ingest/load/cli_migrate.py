"""`ledgerflow migrate [--keyspace K]`."""

from __future__ import annotations

import argparse

from ingest.config import get_settings
from ingest.load.migrations import apply_migrations


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keyspace", default=None)


def run(args: argparse.Namespace) -> int:
    applied = apply_migrations(get_settings(), args.keyspace)
    print(f"applied migrations: {applied or 'none (schema up to date)'}")
    return 0
