"""Cached features for frozen bases: run the base once per image, train the head on the cache.

With `freeze` and no per-epoch augmentation, an image's pooled features never change, yet the Keras
way recomputes them every epoch. Here they are computed once (batched, inference mode, bf16 where the
CPU supports it) and cached on disk, keyed by the base's weights, the preprocessing, the engine and the
content of every file; any change gives a new key.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import DataLoader

from .._console import progress_bar
from .._io import atomic_path, distributed_world, file_digest, is_rank_zero
from ..data.datasets import ImageListDataset
from ..data.folder import Sample
from ..data.images import file_identity, is_virtual
from ..inference.engine import Engine, best_engine, cpu_processes, fold_batch_norm, run_model

__all__ = ["extract_features", "cached_features", "weights_digest", "cache_key"]


def _shard_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """The contiguous [start, stop) of `n` items that `rank` of `world` extracts (equal chunks, last shorter)."""
    chunk = -(-n // world)
    return min(n, rank * chunk), min(n, (rank + 1) * chunk)


def _gather_rows(part: torch.Tensor, n: int, world: int) -> torch.Tensor:
    """Concatenates every rank's rows (contiguous shards, in rank order) into the full [n, ...] tensor.

    Rows travel as bytes (any dtype, gloo and NCCL alike), padded to the largest shard.
    """
    import torch.distributed as dist

    shapes: list[Any] = [None] * world
    dist.all_gather_object(shapes, (tuple(part.shape[1:]), str(part.dtype).removeprefix("torch.")))
    row_shape, dtype_name = next(s for s in shapes if s is not None and s[0] is not None)
    dtype = getattr(torch, dtype_name)
    chunk = -(-n // world)
    row_bytes = int(torch.empty((1, *row_shape), dtype=dtype).view(torch.uint8).numel())
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    raw = part.contiguous().view(torch.uint8).reshape(len(part), row_bytes) if len(part) else \
        torch.empty((0, row_bytes), dtype=torch.uint8)
    padded = torch.zeros((chunk, row_bytes), dtype=torch.uint8, device=device)
    padded[:len(raw)] = raw.to(device)
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    full = torch.cat([p.cpu() for p in parts])[:n]
    return full.contiguous().view(dtype).reshape(n, *row_shape)


def extract_features(base: nn.Module, samples: Sequence[Sample], transform: Callable, batch_size: int = 64,
                     num_workers: int = 0, engine: Engine | None = None, quiet: bool = True,
                     description: str = "Extracting features", min_size: int | None = None,
                     store_dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Runs `base` (in eval mode) over the images and returns its outputs [N, ...] as `store_dtype`.

    Under DDP (an initialised process group) every rank extracts a contiguous 1/world of the images and the
    parts are gathered, so every rank returns all N rows in order.

    Example:
        >>> feats = extract_features(model.features, splits.train, eval_transform(pre))  # doctest: +SKIP
    """
    engine = engine or best_engine()
    rank, world = distributed_world()
    total = len(samples)
    if world > 1:
        start, stop = _shard_bounds(total, rank, world)
        samples = list(samples)[start:stop]
        quiet = quiet or rank != 0
        description = f"{description} (rank {rank} of {world})"
    _extraction_log(rank, len(samples))
    device = torch.device(engine.get("device", "cpu"))
    was_training = base.training
    base.eval().to(device)
    if engine.get("channels_last"):
        base.to(memory_format=torch.channels_last)
    dataset = ImageListDataset(samples, transform, min_size)
    processes = cpu_processes(device, num_workers, len(samples), batch_size, world)
    part: torch.Tensor | None = None  # allocated once at its final size: memory stays at one copy of the features
    filled = 0
    try:
        with progress_bar(quiet) as progress:
            task = progress.add_task(description, total=len(samples))
            run = _RunBase(_engine_net(base, engine, dataset, device), engine, store_dtype)
            if processes:  # each process decodes its batches and runs the base on one thread
                batches = DataLoader(dataset, batch_size=batch_size, num_workers=processes, shuffle=False,
                                     collate_fn=run)
            else:  # the base runs here on all threads; `num_workers` processes decode
                batches = (run(x) for x, _ in DataLoader(dataset, batch_size=batch_size, num_workers=num_workers,
                                                         shuffle=False, persistent_workers=False))
            for y in batches:
                if part is None:
                    part = torch.empty((len(samples), *y.shape[1:]), dtype=store_dtype)
                part[filled:filled + len(y)] = y
                filled += len(y)
                progress.advance(task, len(y))
    finally:
        base.to(memory_format=torch.contiguous_format)
        base.train(was_training)
    part = part[:filled] if part is not None else torch.empty(0, dtype=store_dtype)
    if world > 1:
        return _gather_rows(part, total, world)
    return part


