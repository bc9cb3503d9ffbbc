"""Benchmark: `freeze` with the feature cache vs the Keras way (the frozen base run every epoch), same run.

Both train the bundled Lite0's new head for the same epochs on the same data; the cache run starts cold
(extraction included). Uses the CIFAR-10 JPEGs' cat and dog classes (../shared/data, unpacked beside the
project) unless --data is given. Run:

    .venv/bin/python benchmarks/cache_vs_keras.py --cifar ../cifar10-jpg --epochs 10
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _machine import machine

from transferlab.data.folder import link_class_folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cifar", type=Path, default=Path("../cifar10-jpg"))
    parser.add_argument("--data", type=Path, help="A train/validation folder to use instead of CIFAR cat/dog.")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/cache_vs_keras.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tl-cache-bench-"))
    os.environ["TRANSFERLAB_HOME"] = str(work / "home")  # a cold cache
    from transferlab import TrainConfig, fit

    data = args.data or link_class_folders(args.cifar, work / "catdog", ["cat", "dog"])
    rows = []
    for name, cache in (("transferlab freeze + feature cache", True), ("Keras way (base run every epoch)", False)):
        config = TrainConfig(data=str(data), out=str(work / ("cache" if cache else "keras")), epochs=args.epochs,
                             strategy="freeze", patience=0, image_size=args.image_size, feature_cache=cache, seed=0)
        start = time.perf_counter()
        result = fit(config, quiet=True)
        wall = time.perf_counter() - start
        rows.append({"method": name, "epochs": args.epochs, "wall_seconds": round(wall, 1),
                     "best_val_accuracy": result.metrics["best_val_accuracy"],
                     "final_val_accuracy": result.metrics["final"]["val_accuracy"]})
        print(json.dumps(rows[-1]), flush=True)
    ratio = rows[1]["wall_seconds"] / rows[0]["wall_seconds"]
    print(f"\n{'method':38} {'epochs':>6} {'wall s':>8} {'best val acc':>12}")
    for r in rows:
        print(f"{r['method']:38} {r['epochs']:>6} {r['wall_seconds']:>8.1f} {r['best_val_accuracy']:>12.4f}")
    print(f"wall-time ratio (Keras way / cache): {ratio:.1f}x")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "cache_vs_keras", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(), "data": str(data),
        "image_size": args.image_size, "rows": rows, "ratio_keras_over_cache": round(ratio, 2)}, indent=2) + "\n")


if __name__ == "__main__":
    main()
