"""Benchmark: feature extraction (`training.features.extract_features`, what `train` runs for a frozen base) on
4,000 photo-sized JPEGs with the bf16 engine and with the fp32 one (a CPU without bf16), before (an older commit,
checked out into a temporary git worktree and put first on PYTHONPATH) and after (this tree), alternating; each
measurement a fresh process, imports and model building excluded, malloc tuned as the CLI does.

Before 323e499 the base ran in the main process on all threads while one loader process decoded; since then each of
one single-threaded process per thread decodes its own batches and runs the base (`inference.engine.cpu_processes`).
The photos: train_e2e.py's enlarged CIFAR-10 cats and dogs (500x375 JPEGs). Run:

    .venv/bin/python benchmarks/extraction_processes.py --cifar ../cifar10-jpg --before 6a34702 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from _machine import machine
from _versions import before_source
from train_e2e import make_photos

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import os, sys, time
from transferlab._runtime import tune_malloc
tune_malloc()
import torch
from pathlib import Path
from transferlab.data import Preprocessing, preprocessing_from_model, eval_transform, load_image_folder
from transferlab.inference.engine import Engine, best_engine
from transferlab.models import build_classifier
from transferlab.training.features import extract_features

data, dtype = Path(sys.argv[1]), sys.argv[2]
splits = load_image_folder(data)
net = build_classifier("efficientnet_lite0", 2)
pre = preprocessing_from_model(net)
engine = best_engine() if dtype == "bfloat16" else Engine(dtype="float32", channels_last=True, device="cpu",
                                                          fold_bn=True)
start = time.perf_counter()
workers = min(4, max(0, (os.cpu_count() or 1) // 2))  # train's default
feats = [extract_features(net.features, s, eval_transform(pre), 64, workers, engine, True,
                          min_size=pre.resize_size) for s in (splits.train, splits.validation)]
print(time.perf_counter() - start, sum(len(f) for f in feats), float(feats[0][:4].float().sum()))
"""


def extract(pythonpath: str | None, data: Path, dtype: str) -> dict:
    env = {**os.environ, **({"PYTHONPATH": pythonpath} if pythonpath else {})}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(data), dtype], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    seconds, count, checksum = proc.stdout.split()[-3:]
    return {"seconds": round(float(seconds), 2), "images": int(count), "checksum": round(float(checksum), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cifar", type=Path, default=Path("../cifar10-jpg"))
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "tl-train-e2e")
    parser.add_argument("--before", required=True, help="A commit to compare with (checked out into a worktree).")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "extraction_processes.json")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    data = make_photos(args.cifar, args.work / "catdog-photos")
    versions = {"before": before_source(args.before, args.work), "after": None}
    rows: dict[str, list[dict]] = {}
    for _ in range(args.repeats):
        for dtype in ("bfloat16", "float32"):
            for name, path in versions.items():
                rows.setdefault(f"{name} {dtype}", []).append(extract(path, data, dtype))
                print(name, dtype, rows[f"{name} {dtype}"][-1], flush=True)
    summary = {key: statistics.median(r["seconds"] for r in runs) for key, runs in rows.items()}
    print(f"\n{'engine':>9} {'before s':>9} {'after s':>8} {'speed-up':>9}")
    for dtype in ("bfloat16", "float32"):
        b, a = summary[f"before {dtype}"], summary[f"after {dtype}"]
        print(f"{dtype:>9} {b:>9.1f} {a:>8.1f} {b / a:>8.2f}x")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "extraction_processes", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(), "before": args.before, "repeats": args.repeats, "runs": rows,
        "median_seconds": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