def _engine_net(base: nn.Module, engine: Engine, dataset: ImageListDataset, device: torch.device) -> nn.Module:
    """`base` as the engine runs it: with `fold_bn`, the BatchNorm-folded copy, checked against `base` on the
    dataset's first two images."""
    if not engine.get("fold_bn") or len(dataset) == 0:
        return base
    check = torch.stack([dataset[i][0] for i in range(min(2, len(dataset)))]).to(device)
    net = fold_batch_norm(base, check=check)
    if engine.get("channels_last"):
        net.to(memory_format=torch.channels_last)
    return net


class _RunBase:
    """Runs `net` on a batch of images (a tensor, or a list of (image, label) pairs: as a DataLoader's
    `collate_fn` it runs inside the loading process) on the engine and returns its outputs as `store_dtype` on
    the CPU."""

    def __init__(self, net: nn.Module, engine: Engine, store_dtype: torch.dtype) -> None:
        self.net, self.engine, self.store_dtype = net, engine, store_dtype

    def __call__(self, batch: torch.Tensor | list[tuple[torch.Tensor, int]]) -> torch.Tensor:
        if isinstance(batch, list):
            batch = torch.stack([image for image, _ in batch])
        return run_model(self.net, batch, self.engine).to(self.store_dtype).cpu()


def _extraction_log(rank: int, count: int) -> None:
    """Appends 'rank<TAB>images' to $TRANSFERLAB_EXTRACT_LOG: an audit of who extracted what (DDP tests)."""
    log = os.environ.get("TRANSFERLAB_EXTRACT_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{rank}\t{count}\n")


def weights_digest(module: nn.Module) -> str:
    """SHA-256 of a module's tensors (names, shapes and values): identifies the weights exactly."""
    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _file_digest(path: str) -> str:
    if is_virtual(path):  # an image inside a CIFAR batch or a shard: the reader's identity of it
        return file_identity(path)
    return file_digest(path)


# Bumped whenever the image pipeline changes what a preprocessing dict produces (2: uint8 tensor resize,
# 3: plain JPEGs decoded by simplejpeg).
PIPELINE_VERSION = 3


def cache_key(weights: str, preprocessing: dict[str, Any], engine: Engine, samples: Sequence[Sample],
              extra: dict[str, Any] | None = None) -> str:
    """The cache key: weights digest + preprocessing + engine + every file's content (and label)."""
    h = hashlib.sha256()
    h.update(json.dumps({"weights": weights, "preprocessing": preprocessing, "engine": dict(engine),
                         "extra": extra or {}, "pipeline": PIPELINE_VERSION}, sort_keys=True).encode())
    for s in samples:
        h.update(f"{s.label}:{_file_digest(s.path)}\n".encode())
    return h.hexdigest()[:32]


def cached_features(base: nn.Module, samples: Sequence[Sample], transform: Callable, preprocessing: dict[str, Any],
                    cache_dir: str | os.PathLike[str], batch_size: int = 64, num_workers: int = 0,
                    engine: Engine | None = None, quiet: bool = True, description: str = "Extracting features",
                    weights: str | None = None, extra: dict[str, Any] | None = None,
                    min_size: int | None = None, store_dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, bool]:
    """Features of `samples` from the cache, or extracted and cached. Returns (features, was_cached).

    Under DDP the ranks agree on whether the cache is usable, extract their shards (see `extract_features`)
    and rank 0 alone writes the cache file.
    """
    engine = engine or best_engine()
    extra = {**(extra or {}), "min_size": min_size, "store_dtype": str(store_dtype)}
    key = cache_key(weights or weights_digest(base), preprocessing, engine, samples, extra)
    path = Path(cache_dir) / f"{key}.safetensors"
    cached = _load_cached(path)
    if _everyone(cached is not None):
        return cached, True
    feats = extract_features(base, samples, transform, batch_size, num_workers, engine, quiet, description,
                             min_size, store_dtype)
    if is_rank_zero():
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            save_file({"features": feats.contiguous()}, str(tmp), metadata={"count": str(len(samples))})
    return feats, False


def _load_cached(path: Path) -> torch.Tensor | None:
    if not path.is_file():
        return None
    try:
        return load_file(str(path))["features"]
    except Exception:  # noqa: BLE001 - a damaged cache file is recomputed
        if is_rank_zero():
            path.unlink(missing_ok=True)
        return None


def _everyone(flag: bool) -> bool:
    """True when `flag` holds on every rank (DDP), or simply `flag` in a single process."""
    rank, world = distributed_world()
    if world == 1:
        return flag
    import torch.distributed as dist

    flags: list[Any] = [None] * world
    dist.all_gather_object(flags, bool(flag))
    return all(flags)
