"""Generated tables inside docs: the text between `<!-- NAME:begin -->` and `<!-- NAME:end -->`.

Shared by config_table.py (settings) and schema_table.py (the catalogue): write the tables, or with
--check report whether the committed document already holds exactly them.
"""

from __future__ import annotations

import sys
from pathlib import Path


def write_or_check(doc: Path, tables: dict[str, str], script: str) -> int:
    text = new = doc.read_text()
    for name, table in tables.items():
        begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
        head, rest = new.split(begin, 1)
        _, tail = rest.split(end, 1)
        new = f"{head}{begin}\n{table}\n{end}{tail}"
    if "--check" in sys.argv:
        if new != text:
            print(f"{doc.relative_to(doc.parent.parent)} is out of date: run scripts/{script}")
            return 1
        return 0
    doc.write_text(new)
    return 0
