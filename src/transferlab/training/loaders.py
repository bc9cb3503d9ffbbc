"""Datasets, samplers and the DataModule of a phase: cached features, boundary activations, images, streams."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from .._io import distributed_world
from .._runtime import transferlab_home

__all__ = ["EvalDistributedSampler", "FeatureCopies", "PhaseData", "feature_cache_dir"]


class EvalDistributedSampler(torch.utils.data.DistributedSampler):
    """Validation indices split across DDP ranks without padding, so that every image counts exactly once
    (Lightning's default DistributedSampler repeats images to even the ranks out). The world size is read
    when iterating, after the launcher has started the ranks; one process gets every index in order."""

    def __init__(self, length: int) -> None:  # no super().__init__: it would need the process group now
        self.length, self.epoch = int(length), 0

    def _indices(self) -> range:
        rank, world = distributed_world()
        return range(rank, self.length, world)

    def __iter__(self):  # noqa: ANN204
        return iter(self._indices())

    def __len__(self) -> int:
        return len(self._indices())

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


class FeatureCopies(torch.utils.data.Dataset):
    """Cached training features with N augmented copies; epoch e reads copy e mod N."""

    def __init__(self, copies: list[torch.Tensor], labels: torch.Tensor) -> None:
        self.copies, self.labels, self.epoch = copies, labels, 0

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.copies[self.epoch % len(self.copies)][index], self.labels[index]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


class PhaseData(L.LightningDataModule):
    """The loaders of a phase, built in `setup`: Lightning calls it in every process of a distributed run
    after the process group exists, so feature extraction (`cached_features`) is sharded across the ranks
    instead of repeated by each of them (or done by rank 0 alone before the others start)."""

    def __init__(self, build: Callable[[], tuple[DataLoader, DataLoader]]) -> None:
        super().__init__()
        self._build = build
        self._loaders: tuple[DataLoader, DataLoader] | None = None

    def setup(self, stage: str) -> None:
        if self._loaders is None:
            self._loaders = self._build()

    def train_dataloader(self) -> DataLoader:
        return self._loaders[0]

    def val_dataloader(self) -> DataLoader:
        return self._loaders[1]


def feature_cache_dir() -> Path:
    """Where cached features live: $TRANSFERLAB_HOME/features (default ~/.cache/transferlab/features)."""
    return transferlab_home() / "features"
