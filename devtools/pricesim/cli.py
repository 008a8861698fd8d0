"""`ledgerflow pricesim`: run the price service simulator (see devtools.pricesim.server)."""

from __future__ import annotations

import argparse

from devtools.pricesim.server import SimConfig, make_app, parse_outage


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="requests/s before 429 (token bucket); 0 = unlimited",
    )
    parser.add_argument("--burst", type=int, default=0, help="token bucket size (0: the rate)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every response")
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of 5xx answers")
    parser.add_argument(
        "--outage",
        action="append",
        default=[],
        metavar="START:DURATION",
        help="all requests 503 from START to START+DURATION seconds after start",
    )
    parser.add_argument(
        "--body-ratelimit-rate",
        type=float,
        default=0.0,
        help="share of 200 answers carrying a rate-limit error body",
    )
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from aiohttp import web

    config = SimConfig(
        rate=args.rate,
        burst=args.burst,
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        body_ratelimit_rate=args.body_ratelimit_rate,
        outages=[parse_outage(o) for o in args.outage],
        seed=args.seed,
    )
    web.run_app(
        make_app(config),
        host=args.host,
        port=args.port,
        print=None,
        access_log=None,
        handle_signals=True,
    )
    return 0
