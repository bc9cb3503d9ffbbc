"""Data sets that do not fit a folder walk: streamed indexes and WebDataset-style tar shards.

- `IndexDataset`: rows of a CSV/TSV index (`path,label`, paths relative to the index or absolute, local or
  `s3://`, `gs://`, `http(s)://` through fsspec) are read one at a time, never all at once: memory stays flat
  for millions of rows. Rows are dealt round-robin to DataLoader workers and DDP ranks.
- `write_shards` / `ShardDataset`: `transferlab data shard DATA --out shards/ --shard-size 1000` packs images
  into tar files of `KEY.EXT` + `KEY.cls` members (the WebDataset layout, readable by webdataset too) with
  `classes.json`; reading streams each tar sequentially, shards dealt to workers and ranks.

Example:
    >>> ds = IndexDataset("index.csv", classes=["cat", "dog"], transform=eval_transform(pre))  # doctest: +SKIP
    >>> loader = DataLoader(ds, batch_size=64, num_workers=8)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import json
import os
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from torch.utils.data import IterableDataset, get_worker_info

from .._io import atomic_path, write_json

__all__ = ["IndexDataset", "ShardDataset", "write_shards", "scan_index_labels", "open_binary"]


def open_binary(path: str) -> Any:
    """Opens a local path or an fsspec URL (s3://, gs://, http(s)://) for reading bytes."""
    if "://" in path and not path.startswith("file://"):
        try:
            import fsspec
        except ImportError as e:
            raise ValueError(f"Reading '{path}' needs fsspec (and s3fs/gcsfs for cloud storage): "
                             "`pip install fsspec`.") from e
        return fsspec.open(path, "rb").open()
    return open(path.removeprefix("file://"), "rb")


def _split_info() -> tuple[int, int]:
    """(this reader's index, number of readers) over DDP ranks x DataLoader workers."""
    import torch.distributed as dist

    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_available() and dist.is_initialized() \
        else (0, 1)
    worker = get_worker_info()
    wid, nworkers = (worker.id, worker.num_workers) if worker else (0, 1)
    return rank * nworkers + wid, world * nworkers


def _rows(index: str) -> Iterator[tuple[str, str]]:
    """Streams (path, label) rows of a CSV/TSV index; the header line is skipped when it names the columns."""
    delimiter = "\t" if index.endswith(".tsv") else ","
    with open_binary(index) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        reader = csv.reader(text, delimiter=delimiter)
        for i, row in enumerate(reader):
            if len(row) < 2:
                continue
            if i == 0 and row[0].strip().lower() in ("path", "file", "filename", "image"):
                continue
            yield row[0].strip(), row[1].strip()


def scan_index_labels(index: str | os.PathLike[str]) -> list[str]:
    """The sorted class names of an index, in one streaming pass (memory: one entry per class)."""
    return sorted({label for _, label in _rows(str(index))})


class IndexDataset(IterableDataset):
    """Streams `(image, label)` from a CSV/TSV index without loading the index.

    Args:
        index: The index file (local path or fsspec URL).
        classes: Class names (label order); None scans the index once for them.
        transform: Applied to each image (e.g. `eval_transform(pre)`).
        reader: Turns a path into an image (default: decode with Pillow, EXIF rotation applied).
        on_error: 'skip' (warn once per file) or 'raise'.
    """

    def __init__(self, index: str | os.PathLike[str], classes: list[str] | None = None,
                 transform: Callable | None = None, reader: Callable[[str], Any] | None = None,
                 on_error: str = "skip") -> None:
        self.index = str(index)
        self.classes = list(classes) if classes is not None else scan_index_labels(self.index)
        self.class_index = {c: i for i, c in enumerate(self.classes)}
        self.transform = transform
        self.reader = reader or _read_image
        self.on_error = on_error
        base = self.index.rsplit("/", 1)[0] if "://" in self.index else str(Path(self.index).parent)
        self.base = base

    def _resolve(self, path: str) -> str:
        if "://" in path or os.path.isabs(path):
            return path
        return f"{self.base}/{path}"

    def __iter__(self) -> Iterator[tuple[Any, int]]:
        me, readers = _split_info()
        for i, (path, label) in enumerate(_rows(self.index)):
            if i % readers != me:
                continue
            if label not in self.class_index:
                raise ValueError(f"Index '{self.index}' row {i + 1}: label {label!r} is not one of the classes "
                                 f"{self.classes[:10]}...; pass the full class list.")
            try:
                image = self.reader(self._resolve(path))
            except Exception as e:  # noqa: BLE001 - a bad file must not stop a long stream
                if self.on_error == "raise":
                    raise
                import warnings

                warnings.warn(f"Skipping '{path}' from index '{self.index}': {e}", stacklevel=2)
                continue
            yield (self.transform(image) if self.transform else image), self.class_index[label]


def _read_image(path: str) -> Any:
    from PIL import Image, ImageOps

    with open_binary(path) as f:
        image = Image.open(io.BytesIO(f.read()))
        return ImageOps.exif_transpose(image).convert("RGB")


def write_shards(data: str | os.PathLike[str], out: str | os.PathLike[str], shard_size: int = 1000,
                 split: str = "train", val_split: float = 0.2, seed: int = 42) -> dict[str, Any]:
    """Packs a data folder's split (or a CSV index) into `out/{split}-NNNNNN.tar` shards + classes.json.

    Members are `KEY.EXT` (the original bytes) and `KEY.cls` (the class index), the WebDataset layout.
    """
    from .folder import load_image_folder

    if shard_size < 1:
        raise ValueError(f"--shard-size must be at least 1; got {shard_size}.")
    splits = load_image_folder(data, val_split=val_split, seed=seed)
    samples = {"train": splits.train, "validation": splits.validation}.get(split)
    if samples is None:
        raise ValueError(f"split must be 'train' or 'validation'; got {split!r}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shards = []
    for start in range(0, len(samples), shard_size):
        name = out / f"{split}-{start // shard_size:06d}.tar"
        with atomic_path(name) as tmp, tarfile.open(tmp, "w") as tar:
            for j, sample in enumerate(samples[start:start + shard_size]):
                key = f"{start + j:09d}"
                ext = Path(sample.path).suffix.lower() or ".jpg"
                tar.add(sample.path, arcname=f"{key}{ext}")
                label = str(sample.label).encode()
                info = tarfile.TarInfo(f"{key}.cls")
                info.size = len(label)
                tar.addfile(info, io.BytesIO(label))
        shards.append(name.name)
    write_json(out / "classes.json", splits.classes)
    summary = {"split": split, "images": len(samples), "shards": shards, "shard_size": shard_size,
               "classes": splits.classes}
    write_json(out / f"{split}-shards.json", summary)
    return summary


class ShardDataset(IterableDataset):
    """Streams `(image, label)` from WebDataset-style tar shards (local paths or fsspec URLs).

    Example:
        >>> shards = sorted(Path("shards").glob("train-*.tar"))  # doctest: +SKIP
        >>> ds = ShardDataset(shards, transform=eval_transform(pre))  # doctest: +SKIP
    """

    def __init__(self, shards: list[str | os.PathLike[str]], transform: Callable | None = None,
                 classes: list[str] | None = None) -> None:
        self.shards = [str(s) for s in shards]
        if not self.shards:
            raise ValueError("No shard files given; make them with `transferlab data shard DATA --out shards/`.")
        if classes is None:
            first = self.shards[0]
            folder = first.rsplit("/", 1)[0] if "://" in first else str(Path(first).parent)
            with open_binary(f"{folder}/classes.json") as f:
                classes = json.loads(f.read())
        self.classes = list(classes)
        self.transform = transform

    def __iter__(self) -> Iterator[tuple[Any, int]]:
        from PIL import Image, ImageOps

        me, readers = _split_info()
        for i, shard in enumerate(self.shards):
            if i % readers != me:
                continue
            pending: dict[str, dict[str, bytes]] = {}
            with open_binary(shard) as raw, tarfile.open(fileobj=raw, mode="r|*") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    key, _, ext = member.name.rpartition(".")
                    data = tar.extractfile(member).read()
                    entry = pending.setdefault(key, {})
                    entry["cls" if ext == "cls" else "image"] = data
                    if "cls" in entry and "image" in entry:
                        del pending[key]
                        image = ImageOps.exif_transpose(Image.open(io.BytesIO(entry["image"]))).convert("RGB")
                        yield (self.transform(image) if self.transform else image), int(entry["cls"])

