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


# Persisted state is plain versioned data, never a pickle (unpickling stored bytes runs code for
# anyone who can write them, and breaks when a class moves). Ray's transport of task arguments
# and results between processes is not persisted: packing.py pickles for it, nothing else does.
PICKLE_MODULES = {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "shelve", "marshal"}
PICKLE_CALLS = {"read_pickle", "to_pickle"}  # pandas and friends
PICKLING_ALLOWED = {"ingest/pipeline/packing.py"}


def pickle_uses(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or "", *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Attribute) and node.attr in PICKLE_MODULES | PICKLE_CALLS:
            names = [node.attr]
        else:
            continue
        found += [
            f"line {node.lineno}: {name}"
            for name in names
            if set(name.split(".")) & (PICKLE_MODULES | PICKLE_CALLS)
        ]
    return found


def test_nothing_but_the_ray_transport_pickles():
    offenders = {
        relative: uses
        for p in product_modules()
        if (relative := str(p.relative_to(ROOT))) not in PICKLING_ALLOWED
        and (uses := pickle_uses(p))
    }
    assert offenders == {}, "store plain versioned data (Arrow, JSON), never a pickle"
    assert all(pickle_uses(ROOT / allowed) for allowed in PICKLING_ALLOWED)  # the rule is live
