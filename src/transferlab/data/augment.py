"""Augmentation with Keras `ImageDataGenerator`'s names and meanings, built on torchvision.transforms.v2.

Keras applies its random transforms to the image after it is resized to `target_size`; so does transferlab
(after the model's resize and crop), before normalisation. The meanings match Keras exactly:

- `rotation_range=40`: a uniform angle in [-40, 40] degrees.
- `width_shift_range` / `height_shift_range`: < 1 is a fraction of the width/height (uniform in [-r, r]),
  >= 1 is pixels (an int: uniform choice in [0, r) with a random sign, as Keras does; a float: uniform).
  Like Keras, the matrix is built in (x, y) order and applied to (row, col) arrays, quirks included.
- `shear_range=0.2`: a uniform shear angle in [-0.2, 0.2] **degrees** (Keras applies `np.deg2rad`).
- `zoom_range=0.2`: zoom factors for x and y drawn independently from [0.8, 1.2]; a factor > 1 shows more of
  the scene (zooms out), as in Keras.
- `horizontal_flip`, `vertical_flip`: each with probability 0.5.
- `brightness_range=(0.8, 1.2)`: pixel values multiplied by a uniform factor (PIL's ImageEnhance.Brightness).
- `fill_mode`: 'nearest' (default), 'constant' (with `cval`), 'reflect' or 'wrap'.
- `rescale=1/255`: accepted for course code; the model's own normalisation already scales pixels.
- `contrast_range=(0.8, 1.2)` and `noise_std=0.05` (Gaussian noise, in units of the [0, 1] pixel range): the
  course's contrast adjustment and noise injection, which Keras' generator lacks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
from torch import nn
from torchvision.transforms import v2

from .._errors import check_choice, did_you_mean

__all__ = ["AugmentConfig", "PRESETS", "KerasAffine", "resolve_augment", "augment_transforms", "FILL_MODES"]

FILL_MODES = ("nearest", "constant", "reflect", "wrap")


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation settings under Keras' names (see the module docstring for their exact meanings).

    Example:
        >>> AugmentConfig(rotation_range=40, zoom_range=0.2).zoom_bounds
        (0.8, 1.2)
    """

    rotation_range: float = 0.0
    width_shift_range: float = 0.0
    height_shift_range: float = 0.0
    shear_range: float = 0.0
    zoom_range: float | tuple[float, float] = 0.0
    horizontal_flip: bool = False
    vertical_flip: bool = False
    brightness_range: tuple[float, float] | None = None
    contrast_range: tuple[float, float] | None = None
    noise_std: float = 0.0
    fill_mode: str = "nearest"
    cval: float = 0.0
    rescale: float | None = None
    trivial_augment: bool = False
    random_erasing: float = 0.0

    def __post_init__(self) -> None:
        check_choice("fill_mode", self.fill_mode, FILL_MODES, where="augment")
        for name in ("rotation_range", "width_shift_range", "height_shift_range", "shear_range", "noise_std"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"The {name!r} augmentation parameter must be >= 0; got {getattr(self, name)}.")
        for name in ("brightness_range", "contrast_range"):
            value = getattr(self, name)
            if value is not None and (len(value) != 2 or not 0 <= value[0] <= value[1]):
                raise ValueError(f"The {name!r} augmentation parameter must be two numbers low <= high, e.g. "
                                 f"[0.8, 1.2]; got {value}.")
        if self.rescale not in (None, 1 / 255, 1.0 / 255.0) and not math.isclose(self.rescale or 0, 1 / 255):
            raise ValueError(
                f"rescale={self.rescale} is not supported: pixels are scaled to [0, 1] and normalised with the "
                "model's own mean and std (its pretrained config). Leave rescale out, or pass 1/255 as in the course."
            )
        lo, hi = self.zoom_bounds
        if not 0 < lo <= hi:
            raise ValueError(f"The 'zoom_range' parameter must give factors > 0 (e.g. 0.2 or [0.8, 1.2]); got "
                             f"{self.zoom_range}.")

    @property
    def zoom_bounds(self) -> tuple[float, float]:
        """Keras' rule: a number z means [1 - z, 1 + z]; a pair is used as given."""
        if isinstance(self.zoom_range, (list, tuple)):
            return float(self.zoom_range[0]), float(self.zoom_range[1])
        return 1.0 - float(self.zoom_range), 1.0 + float(self.zoom_range)

    @property
    def has_affine(self) -> bool:
        return bool(self.rotation_range or self.width_shift_range or self.height_shift_range or self.shear_range
                    or self.zoom_bounds != (1.0, 1.0))

    @property
    def is_identity(self) -> bool:
        return not (self.has_affine or self.horizontal_flip or self.vertical_flip or self.brightness_range
                    or self.contrast_range or self.noise_std or self.trivial_augment or self.random_erasing)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


