"""A decoded-image cache: JPEG decoding and resizing happen once, not every epoch.

Resized uint8 images live in a memory-mapped file shared by every DataLoader worker: the first epoch
decodes and fills it (workers in parallel), later epochs read it at memory speed. The file is keyed by the
files (path, size, modification time) and the resize settings, under $TRANSFERLAB_HOME/decoded.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from .folder import Sample
from .images import file_identity, load_rgb
from .transforms import _INTERPOLATIONS, Preprocessing

__all__ = ["DecodedCache", "decoded_cache_dir"]

def decoded_cache_dir() -> Path:
    return Path(os.environ.get("TRANSFERLAB_HOME", Path.home() / ".cache" / "transferlab")) / "decoded"


def resize_square(image: Image.Image, pre: Preprocessing) -> Image.Image:
    """The transform's own resize followed by a centre crop to resize_size x resize_size (what the cache stores);
    a later centre crop to image_size gives exactly what the uncached transform gives."""
    from torchvision.transforms import v2

    size = pre.resize_size
    interp = _INTERPOLATIONS[pre.interpolation]
    target = (size, size) if pre.crop_mode == "squash" else size
    return v2.functional.center_crop(v2.functional.resize(image, target, interpolation=interp, antialias=True),
                                     [size, size])


class DecodedCache:
    """uint8 [N, S, S, 3] images in a shared memory-mapped file, with a filled flag per image.

    Example:
        >>> cache = DecodedCache(samples, pre)  # doctest: +SKIP
        >>> cache.get(0).size
        (256, 256)
    """

    def __init__(self, samples: Sequence[Sample], pre: Preprocessing, folder: str | os.PathLike[str] | None = None):
        self.samples = list(samples)
        self.pre = pre
        self.size = pre.resize_size
        h = hashlib.sha256(json.dumps({"pre": pre.to_dict(), "v": 1}, sort_keys=True).encode())
        for s in self.samples:
            h.update(f"{file_identity(s.path)}\n".encode())
        key = h.hexdigest()[:24]
        folder = Path(folder or decoded_cache_dir())
        folder.mkdir(parents=True, exist_ok=True)
        self.images_path = folder / f"{key}.u8"
        self.flags_path = folder / f"{key}.flags"
        shape = (len(self.samples), self.size, self.size, 3)
        if not self.images_path.exists():
            np.lib.format.open_memmap(self.flags_path, mode="w+", dtype=np.uint8, shape=(len(self.samples),))
            np.lib.format.open_memmap(self.images_path, mode="w+", dtype=np.uint8, shape=shape)
        self._images: np.memmap | None = None
        self._flags: np.memmap | None = None

    @staticmethod
    def nbytes(count: int, pre: Preprocessing) -> int:
        return count * pre.resize_size * pre.resize_size * 3

    def _open(self) -> None:
        if self._images is None:  # opened lazily, once per process (DataLoader workers too)
            self._images = np.load(self.images_path, mmap_mode="r+")
            self._flags = np.load(self.flags_path, mmap_mode="r+")

    @property
    def filled(self) -> int:
        self._open()
        return int(self._flags.sum())

    def get(self, index: int) -> Image.Image:
        """The cached resized image, decoding and storing it on first use."""
        self._open()
        if not self._flags[index]:
            image = resize_square(load_rgb(self.samples[index].path, min_size=self.size), self.pre)
            self._images[index] = np.asarray(image, dtype=np.uint8)
            self._flags[index] = 1
            return image
        return Image.fromarray(np.asarray(self._images[index]))

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_images"] = state["_flags"] = None
        return state


