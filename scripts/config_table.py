#!/usr/bin/env python3
"""Write (or with --check, verify) the settings table in docs/config.md from settings.SETTINGS."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "scripts"))

from doc_tables import write_or_check  # noqa: E402

from analytics_bp.settings import SERVER_SETTINGS, SETTINGS, Setting  # noqa: E402

DOC = ROOT / "docs" / "config.md"
TABLES = {"settings": (SETTINGS, True), "server": (SERVER_SETTINGS, False)}


def table(settings: tuple[Setting, ...], privacy_column: bool) -> str:
    rows = (["| Setting | Default | Privacy | What it does |", "|---|---|---|---|"] if privacy_column
            else ["| Variable | Default | What it does |", "|---|---|---|"])
    for s in settings:
        default = s.default if s.default not in ("", None) else "(empty)"
        privacy = f" {'yes' if s.privacy else ''} |" if privacy_column else ""
        rows.append(f"| `{s.name}` | `{default}` |{privacy} {s.help} |")
    return "\n".join(rows)


def main() -> int:
    return write_or_check(DOC, {name: table(settings, privacy_column)
                                for name, (settings, privacy_column) in TABLES.items()}, "config_table.py")


if __name__ == "__main__":
    raise SystemExit(main())
