#!/usr/bin/env python3
"""Copy what the package ships but does not author into analytics_bp/ (or, with --check, verify the
committed copies are exactly those): the agent and dashboard as `make agent` builds them from
agent_js/src (with isbot's pattern list from its npm package), and the nginx and Grafana files
from nginx/ and grafana/.

Why committed copies: `pip install` of the package (or of a wheel built from a clean clone) must
serve the agent and the dashboard with no node or npm anywhere; a build hook running npm would
make every install from source depend on node. The check, run by a test in `make test` after a
fresh `make agent`, fails the moment a copy differs from what its source builds.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "analytics_bp"
COPIES = {
    **{PACKAGE / "static" / name: ROOT / "agent_js" / "dist" / name
       for name in ("agent.min.js", "agent.extras.min.js", "agent.debug.js", "dashboard.js",
                    "dashboard.css")},
    PACKAGE / "data" / "isbot-patterns.json": ROOT / "agent_js" / "dist" / "isbot-patterns.json",
    **{PACKAGE / "deploy" / "nginx" / name: ROOT / "nginx" / name
       for name in ("analytics.conf", "example.conf")},
    **{PACKAGE / "deploy" / "grafana" / path.relative_to(ROOT / "grafana"): path
       for path in sorted((ROOT / "grafana").rglob("*"))
       if path.is_file() and path.suffix in (".json", ".yaml")},
}


def main() -> int:
    missing = [str(src.relative_to(ROOT)) for src in COPIES.values() if not src.exists()]
    if missing:
        print(f"missing sources (run `make agent` first): {', '.join(missing)}")
        return 1
    if "--check" in sys.argv:
        stale = [str(dst.relative_to(ROOT)) for dst, src in COPIES.items()
                 if not dst.exists() or dst.read_bytes() != src.read_bytes()]
        if stale:
            print(f"out of date (run `make assets` and commit): {', '.join(stale)}")
            return 1
        return 0
    for dst, src in COPIES.items():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
