"""README's configuration table, generated from ingest/config.py (one row per setting: the
environment variable, its default, its description).

    python -m devtools.config_table            # print the table
    python -m devtools.config_table --write    # replace the table in README.md
"""

from __future__ import annotations

import argparse
import enum
from pathlib import Path

from ingest.config import PROJECT_ROOT, Settings

HEADER = "| variable | default | meaning |\n|---|---|---|\n"


def shown_default(value: object) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Path):
        if value.is_relative_to(PROJECT_ROOT):
            return f"<repo>/{value.relative_to(PROJECT_ROOT)}"
        if value.is_relative_to(Path.home()):
            return f"~/{value.relative_to(Path.home())}"
    return str(value)


def cell(text: str) -> str:
    return text.replace("|", "\\|")  # a pipe in a description would end the cell


def table() -> str:
    rows = [
        f"| `LEDGERFLOW_{name.upper()}` | `{shown_default(field.default)}` | "
        f"{cell(field.description or '')} |"
        for name, field in Settings.model_fields.items()
    ]
    return HEADER + "\n".join(rows) + "\n"


def replace_table(readme: str) -> str:
    start = readme.index(HEADER)
    end = readme.index("\n\n", start)
    return readme[:start] + table().rstrip("\n") + readme[end:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="replace the table in README.md")
    args = parser.parse_args()
    if not args.write:
        print(table(), end="")
        return
    readme = PROJECT_ROOT / "README.md"
    readme.write_text(replace_table(readme.read_text()))


if __name__ == "__main__":
    main()
