"""`data info`: what is in a data set — counts, image sizes, unreadable files, duplicates and leakage."""

from __future__ import annotations

import hashlib
import os
import statistics
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PIL import Image

from .._io import file_digest
from .folder import duplicate_groups, find_duplicates
from .images import is_virtual, load_rgb
from .sources import load_image_folder

__all__ = ["data_info", "find_duplicates"]


def _hash_and_size(path: str) -> tuple[str, tuple[int, int] | None]:
    if is_virtual(path):
        image = load_rgb(path)
        return hashlib.sha1(image.tobytes()).hexdigest(), image.size
    digest = file_digest(path)
    try:
        with Image.open(path) as img:
            size = img.size
    except Exception:  # noqa: BLE001 - the scan already reported unreadable files
        size = None
    return digest, size


def data_info(data: str | os.PathLike[str], val_split: float = 0.2, seed: int = 42,
              imbalance_ratio: float = 3.0) -> dict[str, Any]:
    """Images per class and split, image-size statistics, skipped files, exact duplicates within and across
    splits (train/validation leakage, by content hash) and a class-imbalance warning.

    Example:
        >>> data_info("cats_and_dogs_filtered")["counts"]["train"]  # doctest: +SKIP
        {'cats': 1000, 'dogs': 1000}
    """
    splits = load_image_folder(data, val_split=val_split, seed=seed)
    items = [(split, s) for split, samples in (("train", splits.train), ("validation", splits.validation))
             for s in samples]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda it: _hash_and_size(it[1].path), items))
    widths = [size[0] for _, size in results if size]
    heights = [size[1] for _, size in results if size]
    found = duplicate_groups(items, [digest for digest, _ in results], splits.classes)
    groups = found["groups"]
    counts = splits.counts()
    train_counts = Counter(counts["train"])
    largest, smallest = max(train_counts.values()), max(1, min(train_counts.values()))
    warnings = []
    if largest / smallest >= imbalance_ratio:
        warnings.append(f"Class imbalance: the largest class has {largest / smallest:.1f}x the images of the "
                        "smallest. Consider `--class-weight balanced`.")
    warnings += found["warnings"]

    def stats(values: list[int]) -> dict[str, float]:
        if not values:
            return {}
        return {"min": min(values), "median": statistics.median(values), "max": max(values),
                "mean": round(statistics.fmean(values), 1)}

    return {
        "root": splits.root, "layout": splits.layout, "classes": splits.classes, "counts": counts,
        "num_train": len(splits.train), "num_validation": len(splits.validation), "test_dir": splits.test_dir,
        "image_size": {"width": stats(widths), "height": stats(heights)},
        "skipped": splits.skipped,
        "duplicates": groups, "leakage": found["leakage"], "warnings": warnings,
    }
