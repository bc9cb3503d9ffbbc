"""A torch Dataset over a list of labelled image files."""

from __future__ import annotations

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

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        sample = self.samples[index]
        try:
            image = self.cache.get(index) if self.cache is not None else load_rgb(sample.path, min_size=self.min_size)
        except Exception as e:  # noqa: BLE001
            raise RuntimeError(f"Could not read image '{sample.path}' (it was readable when scanned): {e}") from e
        return self.transform(image), sample.label
