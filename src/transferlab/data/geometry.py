"""How an image becomes a model input: the one definition of the preprocessing and its geometry, torch-free.

`Preprocessing` is plain data (saved as every bundle's preprocessing.json): the input size, the normalisation,
the interpolation and the crop. Its methods are the geometry every path follows: `resized_shape` (the shorter
side to `resize_size`, the longer one truncated, as torchvision's `Resize(int)`; both sides with 'squash') and
`crop_box` (the centre crop, rounded as torchvision's `CenterCrop`, padded with zeros when the image is smaller).

Two resampling kernels apply that geometry, and only these two:

- training (its validation transform, the decoded-image cache and feature extraction) resizes uint8 tensors with
  torchvision's antialiased kernels (`data.transforms`): about twice as fast as Pillow on the batches of every
  epoch, and the only one the batched, multi-process training path can use;
- inference (predict, evaluate, classify, serve and the exported `predict_onnx.py`) resizes with Pillow's
  antialiased filters (`inference.portable`): it must run without torch in an ONNX export folder, and every
  engine must see the same pixels.

torchvision's antialiased uint8 kernels follow Pillow's: on scikit-image's photos and the bundled ones, as JPEG
files, with bicubic or bilinear interpolation and crop_pct 0.875, the two give inputs that differ by at most one
grey level (rounding; under 0.01 levels on average) and the same top-1 of the ImageNet Lite0
(tests/test_geometry.py).

This file is copied into every ONNX export folder (as `tl_geometry.py`): it imports only the standard library.

Example:
    >>> pre = Preprocessing(224, (0.5,) * 3, (0.5,) * 3, "bicubic", 0.875)
    >>> pre.resize_size, pre.resized_shape(500, 375), pre.crop_box(341, 256)
    (256, (341, 256), (16, 58))
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

try:  # inside the package
    from ..errors import DataError
except ImportError:  # pragma: no cover - a copy beside predict_onnx.py in an export folder
    DataError = ValueError  # type: ignore[misc,assignment]

__all__ = ["Preprocessing", "INTERPOLATIONS", "CROP_MODES", "read_preprocessing"]

INTERPOLATIONS = ("bicubic", "bilinear", "nearest")  # the resamplers a preprocessing may name
CROP_MODES = ("center", "squash")  # keep the aspect and crop the centre, or resize both sides to the input
_EXAMPLE = '{"image_size": 224, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}'


@dataclass(frozen=True)
class Preprocessing:
    """How images are turned into model inputs; plain data, saved in every model bundle.

    Attributes:
        image_size: Square input size in pixels.
        mean: Per-channel mean subtracted after scaling pixels to [0, 1].
        std: Per-channel standard deviation divided by.
        interpolation: 'bicubic', 'bilinear' or 'nearest'.
        crop_pct: Resize to image_size / crop_pct, then centre-crop image_size (1.0: no crop).
        crop_mode: 'center' (keep aspect, resize shorter side) or 'squash' (resize both sides).
    """

    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"
    crop_pct: float = 0.875
    crop_mode: str = "center"

    @property
    def resize_size(self) -> int:
        """The size images are resized to before the centre crop: image_size / crop_pct, rounded down."""
        return math.floor(self.image_size / self.crop_pct) if self.crop_pct < 1.0 else self.image_size

    def resized_shape(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of an image after the resize: the shorter side becomes `resize_size` and the longer one
        is scaled and truncated (torchvision's `Resize(int)`), or both sides `resize_size` with crop_mode 'squash'.
        """
        scale = self.resize_size
        if self.crop_mode == "squash":
            return scale, scale
        if width <= height:
            return scale, int(scale * height / width)
        return int(scale * width / height), scale

    def crop_box(self, width: int, height: int, size: int | None = None) -> tuple[int, int]:
        """(top, left) of the centre crop of `size` (default image_size) in an image of width x height, rounded as
        torchvision's `CenterCrop`; negative when the image is smaller (it is then padded with zeros)."""
        size = self.image_size if size is None else size
        return int(round((height - size) / 2.0)), int(round((width - size) / 2.0))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "the preprocessing") -> Preprocessing:
        """A checked `Preprocessing` from a mapping (preprocessing.json); errors name `where` and the field."""
        return cls(**_checked(data, where))

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Preprocessing:
        """A bundle's preprocessing.json, checked (`read_preprocessing`)."""
        return cls.from_dict(read_preprocessing(path), f"'{path}'")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d


def _checked(data: Any, where: str) -> dict[str, Any]:
    """The fields of a preprocessing mapping, each checked: image_size (pixels), mean and std (3 numbers each,
    std > 0), interpolation, crop_pct (0 < x <= 1) and crop_mode."""

    def bad(field: str, expected: str) -> Exception:
        value = data.get(field) if isinstance(data, Mapping) else data
        return DataError(f"{where}: {field} must be {expected}; got {value!r}. A complete preprocessing looks like "
                         f"{_EXAMPLE}. Re-export or re-train to write it again.")

    if not isinstance(data, Mapping):
        raise bad("the file", "a mapping")
    size = data.get("image_size")
    if isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= 8192:
        raise bad("image_size", "a whole number of pixels from 8 to 8192")
    values = {}
    for field in ("mean", "std"):
        numbers = data.get(field)
        if (not isinstance(numbers, (list, tuple)) or len(numbers) != 3
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                           for v in numbers)
                or (field == "std" and not all(v > 0 for v in numbers))):
            raise bad(field, "3 finite numbers" + (" above 0" if field == "std" else ""))
        values[field] = tuple(float(v) for v in numbers)
    interpolation = data.get("interpolation", "bicubic")
    if interpolation not in INTERPOLATIONS:
        raise bad("interpolation", " or ".join(repr(i) for i in INTERPOLATIONS))
    crop = data.get("crop_pct", 1.0)
    if isinstance(crop, bool) or not isinstance(crop, (int, float)) or not 0 < crop <= 1:
        raise bad("crop_pct", "a number in (0, 1]")
    mode = data.get("crop_mode", "center")
    if mode not in CROP_MODES:
        raise bad("crop_mode", " or ".join(repr(m) for m in CROP_MODES))
    return {"image_size": size, "mean": values["mean"], "std": values["std"], "interpolation": interpolation,
            "crop_pct": float(crop), "crop_mode": mode}


def read_preprocessing(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A bundle's preprocessing.json as a checked mapping; anything else is a DataError naming the file and field
    (a shared or damaged bundle must not fail with a traceback)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"'{path}' is not valid JSON ({e}); it should hold the preprocessing, e.g. {_EXAMPLE}. "
                        "Re-export or re-train to write it again.") from None
    checked = _checked(data, f"'{path}'")
    return {**checked, "mean": list(checked["mean"]), "std": list(checked["std"])}
