"""Benchmark: fine-tune the bundled Lite0 on CIFAR-10 JPEGs (all 10 classes or cat/dog), wall time included.

Data: ../shared/data/cifar10-jpg.tar.gz unpacked beside the project (train 50,000 / test 10,000; the test
split is used as validation). Any `transferlab train` setting can be passed as KEY=VALUE. Run:

    .venv/bin/python benchmarks/cifar10_finetune.py --cifar ../cifar10-jpg strategy=unfreeze-last=2 epochs=4
    .venv/bin/python benchmarks/cifar10_finetune.py --classes cat dog strategy=two-phase unfreeze_from=blocks.5
    .venv/bin/python benchmarks/cifar10_finetune.py --first 1000 200 --name sub_u2_160 strategy=unfreeze-last=2 \
        image_size=160 epochs=3   # the 10,000 / 2,000 subset of the exploration in docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml
from _machine import machine
from lightning.pytorch.callbacks import Callback

from transferlab.data.folder import link_class_folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cifar", type=Path, default=Path("../cifar10-jpg"))
    parser.add_argument("--classes", nargs="*", help="Subset of classes (default: all 10).")
    parser.add_argument("--name", default="cifar10")
    parser.add_argument("--cold-cache", action="store_true", help="Start with an empty feature cache.")
    parser.add_argument("--first", type=int, nargs=2, metavar=("TRAIN", "TEST"),
                        help="Only the first TRAIN training and TEST test files of each class (sorted by name).")
    parser.add_argument("--tta", nargs="?", const="flip", choices=("flip", "ten-crop"),
                        help="Also evaluate the best model with test-time augmentation, flip (the default) or "
                             "ten-crop (wall time counted).")
    parser.add_argument("settings", nargs="*", help="KEY=VALUE training settings (YAML values).")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix=f"tl-{args.name}-"))
    if args.cold_cache:
        os.environ["TRANSFERLAB_HOME"] = str(work / "home")
    from transferlab import TrainConfig, fit

    settings = {"model": "efficientnet_lite0", "image_size": 224, "seed": 0, "patience": 0}
    for item in args.settings:
        key, _, value = item.partition("=")
        settings[key] = yaml.safe_load(value) if key != "strategy" else value
    data = (_first_files(args.cifar, work / "data", args.classes, *args.first) if args.first else
            link_class_folders(args.cifar, work / "data", args.classes))
    clock = _Clock()
    start = clock.start = time.perf_counter()
    result = fit(TrainConfig(data=str(data), out=str(work / "run"), **settings), callbacks=[clock])
    fit_wall = time.perf_counter() - start
    tta = result.evaluate(tta=args.tta) if args.tta else None  # the run's validation split = CIFAR's test set
    wall = time.perf_counter() - start
    rows = [{k: r[k] for k in ("epoch", "phase", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")}
            for r in _history(result.run_dir)]
    for row, minutes in zip(rows, clock.minutes):  # the accuracy-versus-minutes curve: wall since the start
        row["wall_minutes"] = round(minutes, 2)
    summary = {"benchmark": f"cifar10_finetune:{args.name}", "date": datetime.now(UTC).isoformat(
               timespec="seconds"), "machine": machine(),
               "classes": args.classes or "all", "settings": settings, "wall_seconds": round(wall, 1),
               "fit_wall_seconds": round(fit_wall, 1),
               "best_val_accuracy": result.metrics["best_val_accuracy"], "best_epoch": result.metrics["best_epoch"],
               "history": rows, "run_dir": str(result.run_dir)}
    if tta is not None:  # the same images scored by the best model, without and with its test-time views averaged
        summary["best_model_accuracy"] = round(tta.metrics["accuracy"], 4)
        summary[f"tta_{args.tta.replace('-', '_')}_accuracy"] = round(tta.tta_metrics["accuracy"], 4)
    print(f"\n{'epoch':>5} {'phase':>5} {'val_acc':>8} {'seconds':>8} {'wall min':>9}")
    for r in rows:
        print(f"{r['epoch']:>5} {r['phase']:>5} {r['val_accuracy']:>8.4f} {r['seconds']:>8.1f} "
              f"{r.get('wall_minutes', float('nan')):>9.1f}")
    print(f"best val accuracy {summary['best_val_accuracy']:.4f}, wall {fit_wall / 60:.1f} min (extraction included)")
    if tta is not None:
        print(f"best model: accuracy {summary['best_model_accuracy']:.4f}, with {args.tta} TTA "
              f"{tta.tta_metrics['accuracy']:.4f}; wall {wall / 60:.1f} min (TTA evaluation included)")
    out = Path("benchmarks/results") / f"{args.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")


def _first_files(source: Path, root: Path, classes: list[str] | None, train: int, test: int) -> Path:
    """train/ and validation/ class folders of links to the first files of each class of source/train and /test."""
    for split, origin, count in (("train", "train", train), ("validation", "test", test)):
        for folder in sorted(p for p in (source / origin).iterdir() if p.is_dir() and (not classes or
                                                                                      p.name in classes)):
            target = root / split / folder.name
            target.mkdir(parents=True, exist_ok=True)
            for path in sorted(folder.glob("*.jpg"))[:count]:
                (target / path.name).symlink_to(path.resolve())
    return root


class _Clock(Callback):
    """Minutes of wall time since the start at the end of each epoch's validation (sanity checks excluded)."""

    def __init__(self) -> None:
        self.start, self.minutes = 0.0, []

    def on_validation_epoch_end(self, trainer, pl_module) -> None:  # noqa: ANN001 - Lightning's hook
        if not trainer.sanity_checking:
            self.minutes.append((time.perf_counter() - self.start) / 60)


def _history(run: Path) -> list[dict]:
    from transferlab.runs.history import read_history

    return read_history(run / "history.csv")


if __name__ == "__main__":
    main()
