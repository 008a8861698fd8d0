"""README's configuration table is the one ingest/config.py generates (devtools/config_table.py)."""

from __future__ import annotations

from devtools.config_table import replace_table
from ingest.config import PROJECT_ROOT


def test_readme_configuration_table_is_generated_from_the_settings():
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert replace_table(readme) == readme, "run: python -m devtools.config_table --write"
