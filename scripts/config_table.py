#!/usr/bin/env python3
"""Write (or with --check, verify) the settings table in docs/config.md from settings.SETTINGS."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analytics_bp.settings import SETTINGS  # noqa: E402

DOC = ROOT / "docs" / "config.md"
BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"


def table() -> str:
    rows = ["| Setting | Default | Privacy | What it does |", "|---|---|---|---|"]
    for s in SETTINGS:
        default = s.default if s.default not in ("", None) else "(empty)"
        rows.append(f"| `{s.name}` | `{default}` | {'yes' if s.privacy else ''} | {s.help} |")
    return "\n".join(rows)


def main() -> int:
    text = DOC.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n{table()}\n{END}{tail}"
    if "--check" in sys.argv:
        if new != text:
            print("docs/config.md is out of date: run scripts/config_table.py")
            return 1
        return 0
    DOC.write_text(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
