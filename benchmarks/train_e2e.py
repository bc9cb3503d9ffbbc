"""Benchmark: the default `transferlab train` end to end on 4,000 photo-sized JPEGs (2,000 training, 2,000
validation, cats and dogs), each run a cold process with a cold feature cache (a fresh TRANSFERLAB_HOME), before (an
older commit, checked out into a temporary git worktree and put first on PYTHONPATH) and after (this tree),
alternating so that load drifts hit both alike.

The photos: CIFAR-10's cat and dog JPEGs (../shared/data/cifar10-jpg.tar.gz, unpacked; never in the repository)
enlarged to 500x375 (bicubic, JPEG quality 90), the first 1,000 of each class from train/ and from test/. What
the table shows per version (median of --repeats): wall seconds of the whole command, the feature extraction
seconds it prints, the post-fit report's seconds (from eval_metrics.json) and the best validation accuracy. Run:

    .venv/bin/python benchmarks/train_e2e.py --cifar ../cifar10-jpg --before 7fcf3c2 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_photos(cifar: Path, out: Path, per_class: int = 1000, size: tuple[int, int] = (500, 375)) -> Path:
    """train/ and validation/ folders of enlarged CIFAR cat and dog JPEGs (made once, reused)."""
    from PIL import Image

    done = out / ".complete"
    if done.is_file():
        return out
    for split, source in (("train", "train"), ("validation", "test")):
        for label in ("cat", "dog"):
            folder = out / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for path in sorted((cifar / source / label).glob("*.jpg"))[:per_class]:
                Image.open(path).convert("RGB").resize(size, Image.BICUBIC).save(folder / path.name, quality=90)
    done.write_text("made\n")
    return out


def run(pythonpath: str | None, data: Path, work: Path) -> dict:
    env = {**os.environ, "TRANSFERLAB_HOME": tempfile.mkdtemp(prefix="tl-home-", dir=work)}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    out = Path(tempfile.mkdtemp(prefix="tl-run-", dir=work)) / "run"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "transferlab", "train", str(data), "--out", str(out)], env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
    text = proc.stdout + proc.stderr
    features = sum(float(s) for s in re.findall(r"Features of \d+ \w+ images: [^(]*\((\d+\.\d+) s\)", text))
    metrics = json.loads((out / "metrics.json").read_text())
    report = json.loads((out / "eval_metrics.json").read_text())
    return {"wall_seconds": round(wall, 2), "feature_seconds": round(features, 2),
            "report_seconds": report.get("seconds"), "best_val_accuracy": metrics["best_val_accuracy"],
            "report_accuracy": report.get("accuracy")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cifar", type=Path, default=Path("../cifar10-jpg"))
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "tl-train-e2e")
    parser.add_argument("--before", default=None, help="A commit to compare with (checked out into a worktree).")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "train_e2e.json")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    data = make_photos(args.cifar, args.work / "catdog-photos")
    versions = {"after": None}
    if args.before:
        tree = args.work / f"before-{args.before}"
        if not tree.is_dir():
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), args.before], check=True,
                           capture_output=True)
        versions = {"before": str(tree / "src"), "after": None}
    rows: dict[str, list[dict]] = {name: [] for name in versions}
    for _ in range(args.repeats):
        for name, path in versions.items():
            rows[name].append(run(path, data, args.work))
            print(name, rows[name][-1], flush=True)
    summary = {name: {key: statistics.median(r[key] for r in runs) for key in runs[0] if runs[0][key] is not None}
               for name, runs in rows.items()}
    print(f"\n{'version':>8} {'wall s':>8} {'features s':>11} {'report s':>9} {'best val acc':>13}")
    for name, s in summary.items():
        print(f"{name:>8} {s['wall_seconds']:>8.1f} {s['feature_seconds']:>11.1f} {s.get('report_seconds', 0):>9.2f} "
              f"{s['best_val_accuracy']:>13.4f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "train_e2e", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "processor": platform.processor()},
        "command": "transferlab train DATA --out RUN (defaults), cold process, fresh TRANSFERLAB_HOME",
        "before": args.before, "repeats": args.repeats, "runs": rows, "median": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
