"""The images a command should read, from every form of data `train` accepts.

`list_images` turns what a user typed into image paths (or `cifar://` samples, which `load_rgb` reads):
image files; folders (all images below them); a CIFAR-10 python folder as `data get cifar10` leaves it, and the
class-folder paths a student would expect inside it (`cifar-10-batches-py/validation/cat`: the test batch's cats;
`.../train/dog`); CSV/TSV/Parquet indexes (their path column); and zip/tar archives (extracted once, safely).

Example:
    >>> list_images(["photos/", "labels.csv"])  # doctest: +SKIP
    ['photos/a.jpg', 'photos/b.png', '/data/cats/1.jpg', ...]
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ..errors import MissingFileError
from .images import is_image_file

__all__ = ["list_images", "INDEX_SUFFIXES"]

INDEX_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")
_SPLITS = {"train": "train", "validation": "test", "val": "test", "valid": "test", "test": "test"}


def list_images(inputs: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Every image named by `inputs`, in order (folders sorted); see the module docstring for the forms.

    Raises:
        MissingFileError: An input does not exist (the message says which forms are accepted).
    """
    out: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_file():
            out += _from_file(path)
        elif path.is_dir():
            out += _from_folder(path)
        else:
            cifar = _cifar_subpath(path)
            if cifar is None:
                raise MissingFileError(f"Image or folder '{path}' does not exist. Pass image files, folders of "
                                       "images, a CSV/TSV/Parquet index, a zip/tar archive, or a CIFAR-10 folder "
                                       "(with /train/CLASS or /validation/CLASS inside it).")
            out += cifar
    return out


def _from_file(path: Path) -> list[str]:
    from .archive import extracted_root, is_archive

    if is_archive(path):
        return _from_folder(extracted_root(path))
    if path.suffix.lower() in INDEX_SUFFIXES:
        from .index import read_index_rows

        base = path.parent
        return [row.path if "://" in row.path or os.path.isabs(row.path) else str((base / row.path).resolve())
                for row in read_index_rows(str(path))]
    return [str(path)]


def _from_folder(folder: Path) -> list[str]:
    from .cifar import is_cifar_folder, load_cifar

    if is_cifar_folder(folder):
        classes, train, test = load_cifar(folder)
        return [p for split in (train, test) for c in classes for p in split[c]]
    inner = [d for d in sorted(folder.iterdir()) if d.is_dir() and is_cifar_folder(d)] if folder.is_dir() else []
    if inner:  # the folder `data get cifar10` extracted into
        return [p for d in inner for p in _from_folder(d)]
    return sorted(str(f) for f in folder.rglob("*") if f.is_file() and is_image_file(f))


def _cifar_subpath(path: Path) -> list[str] | None:
    """`CIFAR/validation/cat`, `CIFAR/train`, ...: the samples of that split (and class) of a CIFAR folder that is
    an ancestor of `path` (directly or one folder below it); None when `path` is not such a path."""
    from .cifar import is_cifar_folder, load_cifar

    parts: list[str] = []
    current = path
    while not current.exists() and current != current.parent:
        parts.insert(0, current.name)
        current = current.parent
    if not current.is_dir():
        return None
    root = current if is_cifar_folder(current) else next(
        (d for d in sorted(current.iterdir()) if d.is_dir() and is_cifar_folder(d)), None)
    if root is None or not parts or parts[0].lower() not in _SPLITS or len(parts) > 2:
        return None
    classes, train, test = load_cifar(root)
    split = train if _SPLITS[parts[0].lower()] == "train" else test
    if len(parts) == 2:
        if parts[1] not in classes:
            raise MissingFileError(f"CIFAR-10 has no class {parts[1]!r}; its classes are {', '.join(classes)}.")
        return list(split[parts[1]])
    return [p for c in classes for p in split[c]]
