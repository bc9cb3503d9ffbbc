"""`data info`: what is in a data set — counts, image sizes, unreadable files, duplicates and leakage."""

from __future__ import annotations

import hashlib
import os
import statistics
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PIL import Image

from .._io import file_digest
from .folder import load_image_folder

__all__ = ["data_info", "find_duplicates"]


def find_duplicates(splits: Any) -> dict[str, Any]:
    """Identical files (by content) within and across the splits of a listed data set: {'groups', 'leakage',
    'conflicting', 'warnings'}. `train` runs it too, so a leak `data info` would report is never silent.
    (The file digests are memoised: the feature cache's keys reuse them.)

    Example:
        >>> find_duplicates(load_image_folder("data"))["warnings"]  # doctest: +SKIP
        ['1 image(s) appear in both train and validation: ...']
    """
    items = [(split, s) for split, samples in (("train", splits.train), ("validation", splits.validation))
             for s in samples if not str(s.path).startswith("cifar://")]
    with ThreadPoolExecutor(max_workers=8) as pool:
        digests = list(pool.map(lambda it: file_digest(it[1].path), items))
    return _duplicates(items, digests, splits.classes)


def _duplicates(items: list, digests: list[str], classes: list[str]) -> dict[str, Any]:
    by_hash: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for (split, sample), digest in zip(items, digests):
        by_hash[digest].append((split, sample.path, classes[sample.label]))
    groups = [g for g in by_hash.values() if len(g) > 1]
    leaks = [g for g in groups if {s for s, _, _ in g} == {"train", "validation"}]
    conflicting = [g for g in groups if len({c for _, _, c in g}) > 1]
    warnings = []
    if leaks:
        warnings.append(f"{len(leaks)} image(s) appear in both train and validation: validation accuracy is "
                        "inflated. Remove the copies from one split (`transferlab data info DATA` names them).")
    if conflicting:
        warnings.append(f"{len(conflicting)} identical image(s) carry different labels: "
                        + "; ".join(" = ".join(f"{p} ({c})" for _, p, c in g) for g in conflicting[:3])
                        + ("; ..." if len(conflicting) > 3 else "") + ".")
    return {"groups": [[{"split": s, "path": p, "label": c} for s, p, c in g] for g in groups],
            "leakage": len(leaks), "conflicting": len(conflicting), "warnings": warnings}


def _hash_and_size(path: str) -> tuple[str, tuple[int, int] | None]:
    if path.startswith("cifar://"):
        from .images import load_rgb

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
    found = _duplicates(items, [digest for digest, _ in results], splits.classes)
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
