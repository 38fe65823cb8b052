#!/usr/bin/env python3
"""Write (or with --check, verify) the catalogue table in docs/schema.md from schema.MEASUREMENTS."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "scripts"))

from doc_tables import write_or_check  # noqa: E402

from analytics_bp.schema import markdown_table  # noqa: E402

DOC = ROOT / "docs" / "schema.md"


def main() -> int:
    return write_or_check(DOC, {"catalogue": markdown_table()}, "schema_table.py")


if __name__ == "__main__":
    raise SystemExit(main())
