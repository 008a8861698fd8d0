"""`ledgerflow cassandra start|stop|status`."""
from __future__ import annotations

import argparse
import sys

from devtools.devstack import cassandra_node


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["start", "stop", "status"])


def run(args: argparse.Namespace) -> int:
    try:
        print(getattr(cassandra_node, args.action)())
    except cassandra_node.NodeError as exc:
        print(f"ledgerflow cassandra {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0
