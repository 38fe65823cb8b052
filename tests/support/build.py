"""The checkout, commands that must succeed, and the sdist and wheel built from a clean copy."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[2]


def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """A command that must succeed; its output tails in the failure otherwise."""
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{args}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@dataclass
class Built:
    dist: Path
    wheel: Path
    log: str


def clean_copy(target: Path) -> None:
    """The files git knows (committed, or new and not ignored): what a fresh clone would hold."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    for name in listed:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
