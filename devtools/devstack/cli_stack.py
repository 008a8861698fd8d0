"""`ledgerflow stack up|down|status|demo`: the whole local stack on one machine.

up     Cassandra node, schema, price simulator (127.0.0.1:8765), Ray head with dashboard
       (127.0.0.1:8265), both Serve applications (127.0.0.1:8000)
demo   up, then a generated 50k-row sample uploaded and watched to the end, the gains summary,
       the URLs to look at, last the web page's URL and a token to paste into it
down   everything up started, in reverse order
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from decimal import Decimal
from pathlib import Path

from devtools.devstack import cassandra_node
from devtools.devstack.processes import port_open, start_background, stop_background
from ingest.config import get_settings

PRICESIM_PORT = 8765
DASHBOARD_PORT = 8265
RAY_PORT = 6379
METRICS_PORT = 8080  # the head's Prometheus endpoint (docs/observability.md)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["up", "down", "status", "demo"])
    parser.add_argument("--rows", type=int, default=50_000, help="demo sample size")
    parser.add_argument(
        "--price-rate", type=float, default=50.0, help="requests/s the price simulator allows"
    )


def _bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


def up(price_rate: float) -> None:
    settings = get_settings()
    print(cassandra_node.start())
    from ingest.load.migrations import apply_migrations

    print(
        f"schema: applied {apply_migrations(settings) or 'nothing new'} in keyspace {settings.keyspace}"
    )
    print(
        start_background(
            "pricesim",
            [
                _bin("ledgerflow"),
                "pricesim",
                "--port",
                str(PRICESIM_PORT),
                "--rate",
                str(price_rate),
                "--burst",
                str(int(price_rate)),
            ],
            PRICESIM_PORT,
        )
    )
    if not port_open(RAY_PORT):
        subprocess.run(
            [
                _bin("ray"),
                "start",
                "--head",
                f"--port={RAY_PORT}",
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={DASHBOARD_PORT}",
                f"--metrics-export-port={METRICS_PORT}",
                "--disable-usage-stats",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    print(f"Ray head up (dashboard http://127.0.0.1:{DASHBOARD_PORT}; {dashboard_login()})")
    os.environ["LEDGERFLOW_RAY_ADDRESS"] = os.environ.get("LEDGERFLOW_RAY_ADDRESS") or "auto"
    get_settings.cache_clear()
    from serve.app import run_local

    run_local(settings.api_host, settings.api_port, blocking=False)
    print(
        f"API up: http://{settings.api_host}:{settings.api_port}/docs, web page "
        f"http://{settings.api_host}:{settings.api_port}/"
    )


def dashboard_login() -> str:
    """How to get past the dashboard's token prompt: Ray 2.60 turns token authentication on for
    a new cluster unless RAY_AUTH_MODE=disabled (see docs/observability.md)."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
        return "no token: RAY_AUTH_MODE=disabled"
    return f"token prompt: paste the output of `{_bin('ray')} get-auth-token`"


def down() -> None:
    if port_open(RAY_PORT):
        try:
            import ray
            from ray import serve

            ray.init(address="auto", namespace="ledgerflow", log_to_driver=False)
            serve.shutdown()
            ray.shutdown()
        except Exception as exc:  # Serve may not be running
            print(f"serve shutdown: {exc}")
        subprocess.run([_bin("ray"), "stop", "--force"], stdout=subprocess.DEVNULL)
        print("Ray stopped")
    print(stop_background("pricesim"))
    print(cassandra_node.stop())


def status() -> None:
    settings = get_settings()
    print(cassandra_node.status())
    print(
        f"price simulator: {'up' if port_open(PRICESIM_PORT) else 'down'} (127.0.0.1:{PRICESIM_PORT})"
    )
    print(f"Ray: {'up' if port_open(RAY_PORT) else 'down'} (dashboard 127.0.0.1:{DASHBOARD_PORT})")
    print(
        f"API: {'up' if port_open(settings.api_port) else 'down'} "
        f"(http://{settings.api_host}:{settings.api_port}/docs)"
    )


def demo(rows: int, price_rate: float) -> int:
    settings = get_settings()
    up(price_rate)
    from devtools.generate import generate
    from ingest.cli import main as cli
    from ingest.load.cassandra import get_session
    from ingest.load.users import create_token

    sample_dir = settings.state_dir / "demo"
    sample_dir.mkdir(parents=True, exist_ok=True)
    sample = sample_dir / f"sample-{rows}.csv"
    peer = sample_dir / f"sample-{rows}-peer.csv"
    if not sample.exists():
        stats = generate(rows, "binance", seed=7, out=sample, peer_out=peer)
        print(f"generated {sample}: {stats.short()}")
    token = create_token(get_session(settings), "demo")
    api = f"http://{settings.api_host}:{settings.api_port}"
    for path, fmt in ((sample, "binance"), (peer, "koinly")):
        if path.exists():
            code = cli(
                ["upload", str(path), "--format", fmt, "--watch", "--api", api, "--token", token]
            )
            if code:
                return code
    request = urllib.request.Request(
        f"{api}/v1/gains", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        gains = json.load(resp)
    print("\nGains summary (user 'demo', " + get_settings().fiat_currency + "):")
    print(gains_table(gains["items"]))
    print("(each figure rounded to the cent on its own; exact decimals: GET /v1/gains)")
    print(
        f"\nLook at:\n  API docs       {api}/docs\n  Ray dashboard  http://127.0.0.1:{DASHBOARD_PORT}"
        f"  ({dashboard_login()};\n                 RAY_AUTH_MODE=disabled make demo turns it off "
        "on a local machine): Jobs, then the Tasks of\n                 job:<id>, parse:<id>:*, "
        "store:<id>:*, tax:<id>:* (README: One job on the dashboard)"
        f"\n  metrics        curl -s http://127.0.0.1:{METRICS_PORT}/metrics | grep ledgerflow"
        "  (docs/observability.md)"
        f"\n  transactions   curl -H 'Authorization: Bearer {token}' {api}/v1/transactions?limit=5"
        f"\n  stop all       make down"
    )
    print(f"\nWeb page: {api}/\nToken to paste there (user 'demo'): {token}")
    return 0


CENT = Decimal("0.01")


def gains_table(items: list[dict]) -> str:
    """GET /v1/gains items as an aligned text table, money in cents, each figure rounded on its
    own from the API's exact decimals (so a row's columns can differ by a cent from their sum;
    the table says so; in whole units they differed by one)."""
    cols = ("year", "proceeds", "cost_basis", "short_term_gain", "long_term_gain", "gain", "income")

    def cell(item: dict, col: str) -> str:
        value = item.get(col)
        if value is None:
            return "-"
        if col == "year":
            return value
        return f"{Decimal(str(value)).quantize(CENT):,}"

    rows = [list(cols)] + [[cell(i, c) for c in cols] for i in items if i.get("asset") == "*"]
    widths = [max(len(r[k]) for r in rows) for k in range(len(cols))]
    return "\n".join("  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in rows)


def run(args: argparse.Namespace) -> int:
    if args.action == "up":
        up(args.price_rate)
    elif args.action == "down":
        down()
    elif args.action == "status":
        status()
    else:
        return demo(args.rows, args.price_rate)
    return 0