PRESETS: dict[str, AugmentConfig] = {
    "none": AugmentConfig(),
    # the course's exact generator (cats vs dogs, Exercise #1)
    "course": AugmentConfig(rotation_range=40, width_shift_range=0.2, height_shift_range=0.2, shear_range=0.2,
                            zoom_range=0.2, horizontal_flip=True, rescale=1 / 255),
    "flip": AugmentConfig(horizontal_flip=True),
    "light": AugmentConfig(horizontal_flip=True, width_shift_range=0.1, height_shift_range=0.1),
    "strong": AugmentConfig(horizontal_flip=True, trivial_augment=True, random_erasing=0.25),
}


def resolve_augment(value: str | Mapping[str, Any] | AugmentConfig | None) -> AugmentConfig:
    """Turns a preset name, a mapping (Keras names, optionally with 'preset') or a config into a config.

    Example:
        >>> resolve_augment({"preset": "course", "rotation_range": 20}).rotation_range
        20
    """
    if value is None:
        return PRESETS["none"]
    if isinstance(value, AugmentConfig):
        return value
    if isinstance(value, str):
        check_choice("augment", value, PRESETS, where="train")
        return PRESETS[value]
    data = dict(value)
    base = PRESETS[check_choice("augment preset", data.pop("preset", "none"), PRESETS, where="train")]
    names = [f.name for f in fields(AugmentConfig)]
    for key in data:
        if key not in names:
            raise ValueError(f"Unknown augmentation parameter {key!r}." + did_you_mean(key, names)
                             + f" Known: {', '.join(names)}.")
    for key in ("brightness_range", "contrast_range", "zoom_range"):
        if isinstance(data.get(key), list):
            data[key] = tuple(data[key])
    return replace(base, **data)


def _shift(value: float, size: int, gen: torch.Generator | None) -> float:
    """Keras' shift rule: < 1 a fraction of `size`; an int n >= 1 a choice in [0, n) with a random sign; a
    float >= 1 uniform pixels in [-r, r]."""
    if not value:
        return 0.0
    if isinstance(value, int) and value >= 1:
        pixels = float(torch.randint(0, int(value), (1,), generator=gen))
        return pixels * (1 if torch.rand(1, generator=gen) < 0.5 else -1)
    shift = float(torch.empty(1).uniform_(-float(value), float(value), generator=gen))
    return shift * size if value < 1 else shift


class KerasAffine(v2.Transform):
    """Keras' `random_transform` geometry (rotation, shifts, shear, independent x/y zoom) on image tensors.

    Builds Keras' matrix exactly (`rotation @ shift @ shear @ zoom`, about the image centre) and resamples
    bilinearly (Keras' order=1) with Keras' fill modes. Other inputs (labels) pass through.
    """

    def __init__(self, config: AugmentConfig) -> None:
        super().__init__()
        self.config = config

    def sample(self, h: int, w: int, gen: torch.Generator | None = None) -> dict[str, float]:
        c = self.config
        u = lambda r: float(torch.empty(1).uniform_(-r, r, generator=gen)) if r else 0.0  # noqa: E731
        zlo, zhi = c.zoom_bounds
        zx, zy = ((1.0, 1.0) if (zlo, zhi) == (1.0, 1.0)
                  else tuple(float(z) for z in torch.empty(2).uniform_(zlo, zhi, generator=gen)))
        return {"theta": u(float(c.rotation_range)), "tx": _shift(c.height_shift_range, h, gen),
                "ty": _shift(c.width_shift_range, w, gen), "shear": u(float(c.shear_range)), "zx": zx, "zy": zy}

    @staticmethod
    def matrix(theta: float, tx: float, ty: float, shear: float, zx: float, zy: float, h: int, w: int) -> torch.Tensor:
        """Keras' `apply_affine_transform` matrix: output (row, col, 1) -> input (row, col, 1)."""
        import numpy as np

        t, s = math.radians(theta), math.radians(shear)
        m = np.array([[math.cos(t), -math.sin(t), 0], [math.sin(t), math.cos(t), 0], [0, 0, 1]])
        m = m @ np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
        m = m @ np.array([[1, -math.sin(s), 0], [0, math.cos(s), 0], [0, 0, 1]])
        m = m @ np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]])
        ox, oy = h / 2 - 0.5, w / 2 - 0.5  # Keras' transform_matrix_offset_center(matrix, h, w)
        m = np.array([[1, 0, ox], [0, 1, oy], [0, 0, 1]]) @ m @ np.array([[1, 0, -ox], [0, 1, -oy], [0, 0, 1]])
        # Keras builds the matrix in (x, y) order and swaps axes for (row, col) arrays: M' = P M P
        return torch.from_numpy(m[[1, 0, 2]][:, [1, 0, 2]].copy())

    def apply(self, image: torch.Tensor, params: dict[str, float]) -> torch.Tensor:
        """Resamples a [C, H, W] float image with the transform `params`."""
        h, w = image.shape[-2:]
        m = self.matrix(**params, h=h, w=w)
        if self.config.fill_mode == "nearest":  # Keras' default: affine_grid + grid_sample (edge replication)
            out = torch.nn.functional.grid_sample(image[None].float(), _normalized_grid(m, h, w), mode="bilinear",
                                                  padding_mode="border", align_corners=True)[0]
        else:
            m32 = m.to(torch.float32)
            rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                                        indexing="ij")
            src_r = m32[0, 0] * rows + m32[0, 1] * cols + m32[0, 2]
            src_c = m32[1, 0] * rows + m32[1, 1] * cols + m32[1, 2]
            out = _bilinear(image.float(), src_r, src_c, self.config.fill_mode, float(self.config.cval))
        return out.to(image.dtype)

    def forward(self, *inputs: Any) -> Any:
        sample = inputs if len(inputs) > 1 else inputs[0]
        image = sample[0] if isinstance(sample, tuple) else sample
        out = self.apply(image, self.sample(*image.shape[-2:]))
        return (out, *sample[1:]) if isinstance(sample, tuple) else out


