#!/usr/bin/env python3
"""Write (or with --check, verify) the catalogue table in docs/schema.md from schema.MEASUREMENTS."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analytics_bp.schema import markdown_table  # noqa: E402

DOC = ROOT / "docs" / "schema.md"
BEGIN, END = "<!-- catalogue:begin -->", "<!-- catalogue:end -->"


def main() -> int:
    text = DOC.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n{markdown_table()}\n{END}{tail}"
    if "--check" in sys.argv:
        if new != text:
            print("docs/schema.md is out of date: run scripts/schema_table.py")
            return 1
        return 0
    DOC.write_text(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
