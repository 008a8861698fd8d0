"""Rules of the code's shape that a review would otherwise have to catch (no services needed)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Where configuration may be read: the process entry points. Everything else is handed the
# Settings (or the job context) it needs.
SETTINGS_ENTRY_POINTS = {
    "ingest/config.py",  # defines it
    "ingest/cli.py",
    "ingest/tax/cli.py",  # `ledgerflow tax`
    "ingest/load/cli_migrate.py",  # `ledgerflow migrate`
    "ingest/pipeline/backfill.py",  # `ledgerflow backfill` (also a Ray job's entry point)
    "ingest/pipeline/runner.py",  # the job task and the supervisor actor
    "serve/deps.py",  # a Serve replica
    "serve/app.py",  # the Serve application's start
    "serve/cli_token.py",  # `ledgerflow token`
}


def calls_to(path: Path, name: str) -> list[int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if called == name:
                lines.append(node.lineno)
    return lines


def product_modules() -> list[Path]:
    return sorted(p for package in ("ingest", "serve") for p in (ROOT / package).rglob("*.py"))


def test_settings_are_read_only_at_entry_points():
    offenders = {
        str(p.relative_to(ROOT)): lines
        for p in product_modules()
        if (lines := calls_to(p, "get_settings"))
        and str(p.relative_to(ROOT)) not in SETTINGS_ENTRY_POINTS
    }
    assert offenders == {}, "pass Settings or the JobContext instead of calling get_settings()"


def test_the_product_does_not_import_development_tooling():
    offenders = []
    for path in product_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [
                f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "devtools"
            ]
    # The CLI dispatcher names dev subcommands by module path (strings), never imports them.
    assert offenders == []


def test_only_the_runner_marks_stages_done():
    marking = [
        str(p.relative_to(ROOT))
        for p in product_modules()
        if calls_to(p, "mark_stage_done") and p.name != "jobs.py"
    ]
    assert marking == ["ingest/pipeline/runner.py"]
