"""A decoded-image cache: JPEG decoding and resizing happen once, not every epoch.

Resized uint8 images live in a memory-mapped file shared by every DataLoader worker: the first epoch
decodes and fills it (workers in parallel), later epochs read it at memory speed. The file is keyed by the
files (path, size, modification time) and the resize settings, under $TRANSFERLAB_HOME/decoded.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .._runtime import transferlab_home
from .folder import Sample
from .geometry import Preprocessing
from .images import file_identity
from .transforms import load_rgb_tensor

__all__ = ["DecodedCache", "decoded_cache_dir"]

_PWRITE = hasattr(os, "pwrite")  # POSIX; elsewhere images are stored through the memory map
_UNREADABLE = 2  # flag value of an image that failed to decode (1: decoded, 0: not yet)


def decoded_cache_dir() -> Path:
    return transferlab_home() / "decoded"


def resize_square(image: Image.Image | torch.Tensor, pre: Preprocessing) -> torch.Tensor:
    """The transforms' own resize followed by a centre crop to resize_size x resize_size, as a uint8 [3, S, S]
    tensor (what the cache stores); a later centre crop to image_size gives exactly what the uncached
    transform gives."""
    from .transforms import crop_tensor, pil_to_chw, resize_tensor

    tensor = pil_to_chw(image) if isinstance(image, Image.Image) else image
    return crop_tensor(resize_tensor(tensor, pre), pre, pre.resize_size).contiguous()


def _create(images_path: Path, flags_path: Path, shape: tuple[int, ...]) -> None:
    """Creates the two arrays under temporary names and links them into place; the flags file, linked last,
    marks a finished cache. Several processes (DDP ranks on one machine) may race here: the first link wins
    and the others use its files, so no process ever truncates a cache another one is filling."""
    tag = f".{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    tmp_images, tmp_flags = images_path.with_name(images_path.name + tag), flags_path.with_name(flags_path.name + tag)
    try:
        np.lib.format.open_memmap(tmp_flags, mode="w+", dtype=np.uint8, shape=(shape[0],))
        np.lib.format.open_memmap(tmp_images, mode="w+", dtype=np.uint8, shape=shape)
        try:
            os.link(tmp_images, images_path)
        except FileExistsError:  # another process is creating (or created) it: wait for its flags file
            for _ in range(600):
                if flags_path.exists():
                    return
                time.sleep(0.05)
            raise TimeoutError(f"The decoded-image cache '{images_path}' has no flags file '{flags_path}'; "
                               "delete both files (an interrupted run) and start again.") from None
        os.link(tmp_flags, flags_path)
    finally:
        tmp_images.unlink(missing_ok=True)
        tmp_flags.unlink(missing_ok=True)


class DecodedCache:
    """uint8 [N, 3, S, S] images in a shared memory-mapped file, with a filled flag per image.

    Example:
        >>> cache = DecodedCache(samples, pre)  # doctest: +SKIP
        >>> cache.get(0).shape  # doctest: +SKIP
        torch.Size([3, 256, 256])
    """

    def __init__(self, samples: Sequence[Sample], pre: Preprocessing, folder: str | os.PathLike[str] | None = None):
        self.samples = list(samples)
        self.pre = pre
        self.size = pre.resize_size
        h = hashlib.sha256(json.dumps({"pre": pre.to_dict(), "v": 3}, sort_keys=True).encode())
        for s in self.samples:
            h.update(f"{file_identity(s.path)}\n".encode())
        key = h.hexdigest()[:24]
        folder = Path(folder or decoded_cache_dir())
        folder.mkdir(parents=True, exist_ok=True)
        self.images_path = folder / f"{key}.u8"
        self.flags_path = folder / f"{key}.flags"
        shape = (len(self.samples), 3, self.size, self.size)  # CHW: batches stack by memcpy
        if not self.flags_path.exists():
            _create(self.images_path, self.flags_path, shape)
        self._images: np.memmap | None = None
        self._flags: np.memmap | None = None
        self._fd: int | None = None

    @staticmethod
    def nbytes(count: int, pre: Preprocessing) -> int:
        return count * pre.resize_size * pre.resize_size * 3

    def _open(self) -> None:
        if self._images is None:  # opened lazily, once per process (DataLoader workers too)
            self._images = np.load(self.images_path, mmap_mode="r" if _PWRITE else "r+")
            self._flags = np.load(self.flags_path, mmap_mode="r+")
            self._fd = os.open(self.images_path, os.O_WRONLY) if _PWRITE else None

    def _store(self, index: int, image: torch.Tensor) -> None:
        """Writes one image with pwrite: into fresh pages of the file about twice as fast as a store through
        the memory map (which faults every page in first); readers see it through their maps at once."""
        if self._fd is None:
            self._images[index] = image.numpy()
            return
        data = memoryview(image.contiguous().numpy()).cast("B")
        os.pwrite(self._fd, data, self._images.offset + index * len(data))

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def filled(self) -> int:
        self._open()
        return int(self._flags.sum())

    @property
    def complete(self) -> bool:
        """Whether every image is decoded or known unreadable (from then on, reading needs no workers)."""
        self._open()
        return bool(self._flags.all())

    def get(self, index: int) -> torch.Tensor:
        """The cached resized image as a uint8 [3, S, S] tensor, decoding and storing it on first use."""
        self._open()
        if self._flags[index] == _UNREADABLE:
            raise OSError(f"'{self.samples[index].path}' could not be read when it was first decoded.")
        if not self._flags[index]:
            try:
                image = resize_square(load_rgb_tensor(self.samples[index].path, min_size=self.size), self.pre)
            except Exception:
                self._flags[index] = _UNREADABLE
                raise
            self._store(index, image)
            self._flags[index] = 1
            return image
        return torch.from_numpy(np.array(self._images[index]))

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_images"] = state["_flags"] = state["_fd"] = None
        return state


