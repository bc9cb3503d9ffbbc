"""Benchmark: memory and disk of transferlab's caches at 10k, 50k and 200k images (issue #18, goal 4).

Each row is one real `transferlab train ... --epochs 1` process with a fresh cache home ($TRANSFERLAB_HOME) and
the default `--cache-limit-gb` (8):

- features: `--strategy freeze` (the frozen base's pooled features, float32, cached on disk and held in memory);
- boundary: `--strategy unfreeze-last=2` (the frozen prefix's activations at the first trainable stage, bf16);
- decoded: `--strategy freeze --no-feature-cache` (the frozen base runs on every batch; its images come from the
  memory-mapped decoded-image cache of resize_size x resize_size uint8 pixels).

A run whose cache would exceed the limit says so and streams instead. Every run trains for at most
`--max-minutes 1`: the caches are complete before the training loop starts, and a streaming run's memory does
not grow with time (the run's final report still evaluates every validation image). The decoded-image cache
is filled as an epoch reads the images, so its rows that fit are run again for one whole epoch (`--minutes 0
--kinds decoded --append`). While a run lasts, a sampler reads
every 0.5 s the resident set of the main process and the proportional set size (PSS: shared and memory-mapped
pages counted once) of the whole process tree; the disk column is the space allocated under the cache home
and the run folder after the run. Images: CIFAR-10 JPEGs linked as class folders (`--cifar`); the 200k set
repeats each training photo (symbolic links under new names: the same pixels, new files to the caches).
Run (about 50 minutes on 2 cores):

    .venv/bin/python benchmarks/cache_scale.py --cifar ../cifar10-jpg
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
from _machine import machine

ROOT = Path(__file__).resolve().parents[1]
SIZES = {10_000: (8_000, 2_000), 50_000: (40_000, 10_000), 200_000: (190_000, 10_000)}
KINDS = {"features": ["--strategy", "freeze"], "boundary": ["--strategy", "unfreeze-last=2"],
         "decoded": ["--strategy", "freeze", "--no-feature-cache"]}


def link_images(cifar: Path, root: Path, train: int, validation: int) -> Path:
    """root/train/CLASS and root/validation/CLASS of file links: `train` images drawn round-robin from CIFAR's
    train split (repeated under new names when more are asked than it has), `validation` from its test split."""
    for split, origin, count in (("train", "train", train), ("validation", "test", validation)):
        classes = sorted(p.name for p in (cifar / origin).iterdir() if p.is_dir())
        files = {c: sorted((cifar / origin / c).iterdir()) for c in classes}
        per_class = count // len(classes)
        for c in classes:
            folder = root / split / c
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                source = files[c][i % len(files[c])]
                (folder / f"r{i // len(files[c])}_{source.name}").symlink_to(source.resolve())
    return root


def allocated_bytes(*folders: Path) -> int:
    total = 0
    for folder in folders:
        for dirpath, _, names in os.walk(folder):
            for name in names:
                path = Path(dirpath) / name
                if not path.is_symlink():
                    total += path.stat().st_blocks * 512
    return total


class Sampler(threading.Thread):
    """Peak RSS of one process and peak PSS of it with all its descendants, sampled every `period` seconds."""

    def __init__(self, pid: int, period: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.process, self.period = psutil.Process(pid), period
        self.peak_rss = self.peak_pss = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                self.peak_rss = max(self.peak_rss, self.process.memory_info().rss)
                tree = [self.process, *self.process.children(recursive=True)]
                pss = 0
                for p in tree:
                    try:
                        pss += p.memory_full_info().pss
                    except (psutil.NoSuchProcess, psutil.AccessDenied):
                        continue
                self.peak_pss = max(self.peak_pss, pss)
            except psutil.NoSuchProcess:
                break
            self.done.wait(self.period)


def run_one(data: Path, work: Path, kind: str, minutes: float | None) -> dict:
    home, out = work / "home", work / "run"
    command = [sys.executable, "-m", "transferlab", "train", str(data), "--epochs", "1", "--out", str(out),
               *KINDS[kind], *(["--max-minutes", str(minutes)] if minutes else [])]
    env = {**os.environ, "TRANSFERLAB_HOME": str(home), "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "200"}
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = Sampler(proc.pid)
    sampler.start()
    output = proc.communicate()[0]
    sampler.done.set()
    sampler.join()
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{output[-3000:]}")
    over = re.findall(r"The ([\w-]+) cache of ([\d,]+) images would take ([\d.]+) GB", output)
    metrics = json.loads((out / "metrics.json").read_text())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    return {"kind": kind, "commit": commit.strip(), "seconds": round(seconds, 1),
            "peak_rss_gb": round(sampler.peak_rss / 1e9, 2),
            "peak_pss_gb": round(sampler.peak_pss / 1e9, 2), "disk_gb": round(allocated_bytes(home, out) / 1e9, 2),
            "over_limit": [{"cache": c, "images": int(n.replace(",", "")), "gb": float(g)} for c, n, g in over],
            "val_accuracy": metrics.get("best_val_accuracy"), "command": " ".join(command[1:]),
            "lines": [line for line in output.splitlines() if "Features of" in line or "cache of" in line]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cifar", required=True, help="the CIFAR-10 JPEG tree (train/ and test/ class folders)")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="numbers of images (others: 80 %% "
                        "train, 20 %% validation)")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--minutes", type=float, default=1.0, help="--max-minutes of each run (caches are made "
                        "before training starts, so this bounds only the training loop; 0: one whole epoch, which "
                        "the decoded-image cache needs to be filled)")
    parser.add_argument("--append", action="store_true", help="keep the rows of --out, replacing those run again")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cache_scale.json"))
    args = parser.parse_args()
    rows = json.loads(Path(args.out).read_text())["rows"] if args.append and Path(args.out).is_file() else []
    print(f"{'images':>8} {'cache':<9}{'seconds':>9}{'RSS GB':>8}{'PSS GB':>8}{'disk GB':>9}  over the limit")
    for size in args.sizes:
        with tempfile.TemporaryDirectory(dir=ROOT.parent) as tmp:
            data = link_images(Path(args.cifar), Path(tmp) / "data", *SIZES.get(size, (size * 4 // 5, size // 5)))
            for kind in args.kinds:
                with tempfile.TemporaryDirectory(dir=tmp) as work:
                    row = {"images": size, **run_one(data, Path(work), kind, args.minutes or None)}
                rows = [r for r in rows if (r["images"], r["kind"]) != (size, kind)] + [row]
                over = ", ".join(f"{o['cache']} {o['gb']} GB" for o in row["over_limit"]) or "-"
                print(f"{size:>8} {kind:<9}{row['seconds']:>9.1f}{row['peak_rss_gb']:>8.2f}{row['peak_pss_gb']:>8.2f}"
                      f"{row['disk_gb']:>9.2f}  {over}", flush=True)
                result = {"benchmark": "cache_scale", "rows": rows, "command": " ".join(sys.argv),
                          "machine": machine(memory_gb=round(psutil.virtual_memory().total / 1e9, 1)),
                          "date": datetime.now(UTC).isoformat(timespec="seconds")}
                Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
