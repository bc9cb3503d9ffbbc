"""Benchmarks that compare an older commit ("before") with this tree ("after")."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def before_source(commit: str, work: Path) -> str:
    """The PYTHONPATH entry of `commit`'s package: its source in a detached git worktree under `work`, checked out
    once and reused (remove it with `git worktree remove --force WORK/before-COMMIT`)."""
    tree = work / f"before-{commit}"
    if not tree.is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit], check=True,
                       capture_output=True)
    return str(tree / "src")
