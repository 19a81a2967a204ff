"""``config``: the resolved ``[tool.dex]`` configuration, and which values came from the file."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING

from dex_tasks import config as config_mod
from dex_tasks.tasks import Context, TaskResult

if TYPE_CHECKING:
    import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:  # noqa: ARG001 - no options of its own
    return


def _flatten(data: dict[str, object], sections: set[str], prefix: str = "") -> list[tuple[str, object]]:
    """``section.key`` pairs; a table that is a value (``branches``, ``build.args``) stays whole."""
    items: list[tuple[str, object]] = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and key in sections:
            items += _flatten(value, sections, dotted + ".")
        else:
            items.append((dotted, value))
    return items


def run(ctx: Context, args: argparse.Namespace) -> TaskResult:  # noqa: ARG001 - uniform task signature
    cfg = ctx.config
    values = config_mod.as_dict(cfg)
    source = str(cfg.path) if cfg.path else "(no pyproject.toml found: defaults)"
    ctx.out(f"# configuration from {source}")
    ctx.out("# '*' marks values set in the file; the rest are defaults")
    # The sections are Config's dataclass fields (their names have no '_', so TOML spells them alike).
    sections = {f.name for f in dataclasses.fields(cfg) if dataclasses.is_dataclass(getattr(cfg, f.name))}
    for key, value in _flatten(values, sections):
        mark = "*" if key in cfg.from_file else " "
        ctx.out(f"{mark} {key} = {json.dumps(value)}")
    return TaskResult(
        data={
            "path": str(cfg.path) if cfg.path else None,
            "root": str(cfg.root),
            "from_file": sorted(cfg.from_file),
            "config": values,
        }
    )
