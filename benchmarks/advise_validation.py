"""Validation of `transferlab advise`: does the advised strategy win under one time budget?

Three data sets of different kinds: the CIFAR-10 cat/dog classes at 32 px (a subset), scikit-learn's 8x8
digits, and oriented gratings made here (texture-like, far from ImageNet's photos). For each: `advise`, then
the advised settings and every alternative strategy (freeze, unfreeze-last=2, two-phase, full; each with the
default learning rate) trained with the same training-time budget. The advice passes when its validation
accuracy is the best or within 1 point of it. Writes JSON and prints a table; docs/results.md quotes it. Run:

    .venv/bin/python benchmarks/advise_validation.py --cifar ../cifar10-jpg --budget 0.75
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from _machine import machine
from PIL import Image

from transferlab.training.strategies import advised_candidates  # noqa: E402

STRATEGIES = list(advised_candidates())  # every strategy the advice may propose


def gratings(root: Path, per_class: int = 150, val: int = 50, size: int = 64, seed: int = 0) -> Path:
    """Four classes of noisy sinusoidal gratings (0, 45, 90, 135 degrees), random frequency and phase."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for split, n in (("train", per_class), ("validation", val)):
        for angle in (0, 45, 90, 135):
            folder = root / split / f"deg{angle:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                theta = np.deg2rad(angle + rng.normal(0, 6))
                freq = rng.uniform(0.08, 0.35)
                wave = np.sin(freq * (xx * np.cos(theta) + yy * np.sin(theta)) + rng.uniform(0, 2 * np.pi))
                pixels = np.clip(128 + 70 * wave + rng.normal(0, 40, wave.shape), 0, 255).astype(np.uint8)
                Image.fromarray(pixels, mode="L").convert("RGB").save(folder / f"{i:04d}.png")
    return root


def cifar_catdog(cifar: Path, root: Path, per_class: int = 500, val: int = 200) -> Path:
    for split, source, n in (("train", "train", per_class), ("validation", "test", val)):
        for cls in ("cat", "dog"):
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for path in sorted((cifar / source / cls).glob("*.jpg"))[:n]:
                target = folder / path.name
                if not target.exists():
                    target.symlink_to(path.resolve())
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cifar", type=Path, default=Path("../cifar10-jpg"))
    parser.add_argument("--budget", type=float, default=0.75, help="training minutes per run")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/advise_validation.json"))
    parser.add_argument("--reuse-alternatives", action="store_true",
                        help="keep the alternatives' runs from --json and run only the (changed) advice again")
    args = parser.parse_args()
    previous = {}
    if args.reuse_alternatives and args.json.is_file():
        previous = {r["data"]: r["runs"] for r in json.loads(args.json.read_text())["results"]}
    from transferlab import TrainConfig, fit
    from transferlab.data.demo import write_digits
    from transferlab.training.advise import advise

    work = Path(tempfile.mkdtemp(prefix="tl-advise-"))
    sets = {"cifar cat/dog (32 px)": cifar_catdog(args.cifar, work / "catdog"),
            "digits (8 px)": write_digits(work / "digits"),
            "gratings (far from ImageNet)": gratings(work / "gratings")}
    results = []
    for name, data in sets.items():
        start = time.perf_counter()
        advice = advise(data)
        advice_seconds = time.perf_counter() - start
        runs = {}
        for label, settings in [("advised", {"strategy": advice.strategy, "lr": advice.lr})] + [
                (s, {"strategy": s}) for s in STRATEGIES]:
            if label != "advised" and label in previous.get(name, {}):
                runs[label] = previous[name][label]
                continue
            out = work / "runs" / f"{name.split()[0]}-{label.replace('=', '')}"
            t = time.perf_counter()
            result = fit(TrainConfig(data=str(data), out=str(out), epochs=200, patience=0, num_workers=2,
                                     max_minutes=args.budget, seed=0, **settings), overwrite=True, quiet=True)
            runs[label] = {"best_val_accuracy": result.metrics["max_val_accuracy"],
                           "epochs_run": result.metrics["epochs_run"],
                           "wall_seconds": round(time.perf_counter() - t, 1), **settings}
            print(name, label, runs[label], flush=True)
        best_alt = max(STRATEGIES, key=lambda s: runs[s]["best_val_accuracy"])
        gap = runs[best_alt]["best_val_accuracy"] - runs["advised"]["best_val_accuracy"]
        results.append({"data": name, "advice": {"strategy": advice.strategy, "lr": advice.lr,
                                                 "seconds": round(advice_seconds, 1),
                                                 "linear_probe": advice.measurements.get("linear_probe_accuracy"),
                                                 "per_class": advice.measurements.get("images_per_class_median")},
                        "runs": runs, "best_alternative": best_alt, "points_behind_best": round(100 * gap, 2),
                        "passes": round(gap, 6) <= 0.01})
    print(f"{'data':32} {'advised':18} {'lr':>8} " + " ".join(f"{s:>16}" for s in ["advised", *STRATEGIES])
          + f" {'pass':>5}")
    for r in results:
        print(f"{r['data']:32} {r['advice']['strategy']:18} {r['advice']['lr']:>8} "
              + " ".join(f"{r['runs'][s]['best_val_accuracy']:>16.4f}" for s in ["advised", *STRATEGIES])
              + f" {str(r['passes']):>5}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"benchmark": "advise_validation", "budget_minutes": args.budget,
                                     "date": datetime.now(UTC).isoformat(timespec="seconds"),
                                     "machine": machine(),
                                     "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
