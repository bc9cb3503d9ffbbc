"""Benchmark: what test-time views beyond the mirror image buy a trained run, and what each costs.

Every labelled image is decoded and resized as `transferlab evaluate` does (the shorter side to
image_size / crop_pct), then torchvision's `ten_crop` takes the centre and four corner crops of image_size,
plain and mirrored. The run's model (the `Predictor` engine that `evaluate` uses) scores each view; the table
gives the accuracy of the averaged probabilities for the centre alone (what `evaluate` scores), centre +
mirror (`--tta flip`), `FiveCrop` and `TenCrop`, and the seconds of each forward pass over all images. The views
are compared on the data given, so use it to choose a test-time augmentation only with data the model did not
select on. (`evaluate --tta ten-crop` averages the same corner views; it mirrors each crop, as `--tta flip` does,
where `ten_crop` mirrors the image first, so their mirrored centres can be one pixel apart.) Run:

    .venv/bin/python benchmarks/tta_views.py RUN_DIR ../cifar10-jpg/test --json benchmarks/results/tta_views.json
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from _machine import machine

# torchvision's ten_crop order: corners tl, tr, bl, br, centre, then the same five mirrored
VIEWS = {"centre": [4], "centre + mirror (--tta flip)": [4, 9], "five crops (FiveCrop)": [0, 1, 2, 3, 4],
         "ten crops (TenCrop)": list(range(10))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run", type=Path, help="A run folder (or bundle) that `transferlab evaluate` takes.")
    parser.add_argument("data", type=Path, help="Labelled images: one folder per class of the run.")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/tta_views.json"))
    args = parser.parse_args()

    from dataclasses import replace

    import numpy as np
    import torch
    from torchvision.transforms.v2.functional import ten_crop

    from transferlab.evaluation.metrics import resolve_eval_samples
    from transferlab.inference.portable import preprocess
    from transferlab.inference.predictor import Predictor

    predictor = Predictor(args.run)
    pre = predictor.preprocessing
    samples, _, _ = resolve_eval_samples(args.data, predictor.labels)  # the images `evaluate` would score
    paths, y = [s.path for s in samples], np.asarray([s.label for s in samples])
    size, margin = pre.image_size, pre.resize_size
    uncropped = replace(pre, image_size=margin, crop_pct=1.0)  # the resized image before the centre crop
    probs = np.zeros((10, len(paths), len(predictor.labels)))
    decode_s, view_s = 0.0, np.zeros(10)
    for start in range(0, len(paths), args.batch):
        t = time.perf_counter()
        batch = torch.from_numpy(np.stack([preprocess(predictor.decode(p), uncropped)  # evaluate's decoding
                                           for p in paths[start:start + args.batch]]))
        views = ten_crop(batch, [size, size], vertical_flip=False)
        decode_s += time.perf_counter() - t
        for v, view in enumerate(views):
            t = time.perf_counter()
            probs[v, start:start + len(batch)] = predictor.batch_probabilities(view.contiguous())
            view_s[v] += time.perf_counter() - t
    rows = []
    for name, idx in VIEWS.items():
        accuracy = float((probs[idx].mean(0).argmax(1) == y).mean())
        rows.append({"views": name, "count": len(idx), "accuracy": round(accuracy, 4),
                     "forward_s": round(float(view_s[idx].sum()), 1)})
    print(f"{len(paths)} images of {args.data}, run {args.run}, {size} px crops of {margin} px; decoding and "
          f"resizing {decode_s:.1f} s")
    print(f"{'views':30} {'n':>3} {'accuracy':>9} {'forward s':>10}")
    for r in rows:
        print(f"{r['views']:30} {r['count']:>3} {r['accuracy']:>9.4f} {r['forward_s']:>10.1f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "tta_views", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(), "run": str(args.run),
        "data": str(args.data), "images": len(paths), "image_size": size, "resized": margin,
        "engine": predictor.engine_name, "decode_s": round(decode_s, 1),
        "per_view_accuracy": [round(float((probs[v].argmax(1) == y).mean()), 4) for v in range(10)],
        "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
