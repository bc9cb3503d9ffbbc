"""Data that ships or is made offline: the demo's digits (scikit-learn's 1,797 handwritten digits as an image
folder), two sample photos, and small synthetic image sets for notebooks and tests."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .folder import stratified_split

__all__ = ["write_digits", "sample_image", "make_toy_images", "SAMPLES"]


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


SAMPLES = ("chelsea", "coffee")


def sample_image(name: str = "chelsea") -> Path:
    """The path of a photo that ships with transferlab (CC0): 'chelsea' (a tabby cat) or 'coffee' (a cup of
    coffee), for classifying offline.

    Example:
        >>> sample_image("chelsea").name
        'chelsea.jpg'
    """
    from ..errors import check_choice

    check_choice("name", name, SAMPLES, where="sample_image")
    return Path(__file__).parent / "samples" / f"{name}.jpg"


def _draw_shape(draw: Any, kind: int, box: tuple[int, int, int, int], color: tuple[int, ...], width: int) -> None:
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    shapes = [
        lambda: draw.ellipse(box, fill=color),
        lambda: draw.rectangle(box, fill=color),
        lambda: draw.polygon([(cx, y0), (x1, y1), (x0, y1)], fill=color),
        lambda: (draw.line([(x0, y0), (x1, y1)], fill=color, width=width),
                 draw.line([(x0, y1), (x1, y0)], fill=color, width=width)),
        lambda: draw.ellipse(box, outline=color, width=width),
        lambda: draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=color),
        lambda: [draw.line([(x0, y), (x1, y)], fill=color, width=max(1, width // 2))
                 for y in range(y0, y1, max(2, width * 2))],
        lambda: [draw.line([(x, y0), (x, y1)], fill=color, width=max(1, width // 2))
                 for x in range(x0, x1, max(2, width * 2))],
        lambda: draw.rectangle(box, outline=color, width=width),
        lambda: (draw.line([(cx, y0), (cx, y1)], fill=color, width=width),
                 draw.line([(x0, cy), (x1, cy)], fill=color, width=width)),
    ]
    shapes[kind % len(shapes)]()


def make_toy_images(root: str | os.PathLike[str], classes: Sequence[str] = ("cat", "dog"), n_train: int = 20,
                    n_val: int = 8, size: int = 64, seed: int = 0) -> Path:
    """Writes a small learnable image set: class k is shape k (a disc, a square, a triangle, a cross, a ring, ...,
    up to 10 classes) in a random colour, place and size on a noisy background, as JPEGs in
    `root/train/<class>/` and `root/validation/<class>/`. A stand-in for real photos where a notebook or a test must
    run offline in seconds; not a benchmark.

    Example:
        >>> make_toy_images("/tmp/toy", ["cat", "dog"], n_train=4, n_val=2)  # doctest: +SKIP
        PosixPath('/tmp/toy')
    """
    from PIL import ImageDraw

    from ..errors import SettingError

    if not 2 <= len(classes) <= 10:
        raise SettingError(f"make_toy_images draws 2 to 10 classes (one shape each); got {len(classes)}.")
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, count in (("train", n_train), ("validation", n_val)):
        for k, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                background = rng.integers(0, 256, 3)
                pixels = np.clip(background + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)
                image = Image.fromarray(pixels)
                extent = int(rng.integers(size // 3, size * 3 // 4))
                x0, y0 = (int(v) for v in rng.integers(0, size - extent, 2))
                color = tuple(int(v) for v in (255 - background + rng.integers(-40, 40, 3)) % 256)
                _draw_shape(ImageDraw.Draw(image), k, (x0, y0, x0 + extent, y0 + extent), color, max(2, size // 16))
                image.save(folder / f"{i:04d}.jpg", quality=90)
    return root
