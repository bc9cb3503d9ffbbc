"""Benchmark: the default `transferlab train` end to end on 4,000 photo-sized JPEGs (2,000 training, 2,000
validation, cats and dogs), each run a cold process with a cold feature cache (a fresh TRANSFERLAB_HOME), before (an
older commit, checked out into a temporary git worktree and put first on PYTHONPATH) and after (this tree),
alternating so that load drifts hit both alike.

The photos: CIFAR-10's cat and dog JPEGs (../shared/data/cifar10-jpg.tar.gz, unpacked; never in the repository)
enlarged to 500x375 (bicubic, JPEG quality 90), the first 1,000 of each class from train/ and from test/. What
the table shows per version (median of --repeats): wall seconds of the whole command, the feature extraction
seconds it prints, the post-fit report's seconds (from eval_metrics.json) and the best validation accuracy.
With --breakdown, the after version's wall time is split: imports (a cold `import transferlab.training.fit`),
feature extraction (printed by train), the epochs (history.csv) and the rest (scan, model, saving, report);
and the floor (`FLOOR`, imports excluded): the network alone on 4,000 random images as extraction runs it, in one
process on all threads and in one single-threaded process per thread, and decoding alone on one core. Run:

    .venv/bin/python benchmarks/train_e2e.py --cifar ../cifar10-jpg --before 7fcf3c2 --repeats 2
    .venv/bin/python benchmarks/train_e2e.py --cifar ../cifar10-jpg --repeats 3 --breakdown
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _machine import machine
from _versions import before_source

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
    with open(out / "history.csv", encoding="utf-8") as f:
        epochs = sum(float(row["seconds"]) for row in csv.DictReader(f))
    return {"wall_seconds": round(wall, 2), "feature_seconds": round(features, 2), "epoch_seconds": round(epochs, 2),
            "report_seconds": report.get("seconds"), "best_val_accuracy": metrics["best_val_accuracy"],
            "report_accuracy": report.get("accuracy")}


def import_seconds(pythonpath: str | None) -> float:
    """Wall seconds of a cold process that imports what `train` imports before it reads any image."""
    env = {**os.environ, **({"PYTHONPATH": pythonpath} if pythonpath else {})}
    code = "import time; t = time.perf_counter(); import transferlab.training.fit; print(time.perf_counter() - t)"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return round(float(proc.stdout.split()[-1]), 2)


FLOOR = """
import os, sys, time
from transferlab._runtime import tune_malloc
tune_malloc()
import torch
from transferlab.data import Preprocessing, preprocessing_from_model, eval_transform
from transferlab.data.images import load_rgb
from transferlab.inference.engine import best_engine, fold_batch_norm
from transferlab.models import build_classifier

what, count = sys.argv[1], int(sys.argv[2])
net = build_classifier("efficientnet_lite0", 2)
pre = preprocessing_from_model(net)
engine = best_engine()
if what == "decode":  # one process: read, decode at reduced scale, resize, crop, normalise
    paths = sorted(str(p) for p in __import__("pathlib").Path(sys.argv[3]).rglob("*.jpg"))[:count]
    tf = eval_transform(pre)
    start = time.perf_counter()
    for p in paths:
        tf(load_rgb(p, min_size=pre.resize_size))
    print(time.perf_counter() - start)
    sys.exit()
x = torch.randn(64, 3, pre.image_size, pre.image_size).contiguous(memory_format=torch.channels_last)
base = fold_batch_norm(net.features.eval(), check=x[:2]).to(memory_format=torch.channels_last)
processes = torch.get_num_threads() if what == "processes" else 1
batches = -(-count // 64)

def work(share):
    with torch.inference_mode(), torch.autocast("cpu", dtype=getattr(torch, engine["dtype"])):
        for _ in range(share):
            base(x)

start = time.perf_counter()
if processes == 1:
    work(batches)
else:
    children = []
    for k in range(processes):
        pid = os.fork()
        if pid == 0:
            torch.set_num_threads(1)
            work(len(range(k, batches, processes)))
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
print(time.perf_counter() - start)
"""


def floor_seconds(data: Path, count: int = 4000) -> dict[str, float]:
    """The floor, measured in separate processes (imports excluded): the bundled Lite0 as extraction runs it
    (BatchNorm folded, bf16 where native, channels_last) over `count` random images in batches of 64, once in one
    process on all threads and once in one single-threaded process per thread (what extraction does); and decoding
    alone: the photos read, decoded, resized, cropped and normalised in one process (one core's seconds)."""
    out = {}
    for what in ("threads", "processes", "decode"):
        proc = subprocess.run([sys.executable, "-c", FLOOR, what, str(count), str(data)], capture_output=True,
                              text=True, check=True)
        out[f"{what}_seconds"] = round(float(proc.stdout.split()[-1]), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cifar", type=Path, default=Path("../cifar10-jpg"))
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "tl-train-e2e")
    parser.add_argument("--before", default=None, help="A commit to compare with (checked out into a worktree).")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--breakdown", action="store_true",
                        help="Also time imports and the floor (network alone, decoding alone).")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "train_e2e.json")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    data = make_photos(args.cifar, args.work / "catdog-photos")
    versions = {"after": None}
    if args.before:
        versions = {"before": before_source(args.before, args.work), "after": None}
    rows: dict[str, list[dict]] = {name: [] for name in versions}
    for _ in range(args.repeats):
        for name, path in versions.items():
            rows[name].append(run(path, data, args.work))
            if args.breakdown and name == "after":
                rows[name][-1]["import_seconds"] = import_seconds(path)
                rows[name][-1].update(floor_seconds(data))
            print(name, rows[name][-1], flush=True)
    summary = {name: {key: statistics.median(r[key] for r in runs) for key in runs[0] if runs[0][key] is not None}
               for name, runs in rows.items()}
    print(f"\n{'version':>8} {'wall s':>8} {'features s':>11} {'report s':>9} {'best val acc':>13}")
    for name, s in summary.items():
        print(f"{name:>8} {s['wall_seconds']:>8.1f} {s['feature_seconds']:>11.1f} {s.get('report_seconds', 0):>9.2f} "
              f"{s['best_val_accuracy']:>13.4f}")
    if args.breakdown:
        s = summary["after"]
        rest = s["wall_seconds"] - s["import_seconds"] - s["feature_seconds"] - s["epoch_seconds"]
        print(f"\nafter, median: imports {s['import_seconds']:.1f} s, feature extraction {s['feature_seconds']:.1f} s, "
              f"epochs {s['epoch_seconds']:.1f} s, the rest {rest:.1f} s")
        print(f"floor: the network alone {s['threads_seconds']:.1f} s in one process on all threads, "
              f"{s['processes_seconds']:.1f} s in one process per thread; decoding alone {s['decode_seconds']:.1f} s "
              "of one core")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "train_e2e", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": "transferlab train DATA --out RUN (defaults), cold process, fresh TRANSFERLAB_HOME",
        "before": args.before, "repeats": args.repeats, "runs": rows, "median": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
