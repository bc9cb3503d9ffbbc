"""Benchmark: `transferlab evaluate RUN DATA` (PyTorch engine, default settings) on 2,000 photo-sized JPEGs, with
`--tta none` and `--tta ten-crop`, before (an older commit, checked out into a temporary git worktree and put first
on PYTHONPATH) and after (this tree), alternating so that load drifts hit both alike; each run a cold process.

The photos and the run: train_e2e.py's enlarged CIFAR-10 cats and dogs (500x375 JPEGs; the 2,000 of validation/
are evaluated) and, unless --run names one, a run trained on them with `transferlab train` defaults (Lite0, 224 px:
ten-crop cuts 224-px crops from the 256-px resize). The table shows wall seconds and accuracy (median of
--repeats); both versions must report the same accuracy. Run:

    .venv/bin/python benchmarks/evaluate_speed.py --cifar ../cifar10-jpg --before 6a34702 --repeats 2
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
from _versions import before_source
from train_e2e import make_photos

ROOT = Path(__file__).resolve().parents[1]


def evaluate(pythonpath: str | None, run: Path, data: Path, tta: str, work: Path) -> dict:
    env = {**os.environ, **({"PYTHONPATH": pythonpath} if pythonpath else {})}
    out = tempfile.mkdtemp(prefix="tl-eval-", dir=work)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "transferlab", "evaluate", str(run), str(data), "--tta", tta,
                           "--out", out, "--json"], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
    metrics = json.loads(proc.stdout)
    accuracy = metrics["tta"]["accuracy"] if tta != "none" else metrics["accuracy"]
    return {"wall_seconds": round(wall, 2), "accuracy": accuracy, "images": metrics["images"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cifar", type=Path, default=Path("../cifar10-jpg"))
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "tl-train-e2e")
    parser.add_argument("--run", type=Path, default=None, help="A trained run (default: train one on the photos).")
    parser.add_argument("--before", required=True, help="A commit to compare with (checked out into a worktree).")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "evaluate_speed.json")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    data = make_photos(args.cifar, args.work / "catdog-photos")
    run = args.run or args.work / "evaluate-run"
    if not (run / "model.safetensors").is_file():
        subprocess.run([sys.executable, "-m", "transferlab", "train", str(data), "--out", str(run), "-q"], check=True)
    versions = {"before": before_source(args.before, args.work), "after": None}
    rows: dict[str, list[dict]] = {}
    for _ in range(args.repeats):
        for tta in ("none", "ten-crop"):
            for name, path in versions.items():
                rows.setdefault(f"{name} {tta}", []).append(evaluate(path, run, data, tta, args.work))
                print(name, tta, rows[f"{name} {tta}"][-1], flush=True)
    summary = {key: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for key, runs in rows.items()}
    print(f"\n{'version, tta':>18} {'wall s':>8} {'accuracy':>9}")
    for key, s in summary.items():
        print(f"{key:>18} {s['wall_seconds']:>8.1f} {s['accuracy']:>9.4f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "evaluate_speed", "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
        "command": "transferlab evaluate RUN DATA --tta T --out OUT --json (defaults), cold process",
        "before": args.before, "repeats": args.repeats, "runs": rows, "median": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
