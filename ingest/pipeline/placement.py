"""Where a stage's tasks may run: the one config point for Ray resource options per stage.

LEDGERFLOW_STAGE_RESOURCES names custom resources per stage (parse, store, prices, tax); every
task and actor of that stage asks for them on top of its CPUs, so a cluster whose node types offer
those resources (cluster.yaml `resources:`) keeps each stage on its nodes. Unset: no constraint.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from ingest.config import Settings

STAGES = ("parse", "store", "prices", "tax")


@lru_cache(maxsize=8)
def _parsed(raw: str) -> dict[str, dict[str, float]]:
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"LEDGERFLOW_STAGE_RESOURCES is not JSON: {exc}") from None
    if (
        not isinstance(value, dict)
        or set(value) - set(STAGES)
        or not all(
            isinstance(r, dict) and all(isinstance(a, (int, float)) for a in r.values())
            for r in value.values()
        )
    ):
        raise ValueError(
            "LEDGERFLOW_STAGE_RESOURCES must be {stage: {resource: amount}} with "
            f"stages among {', '.join(STAGES)}, "
            'e.g. \'{"tax": {"tax_node": 1}}\''
        )
    return {stage: {k: float(v) for k, v in res.items()} for stage, res in value.items()}


def stage_options(settings: Settings, stage: str) -> dict[str, Any]:
    """Ray `.options(...)` for a task or actor of `stage`: {"resources": {...}} or {}."""
    resources = _parsed(settings.stage_resources).get(stage)
    return {"resources": dict(resources)} if resources else {}


def stage_placement(settings: Settings) -> dict[str, dict[str, Any]]:
    """stage -> its Ray options, for every stage (what the Ray executor applies per task)."""
    return {stage: stage_options(settings, stage) for stage in STAGES}