def _normalized_grid(m: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """grid_sample's grid for the pixel-space (row, col) matrix `m`, built by affine_grid in normalized (x, y)."""
    sx, sy = 2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)
    # normalized (x, y, 1) -> pixel (row, col, 1), then m, then pixel (row, col) -> normalized (x, y)
    to_pixel = torch.tensor([[0, 1 / sy, 1 / sy], [1 / sx, 0, 1 / sx], [0, 0, 1]], dtype=torch.float64)
    to_norm = torch.tensor([[0, sx, -1], [sy, 0, -1]], dtype=torch.float64)
    theta = (to_norm @ m @ to_pixel).to(torch.float32)
    return torch.nn.functional.affine_grid(theta[None], [1, 1, h, w], align_corners=True)


def _fold(index: torch.Tensor, n: int, mode: str) -> torch.Tensor:
    """Maps integer sample positions outside [0, n) into the image, as scipy.ndimage's modes do."""
    if mode == "reflect":  # half-sample symmetric: d c b a | a b c d | d c b a
        index = torch.remainder(index, 2 * n)
        return torch.where(index >= n, 2 * n - 1 - index, index)
    return index.clamp(0, n - 1)


def _bilinear(image: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, mode: str, cval: float) -> torch.Tensor:
    """Order-1 spline sampling of a [C, H, W] image at (rows, cols), with scipy.ndimage's edge modes."""
    h, w = image.shape[-2:]
    if mode == "wrap":  # scipy 'wrap': coordinates wrap with period n - 1 (first and last points overlap)
        rows = torch.where((rows < 0) | (rows > h - 1), torch.remainder(rows, max(h - 1, 1)), rows)
        cols = torch.where((cols < 0) | (cols > w - 1), torch.remainder(cols, max(w - 1, 1)), cols)
    r0, c0 = torch.floor(rows), torch.floor(cols)
    fr, fc = rows - r0, cols - c0
    r0, c0 = r0.long(), c0.long()
    out = torch.zeros((image.shape[0], *rows.shape), dtype=image.dtype)
    for dr, wr in ((0, 1 - fr), (1, fr)):
        for dc, wc in ((0, 1 - fc), (1, fc)):
            rr, cc = _fold(r0 + dr, h, mode), _fold(c0 + dc, w, mode)
            out += image[:, rr, cc] * (wr * wc)
    if mode == "constant":  # every point beyond the edge pixels is cval, with no interpolation
        eps = 1e-6
        outside = (rows < -eps) | (rows > h - 1 + eps) | (cols < -eps) | (cols > w - 1 + eps)
        out = torch.where(outside[None], torch.tensor(cval, dtype=image.dtype), out)
    return out


class _Brightness(nn.Module):
    def __init__(self, low: float, high: float) -> None:
        super().__init__()
        self.low, self.high = low, high

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * float(torch.empty(1).uniform_(self.low, self.high))).clamp(0, 1)


class _Contrast(nn.Module):
    def __init__(self, low: float, high: float) -> None:
        super().__init__()
        self.low, self.high = low, high

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return v2.functional.adjust_contrast(x, float(torch.empty(1).uniform_(self.low, self.high)))


class _Noise(nn.Module):
    def __init__(self, std: float) -> None:
        super().__init__()
        self.std = std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + torch.randn_like(x) * self.std).clamp(0, 1)


def augment_transforms(config: AugmentConfig) -> tuple[list[nn.Module], list[nn.Module], list[nn.Module]]:
    """(on PIL/uint8 images, on float images in [0, 1], on normalised tensors) transform lists."""
    pil: list[nn.Module] = []
    floats: list[nn.Module] = []
    normalised: list[nn.Module] = []
    if config.trivial_augment:
        pil.append(v2.TrivialAugmentWide())
    if config.has_affine:
        floats.append(KerasAffine(config))
    if config.horizontal_flip:
        floats.append(v2.RandomHorizontalFlip())
    if config.vertical_flip:
        floats.append(v2.RandomVerticalFlip())
    if config.brightness_range:
        floats.append(_Brightness(*config.brightness_range))
    if config.contrast_range:
        floats.append(_Contrast(*config.contrast_range))
    if config.noise_std:
        floats.append(_Noise(float(config.noise_std)))
    if config.random_erasing:
        normalised.append(v2.RandomErasing(p=float(config.random_erasing)))
    return pil, floats, normalised
