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
    "ingest/pipeline/tax/cli.py",  # `ledgerflow tax`
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
# anyone who can write them, and breaks when a class moves). Ray's own transport of task
# arguments and results is not ours to police; no module of ours pickles anything.
PICKLE_MODULES = {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "shelve", "marshal"}
PICKLE_CALLS = {"read_pickle", "to_pickle"}  # pandas and friends


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
        if (uses := pickle_uses(p)) and (relative := str(p.relative_to(ROOT)))
    }
    assert offenders == {}, "store plain versioned data (Arrow, JSON), never a pickle"


def test_the_pickle_scan_finds_each_spelling(tmp_path):
    """The rule is live: each way of reaching a pickler is found."""
    for source in (
        "import pickle",
        "from pickle import loads",
        "import cloudpickle as cp",
        "import ray.cloudpickle",
        "frame.to_pickle(path)",
    ):
        module = tmp_path / "m.py"
        module.write_text(source + "\n")
        assert pickle_uses(module), source


# --- package layering ---------------------------------------------------------------------------
def imported_modules(path: Path) -> set[str]:
    """Every ingest/serve module ``path`` imports, at module level or inside a function (a lazy
    import is still a dependency)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return {n for n in names if n.split(".")[0] in ("ingest", "serve")}


def unit_of(module: str) -> str:
    """The unit a module belongs to: ``serve``, a subpackage of ingest (``ingest.tax``), or a
    top-level module of ingest (``ingest.config``)."""
    parts = module.split(".")
    return "serve" if parts[0] == "serve" else ".".join(parts[:2])


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def unit_graph() -> dict[str, dict[str, list[str]]]:
    """unit -> {unit it imports: [the importing files]}."""
    graph: dict[str, dict[str, list[str]]] = {}
    for path in product_modules():
        source = unit_of(module_name(path))
        for target in {unit_of(m) for m in imported_modules(path)} - {source}:
            graph.setdefault(source, {}).setdefault(target, []).append(str(path.relative_to(ROOT)))
    return graph


def cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """Every strongly connected group of more than one unit (Tarjan), as sorted lists."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(unit: str) -> None:
        index[unit] = low[unit] = len(index)
        stack.append(unit)
        for target in graph.get(unit, {}):
            if target not in index:
                visit(target)
                low[unit] = min(low[unit], low[target])
            elif target in stack:
                low[unit] = min(low[unit], index[target])
        if low[unit] == index[unit]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == unit:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for unit in sorted(graph):
        if unit not in index:
            visit(unit)
    return found


def test_ingest_subpackages_import_each_other_without_cycles():
    graph = unit_graph()
    found = cycles(graph)
    detail = {
        tuple(group): {
            f"{a} -> {b}": graph[a][b] for a in group for b in graph.get(a, {}) if b in group
        }
        for group in found
    }
    assert found == [], f"package cycles (who imports whom): {detail}"


def test_serve_uses_ingest_and_ingest_never_imports_serve():
    graph = unit_graph()
    upward = {
        a: files for a, targets in graph.items() for b, files in targets.items() if b == "serve"
    }
    assert upward == {}, "ingest must not import serve (the HTTP layer sits on top)"


def callers(name: str) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in product_modules() if calls_to(p, name)]


def test_the_tax_computation_is_composed_once():
    # One composition (ingest/pipeline/tax/stage.py) runs for a job on Ray, for `ledgerflow tax`
    # in process and for backfill; the planner (plan.py) alone plans the shards.
    # a shard task walks period by period; the whole walk (compute_shard) is its tests' oracle
    assert callers("ShardStream") == ["ingest/pipeline/tax/stage.py"]
    assert callers("compute_shard") == []
    assert callers("plan_shards") == ["ingest/pipeline/tax/plan.py"]
    assert callers("plan_tax") == ["ingest/pipeline/tax/stage.py"]
    assert callers("compose_tax") == ["ingest/pipeline/tax/cli.py", "ingest/pipeline/tax/stage.py"]
    # engine.compute is the single-process oracle the tests compare against, never the product's
    assert callers("compute") == []
