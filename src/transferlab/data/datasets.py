"""A torch Dataset over a list of labelled image files."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch
from PIL import Image
from torch.utils.data import Dataset

from .decoded import DecodedCache
from .folder import Sample
from .images import load_rgb

__all__ = ["ImageListDataset"]


class ImageListDataset(Dataset):
    """Loads `samples` as RGB images and applies `transform`.

    `min_size` lets large JPEGs decode at a reduced scale that still covers the transform's resize. With a
    `DecodedCache`, images come resized from the cache and `transform` must skip the resize (`resized=True`).

    Example:
        >>> ds = ImageListDataset([Sample("a.png", 0)], transform=None)  # doctest: +SKIP
    """

    def __init__(self, samples: Sequence[Sample], transform: Callable[[Image.Image], torch.Tensor],
                 min_size: int | None = None, cache: DecodedCache | None = None) -> None:
        self.samples = list(samples)
        self.transform = transform
        self.min_size = min_size
        self.cache = cache
        self.failed: set[str] = set()

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        for attempt in range(min(len(self.samples), 16)):
            sample = self.samples[(index + attempt) % len(self.samples)]
            try:
                if self.cache is not None:
                    image = self.cache.get((index + attempt) % len(self.samples))
                else:
                    image = load_rgb(sample.path, min_size=self.min_size)
            except Exception as e:  # noqa: BLE001 - a file that broke after the scan must not kill a long run
                if sample.path not in self.failed:
                    self.failed.add(sample.path)
                    warnings.warn(f"Skipping image '{sample.path}' (it was readable when scanned): {e}", stacklevel=2)
                continue
            return self.transform(image), sample.label
        raise RuntimeError(f"No readable image found around index {index}; the data folder changed during training.")
