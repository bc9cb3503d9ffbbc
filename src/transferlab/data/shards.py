"""Writing WebDataset-style tar shards of listed data (`transferlab data shard`); `data.stream.ShardDataset` reads
them.

Example:
    >>> write_shards("cats_and_dogs_filtered", "shards/", split="train")  # doctest: +SKIP
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections import Counter
from pathlib import Path
from typing import Any

from .._io import atomic_path, write_json
from ..errors import DataError
from .sources import load_image_folder

__all__ = ["write_shards"]


def write_shards(data: str | os.PathLike[str], out: str | os.PathLike[str], shard_size: int = 1000,
                 split: str = "train", val_split: float = 0.2, seed: int = 42) -> dict[str, Any]:
    """Packs a data folder's split (or a CSV index) into `out/{split}-NNNNNN.tar` shards + classes.json.

    Members are `KEY.EXT` (the original bytes) and `KEY.cls` (the class index), the WebDataset layout;
    `{split}-shards.json` records the shard names and their image counts. Pack both splits (`--split train`
    and `--split validation`) into one folder to train on it with `transferlab train shards/`.
    """
    if shard_size < 1:
        raise DataError(f"--shard-size must be at least 1; got {shard_size}.")
    splits = load_image_folder(data, val_split=val_split, seed=seed)
    samples = {"train": splits.train, "validation": splits.validation}.get(split)
    if samples is None:
        raise DataError(f"split must be 'train' or 'validation'; got {split!r}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "classes.json").is_file():
        existing = json.loads((out / "classes.json").read_text(encoding="utf-8"))
        if existing != splits.classes:
            raise DataError(f"'{out}' already holds shards of the classes {existing[:10]}, not {splits.classes[:10]}; "
                             "use another --out folder.")
    shards, counts = [], []
    for start in range(0, len(samples), shard_size):
        name = out / f"{split}-{start // shard_size:06d}.tar"
        chunk = samples[start:start + shard_size]
        with atomic_path(name) as tmp, tarfile.open(tmp, "w") as tar:
            for j, sample in enumerate(chunk):
                key = f"{start + j:09d}"
                ext = Path(sample.path).suffix.lower() or ".jpg"
                tar.add(sample.path, arcname=f"{key}{ext}")
                label = str(sample.label).encode()
                info = tarfile.TarInfo(f"{key}.cls")
                info.size = len(label)
                tar.addfile(info, io.BytesIO(label))
        shards.append(name.name)
        counts.append(len(chunk))
    write_json(out / "classes.json", splits.classes)
    per_class = Counter(splits.classes[s.label] for s in samples)
    summary = {"split": split, "images": len(samples), "shards": shards, "counts": counts, "shard_size": shard_size,
               "classes": splits.classes, "per_class": {c: per_class.get(c, 0) for c in splits.classes}}
    write_json(out / f"{split}-shards.json", summary)
    return summary
