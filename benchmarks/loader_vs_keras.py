"""Benchmark: transferlab's training loader vs Keras ImageDataGenerator.flow_from_directory, side by side.

150x150, the course's augmentation preset, batch 32, on one folder of photo-sized JPEGs. By default the
folder is made from scikit-image's sample photos (random crops, rescaled to about 500x375, saved as JPEG);
pass --data for a folder of your own photos (class folders). Keras 3 runs with the torch backend (no
TensorFlow needed; its ImageDataGenerator needs scipy). Run:

    .venv/bin/python benchmarks/loader_vs_keras.py --images 1000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from _machine import machine


def make_photos(root: Path, count: int, seed: int = 0) -> Path:
    from PIL import Image
    from skimage import data as skdata

    names = ["astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "motorcycle_left",
             "cat"]
    photos = []
    for name in names:
        try:
            arr = getattr(skdata, name)()
        except Exception:  # noqa: BLE001 - a sample that needs a download
            continue
        if arr.ndim == 3 and arr.shape[2] >= 3:
            photos.append(Image.fromarray(arr[..., :3]))
    rng = np.random.default_rng(seed)
    for i in range(count):
        img = photos[i % len(photos)]
        w, h = img.size
        cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        out = img.crop((x, y, x + cw, y + ch)).resize((500, 375))
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        out.save(folder / f"{i:05d}.jpg", quality=90)
    return root


def keras_rate(data: Path, batch: int, batches: int) -> float:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    gen = ImageDataGenerator(rescale=1 / 255, rotation_range=40, width_shift_range=0.2, height_shift_range=0.2,
                             shear_range=0.2, zoom_range=0.2, horizontal_flip=True)
    flow = gen.flow_from_directory(str(data), target_size=(150, 150), batch_size=batch, class_mode="binary")
    start, n = time.perf_counter(), 0
    for _ in range(batches):
        x, _ = next(flow)
        n += len(x)
    return n / (time.perf_counter() - start)


def ours_rate(data: Path, batch: int, workers: int, epochs: int, cache_dir: Path) -> list[float]:
    from transferlab.data import load_image_folder, preprocessing_from_model
    from transferlab.data.datasets import ImageListDataset, ImageLoader
    from transferlab.data.decoded import DecodedCache
    from transferlab.data.transforms import BatchTransform, train_uint8_transform
    from transferlab.models import create_model

    pre = preprocessing_from_model(create_model("course_cnn", weights="none"))
    samples = load_image_folder(data).train + load_image_folder(data).validation
    cache = DecodedCache(samples, pre, cache_dir)
    # what `transferlab train` does on a CPU: while the decoded cache fills, workers decode and augment whole
    # batches; afterwards the cache is read in-process and the training module augments each uint8 batch on
    # the device before the forward pass
    ds = ImageListDataset(samples, train_uint8_transform(pre, "course", resized=True), pre.resize_size, cache=cache)
    augment = BatchTransform(pre, "course")
    loader = ImageLoader(ds, batch_size=batch, shuffle=True, num_workers=workers, persistent_workers=workers > 0,
                         worker_transform=augment)
    rates = []
    for _ in range(epochs):
        start, n = time.perf_counter(), 0
        for x, y in loader:
            if x.dtype == torch.uint8:  # TransferModule.on_after_batch_transfer
                x, y = augment(x, y)
            n += len(x)
        rates.append(n / (time.perf_counter() - start))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each loader (fresh caches); medians shown")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/loader_vs_keras.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tl-loader-"))
    data = args.data or make_photos(work / "photos", args.images)
    count = sum(1 for _ in data.rglob("*.jpg"))
    runs = [keras_rate(data, args.batch, max(1, count // args.batch)) for _ in range(args.repeats)]
    keras = float(np.median(runs))
    rows = [{"loader": "Keras ImageDataGenerator.flow_from_directory", "workers": 0, "epoch": 1,
             "images_per_s": round(keras, 1), "runs": [round(r, 1) for r in runs]}]
    for workers in (0, 2):
        runs = [ours_rate(data, args.batch, workers, 2, work / f"cache{workers}-{r}") for r in range(args.repeats)]
        for epoch in (1, 2):
            rates = [r[epoch - 1] for r in runs]
            rows.append({"loader": "transferlab (decoded cache)", "workers": workers, "epoch": epoch,
                         "images_per_s": round(float(np.median(rates)), 1), "runs": [round(r, 1) for r in rates]})
    print(f"{count} photos, 150x150, course augmentation, batch {args.batch}; median of {args.repeats} runs")
    print(f"{'loader':48} {'workers':>7} {'epoch':>5} {'img/s':>8} {'vs Keras':>9}  runs")
    for r in rows:
        r["ratio_vs_keras"] = round(r["images_per_s"] / keras, 2)
        print(f"{r['loader']:48} {r['workers']:>7} {r['epoch']:>5} {r['images_per_s']:>8.1f} "
              f"{r['ratio_vs_keras']:>9.2f}  {r['runs']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "loader_vs_keras", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(), "images": count,
        "data": "given" if args.data else "generated from scikit-image sample photos, 500x375 JPEG",
        "repeats": args.repeats, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
