"""CIFAR-10 read directly from the official python archive's pickle batches — no conversion to image files.

The batches are unpickled with a restricted unpickler that only rebuilds numpy arrays (never arbitrary
objects), after the archive's checksum was verified by `transferlab data get cifar10`. Images are addressed
as `cifar://<folder>/<batch>#<index>` samples, which `load_rgb` understands.
"""

from __future__ import annotations

import functools
import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .._io import file_digest
from ..errors import DataError, MissingFileError

__all__ = ["is_cifar_folder", "find_cifar_folder", "load_cifar", "cifar_splits", "cifar_subpath", "cifar_image",
           "is_cifar_path", "cifar_identity", "read_image", "identity"]

SCHEME = "cifar://"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}


class _NumpyOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch (only numpy arrays "
                                         "are allowed)")
        if module.startswith("numpy.core"):
            module = module.replace("numpy.core", "numpy._core", 1) if hasattr(np, "_core") else module
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        obj = _NumpyOnly(io.BytesIO(f.read()), encoding="bytes").load()
    if not isinstance(obj, dict):
        raise DataError(f"'{path}' is not a CIFAR batch (expected a dict, got {type(obj).__name__}).")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def is_cifar_folder(folder: str | os.PathLike[str]) -> bool:
    folder = Path(folder)
    return (folder / "batches.meta").is_file() and (folder / TRAIN_BATCHES[0]).is_file()


@functools.lru_cache(maxsize=8)
def _batch(path: str) -> tuple[np.ndarray, list[int]]:
    data = _unpickle(Path(path))
    images = np.asarray(data["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), [int(v) for v in data["labels"]]


def is_cifar_path(path: str | os.PathLike[str]) -> bool:
    return str(path).startswith(SCHEME)


def _split_path(path: str) -> tuple[str, int]:
    file, _, index = str(path)[len(SCHEME):].rpartition("#")
    return file, int(index)


def cifar_image(path: str | os.PathLike[str]) -> Image.Image:
    """The RGB image a `cifar://` sample path names."""
    file, index = _split_path(str(path))
    return Image.fromarray(_batch(file)[0][index])


@functools.lru_cache(maxsize=16)
def _batch_digest(file: str) -> str:
    return file_digest(file)


def cifar_identity(path: str | os.PathLike[str]) -> str:
    """A content identity for caches: the batch file's digest and the index."""
    file, index = _split_path(str(path))
    return f"{_batch_digest(file)}#{index}"


def load_cifar(folder: str | os.PathLike[str]) -> tuple[list[str], dict[str, list[str]], dict[str, list[str]]]:
    """(classes, train paths per class, test paths per class) of a `cifar-10-batches-py` folder."""
    folder = Path(folder).resolve()
    names = _unpickle(folder / "batches.meta")["label_names"]
    classes = [c.decode() if isinstance(c, bytes) else str(c) for c in names]
    splits: list[dict[str, list[str]]] = []
    for names in (TRAIN_BATCHES, (TEST_BATCH,)):
        per_class: dict[str, list[str]] = {c: [] for c in classes}
        for name in names:
            file = folder / name
            if not file.is_file():
                raise MissingFileError(f"CIFAR folder '{folder}' lacks {name}; the archive is incomplete.")
            _, labels = _batch(str(file))
            for i, label in enumerate(labels):
                per_class[classes[label]].append(f"{SCHEME}{file}#{i}")
        splits.append(per_class)
    return classes, splits[0], splits[1]


def find_cifar_folder(folder: str | os.PathLike[str]) -> Path | None:
    """The CIFAR-10 batches folder that is `folder` or directly inside it (where `data get cifar10` extracts it)."""
    folder = Path(folder)
    if is_cifar_folder(folder):
        return folder
    if not folder.is_dir():
        return None
    return next((d for d in sorted(folder.iterdir()) if d.is_dir() and is_cifar_folder(d)), None)


def cifar_splits(folder: str | os.PathLike[str]) -> Any:
    """The batches as a listed data set: the five training batches to train on, the test batch as validation."""
    from .folder import DataSplits, Sample

    classes, train, test = load_cifar(folder)
    index = {c: i for i, c in enumerate(classes)}
    samples = [[Sample(p, index[c]) for c in classes for p in split[c]] for split in (train, test)]
    return DataSplits(str(folder), classes, samples[0], samples[1],
                      "cifar-batches: train batches, test batch as validation")


_SPLIT_FOLDERS = {"train": "train", "validation": "test", "test": "test"}


def cifar_subpath(path: Path) -> list[str] | None:
    """`CIFAR/validation/cat`, `CIFAR/train`, ...: the samples of that split (and class) of a CIFAR folder that is
    an ancestor of `path` (directly or one folder below it), as a student would address them; None when `path` is
    not such a path."""
    from .splits import split_of

    parts: list[str] = []
    current = path
    while not current.exists() and current != current.parent:
        parts.insert(0, current.name)
        current = current.parent
    root = find_cifar_folder(current) if current.is_dir() else None
    if root is None or not parts or split_of(parts[0]) is None or len(parts) > 2:
        return None
    classes, train, test = load_cifar(root)
    split = train if _SPLIT_FOLDERS[split_of(parts[0])] == "train" else test
    if len(parts) == 2:
        if parts[1] not in classes:
            raise MissingFileError(f"CIFAR-10 has no class {parts[1]!r}; its classes are {', '.join(classes)}.")
        return list(split[parts[1]])
    return [p for c in classes for p in split[c]]


read_image = cifar_image  # the names `data.images.VIRTUAL_SCHEMES` calls
identity = cifar_identity
