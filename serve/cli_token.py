"""`ledgerflow token create USER`: a new API token for USER (printed last on its line; only its
SHA-256 is stored). Applies pending schema migrations first, so it works on a fresh keyspace."""

from __future__ import annotations

import argparse

USER_ID_MAX = 200


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="create a token for a user id")
    create.add_argument("user", help="user id (any text; tokens of one user share their data)")


def run(args: argparse.Namespace) -> int:
    from ingest.config import get_settings
    from ingest.load.cassandra import get_session
    from ingest.load.migrations import apply_migrations
    from ingest.load.users import create_token

    user = args.user.strip()
    if not user or len(user) > USER_ID_MAX:
        print(f"user id must be 1..{USER_ID_MAX} characters")
        return 2
    apply_migrations(get_settings())
    token = create_token(get_session(get_settings()), user)
    print(f"API token for {user} (send as 'Authorization: Bearer <token>'): {token}")
    return 0
