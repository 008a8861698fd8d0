"""The `ledgerflow` command. Each subcommand lives beside the code it drives and exposes
`configure(parser)` and `run(args) -> int`; this module only dispatches (imports stay lazy so
`ledgerflow cassandra status` does not import Ray)."""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "cassandra": ("devtools.devstack.cli_cassandra", "start|stop|status the local Cassandra node"),
    "migrate": ("ingest.load.cli_migrate", "apply schema migrations to the keyspace"),
    "pricesim": ("devtools.pricesim.cli", "run the price service simulator"),
    "generate": ("devtools.generate", "generate a realistic transaction export"),
    "tax": ("ingest.pipeline.tax.cli", "offline tax report from universal-format CSV files"),
    "token": ("serve.cli_token", "create API tokens"),
    "upload": ("serve.client", "upload a file to the API and watch its job"),
    "backfill": (
        "ingest.pipeline.backfill",
        "run the upload pipeline on files without HTTP (e.g. as a Ray job)",
    ),
    "stack": (
        "devtools.devstack.cli_stack",
        "bring the local stack up or down (used by make demo)",
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ledgerflow", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    argv = sys.argv[1:] if argv is None else argv
    wanted = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if name == wanted:  # only the chosen one is imported
            module = importlib.import_module(module_name)
            module.configure(p)
            p.set_defaults(_run=module.run)
    args = parser.parse_args(argv)
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
