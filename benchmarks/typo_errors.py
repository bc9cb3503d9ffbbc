"""Benchmark: what a typo costs, before (an older commit) and after (this tree).

Each command below is a mistake a student makes on the first try (a folder that does not exist, a misspelled
strategy, a nonsense number, a Keras spelling). Every one must end with a clear error and a non-zero exit; the
table shows the median seconds to that error over `--repeats` cold processes per version (alternating
versions), next to `transferlab --help` as the floor of any command. The "before" version is checked out into a
git worktree (benchmarks/_versions.py) and put first on PYTHONPATH. Run:

    .venv/bin/python benchmarks/typo_errors.py --before ed1e457 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _machine import machine
from _versions import ROOT, before_source


def commands(data: Path) -> dict[str, tuple[list[str], bool]]:
    """Label -> (arguments, whether the command must fail)."""
    return {
        "--help": (["--help"], False),
        "train nosuch": (["train", "nosuch"], True),
        "train DATA --strategy fine-tuen": (["train", str(data), "--strategy", "fine-tuen"], True),
        "train DATA --epochs -1": (["train", str(data), "--epochs", "-1"], True),
        "train DATA --lr nan": (["train", str(data), "--lr", "nan"], True),
        "train DATA --learnig-rate 1e-4": (["train", str(data), "--learnig-rate", "1e-4"], True),
        "evaluate nosuch-run": (["evaluate", "nosuch-run"], True),
    }


def make_data(folder: Path) -> Path:
    """A tiny folder of two classes (4 PNGs each): enough for `train` to accept it as data."""
    from PIL import Image

    for label, colour in (("cats", (200, 80, 40)), ("dogs", (40, 80, 200))):
        (folder / label).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (32, 32), colour).save(folder / label / f"{i}.png")
    return folder


def timed(args: list[str], src: str, must_fail: bool, cwd: Path) -> float:
    env = {**os.environ, "PYTHONPATH": src, "COLUMNS": "80"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "transferlab", *args], env=env, capture_output=True, text=True,
                          cwd=cwd, timeout=600)
    seconds = time.perf_counter() - start
    if (proc.returncode != 0) != must_fail:
        raise SystemExit(f"`transferlab {' '.join(args)}` exited {proc.returncode} with {src}:\n{proc.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="ed1e457", help="git revision to compare with")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "typo_errors.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = make_data(tmp / "data")
        versions = {"before": before_source(args.before, tmp), "after": str(ROOT / "src")}
        table = commands(data)
        times: dict[str, dict[str, list[float]]] = {c: {v: [] for v in versions} for c in table}
        for argv, must_fail in table.values():  # one untimed run each: warm OS file cache
            for src in versions.values():
                timed(argv, src, must_fail, tmp)
        for _ in range(args.repeats):
            for label, (argv, must_fail) in table.items():
                for version, src in versions.items():
                    times[label][version].append(timed(argv, src, must_fail, tmp))
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tmp / f"before-{args.before}")],
                       check=False, capture_output=True)
    rows = []
    print(f"{'command':<36} {'before (s)':>10} {'after (s)':>10} {'speed-up':>9}")
    for label in table:
        before = statistics.median(times[label]["before"])
        after = statistics.median(times[label]["after"])
        rows.append({"command": label, "before_s": round(before, 3), "after_s": round(after, 3),
                     "speedup": round(before / after, 1), "runs": times[label]})
        print(f"{label:<36} {before:>10.2f} {after:>10.2f} {before / after:>8.1f}x")
    result = {"benchmark": "typo_errors", "date": datetime.now(UTC).isoformat(timespec="seconds"),
              "machine": machine(), "before": args.before, "repeats": args.repeats, "rows": rows}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
