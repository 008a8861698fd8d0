"""`ledgerflow cassandra start [--nodes N]|stop|status`."""

from __future__ import annotations

import argparse
import sys

from devtools.devstack import cassandra_node


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument(
        "--nodes",
        type=int,
        default=1,
        help="start a local cluster of N nodes on 127.0.0.1..N (default: 1, the single node)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        if args.action == "start":
            print(cassandra_node.start(nodes=args.nodes))
        else:
            print(getattr(cassandra_node, args.action)())
    except cassandra_node.NodeError as exc:
        print(f"ledgerflow cassandra {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0
