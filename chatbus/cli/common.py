"""What every command shares: reading the settings, printing a table."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from ..core.settings import Settings

__all__ = ["print_table", "settings_for"]


def settings_for(args: argparse.Namespace, **extra: Any) -> Settings:
    overrides: dict[str, Any] = dict(extra)
    if getattr(args, "db", None):
        overrides["db"] = args.db
    return Settings.load(getattr(args, "config", None), **overrides)


def print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())
