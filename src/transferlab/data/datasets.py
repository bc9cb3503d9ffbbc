"""A torch Dataset over a list of labelled image files."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, IterableDataset

from .decoded import DecodedCache
from .folder import Sample
from .images import load_rgb

__all__ = ["ImageListDataset", "ImageLoader"]


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


class ImageLoader(DataLoader):
    """A DataLoader that puts its worker processes where the work is.

    - While the dataset's decoded cache is filling (the first epoch), workers decode; with
      `worker_transform` (a `BatchTransform`, given on CPU-only machines where the main process has no
      spare accelerator) they also augment each batch, so that decoding and augmentation share all cores.
    - Once the cache is complete, an epoch reads it in the main process: copying uint8 images out of a
      memory-mapped file is cheaper than shipping them between processes (benchmarks/loader_vs_keras.py),
      and the raw uint8 batch is augmented by the training module on its device.

    Same arguments as `DataLoader`, plus `worker_transform`. A distributed sampler set by Lightning is kept,
    because the batch sampler is reused.

    Example:
        >>> loader = ImageLoader(dataset, batch_size=32, shuffle=True, num_workers=2)  # doctest: +SKIP
    """

    def __init__(self, *args: Any, worker_transform: Callable | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.worker_transform = worker_transform

    @property
    def in_process(self) -> bool:
        cache = getattr(self.dataset, "cache", None)
        return self.num_workers > 0 and cache is not None and cache.complete

    def __iter__(self):  # noqa: ANN204 - DataLoader's own iterator types are private
        if self.in_process:
            return iter(DataLoader(self.dataset, batch_sampler=self.batch_sampler, num_workers=0,
                                   collate_fn=self.collate_fn, pin_memory=self.pin_memory))
        if self.worker_transform is not None and self.num_workers > 0:
            # the same batches (a streamed dataset has no batch sampler: it batches by size)
            batching = (dict(batch_size=self.batch_size, drop_last=self.drop_last)
                        if isinstance(self.dataset, IterableDataset) else dict(batch_sampler=self.batch_sampler))
            return iter(DataLoader(self.dataset, num_workers=self.num_workers,
                                   collate_fn=_TransformingCollate(self.collate_fn, self.worker_transform),
                                   pin_memory=self.pin_memory, prefetch_factor=self.prefetch_factor, **batching))
        return super().__iter__()


class _TransformingCollate:
    def __init__(self, collate: Callable, transform: Callable) -> None:
        self.collate, self.transform = collate, transform

    def __call__(self, batch: list) -> Any:
        return self.transform(*self.collate(batch))
