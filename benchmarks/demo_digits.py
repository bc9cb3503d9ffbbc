"""Benchmark: the `make demo` job (bundled Lite0 fine-tuned on scikit-learn's digits), at several image sizes.

Prints a table and writes JSON (default benchmarks/results/demo_digits.json). Run:

    .venv/bin/python benchmarks/demo_digits.py --sizes 64 96 --epochs 4
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import torch
from _machine import machine

from transferlab import TrainConfig, fit
from transferlab.data.demo import write_digits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 96])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/demo_digits.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tl-bench-"))
    data = write_digits(work / "digits")
    rows = []
    for size in args.sizes:
        start = time.perf_counter()
        result = fit(TrainConfig(data=str(data), out=str(work / f"run{size}"), model="efficientnet_lite0",
                                 strategy="full", epochs=args.epochs, image_size=size, lr=1e-3, seed=0), quiet=True)
        wall = time.perf_counter() - start
        rows.append({"image_size": size, "epochs": args.epochs,
                     "best_val_accuracy": result.metrics["best_val_accuracy"], "wall_seconds": round(wall, 1)})
    base = rows[0]["wall_seconds"]
    print(f"{'size':>5} {'epochs':>6} {'val_acc':>8} {'wall_s':>7} {'time vs first':>13}")
    for r in rows:
        r["time_ratio_vs_first"] = round(r["wall_seconds"] / base, 2)
        print(f"{r['image_size']:>5} {r['epochs']:>6} {r['best_val_accuracy']:>8.4f} {r['wall_seconds']:>7.1f} "
              f"{r['time_ratio_vs_first']:>13.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "demo_digits", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(torch_threads=torch.get_num_threads(), torch=str(torch.__version__)),
        "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
