"""The embedded demo data set: scikit-learn's 1,797 handwritten digits, written as an image folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from .folder import stratified_split

__all__ = ["write_digits"]


def write_digits(root: str | os.PathLike[str], val_split: float = 0.2, seed: int = 0) -> Path:
    """Writes the digits (8x8, 10 classes) as PNGs into `root/train/<digit>/` and `root/validation/<digit>/`.

    The split is fixed (stratified, `seed`), so every demo run sees the same validation images. An
    existing complete folder is reused.

    Example:
        >>> write_digits("/tmp/digits")  # doctest: +SKIP
        PosixPath('/tmp/digits')
    """
    from sklearn.datasets import load_digits

    root = Path(root)
    done = root / ".complete"
    if done.exists():
        return root
    digits = load_digits()
    names = {}
    for i, target in enumerate(digits.target):
        names.setdefault(str(target), []).append(i)
    train, val = stratified_split({k: [f"{i:04d}" for i in v] for k, v in names.items()}, val_split, seed)
    for split, groups in (("train", train), ("validation", val)):
        for label, ids in groups.items():
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for sid in ids:
                pixels = (digits.images[int(sid)] / 16.0 * 255.0).round().astype(np.uint8)
                Image.fromarray(pixels, mode="L").save(folder / f"{sid}.png")
    done.write_text("sklearn.datasets.load_digits\n")
    return root
