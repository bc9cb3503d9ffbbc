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

This module holds the settings (torch-free: checked before torch loads); `data.augment_ops` applies them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .._settings import check_settings, settings_from
from ..errors import DataError, check_choice

__all__ = ["AugmentConfig", "PRESETS", "resolve_augment", "FILL_MODES", "describe_augment"]

FILL_MODES = ("nearest", "constant", "reflect", "wrap")


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation settings under Keras' names (see the module docstring for their exact meanings).

    Example:
        >>> AugmentConfig(rotation_range=40, zoom_range=0.2).zoom_bounds
        (0.8, 1.2)
    """

    rotation_range: float = field(default=0.0, metadata={"ge": 0, "le": 360, "example": "40"})
    width_shift_range: int | float = field(default=0.0, metadata={"ge": 0, "example": "0.2"})
    height_shift_range: int | float = field(default=0.0, metadata={"ge": 0, "example": "0.2"})
    shear_range: float = field(default=0.0, metadata={"ge": 0, "le": 90, "example": "0.2"})
    zoom_range: float | tuple[float, float] = field(default=0.0, metadata={"ge": 0, "example": "0.2"})
    horizontal_flip: bool = False
    vertical_flip: bool = False
    brightness_range: tuple[float, float] | None = field(default=None, metadata={"ge": 0, "example": "0.8,1.2"})
    contrast_range: tuple[float, float] | None = field(default=None, metadata={"ge": 0, "example": "0.8,1.2"})
    noise_std: float = field(default=0.0, metadata={"ge": 0, "le": 1, "example": "0.05"})
    fill_mode: str = field(default="nearest", metadata={"choices": FILL_MODES})
    cval: float = field(default=0.0, metadata={"example": "0"})
    rescale: float | None = field(default=None, metadata={"example": "1/255"})
    trivial_augment: bool = False
    random_erasing: float = field(default=0.0, metadata={"ge": 0, "le": 1, "example": "0.25"})

    def __post_init__(self) -> None:
        check_settings(self, "augment")  # types, ranges, choices, finite numbers: the one check of every setting
        for name in ("brightness_range", "contrast_range"):
            value = getattr(self, name)
            if value is not None and not value[0] <= value[1]:
                raise DataError(f"The {name!r} augmentation parameter must be two numbers low <= high, e.g. "
                                 f"[0.8, 1.2]; got {value}.")
        if self.rescale not in (None, 1 / 255, 1.0 / 255.0) and not math.isclose(self.rescale or 0, 1 / 255):
            raise DataError(
                f"rescale={self.rescale} is not supported: pixels are scaled to [0, 1] and normalised with the "
                "model's own mean and std (its pretrained config). Leave rescale out, or pass 1/255 as in the course."
            )
        lo, hi = self.zoom_bounds
        if not 0 < lo <= hi:
            raise DataError(f"The 'zoom_range' parameter must give factors > 0 (e.g. 0.2 or [0.8, 1.2]); got "
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
        20.0
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
    settings_from(AugmentConfig, data, "augmentation")  # unknown names refused, with the close ones
    return replace(base, **data)


def describe_augment(settings: Any) -> str:
    """The augmentation in Keras' words, only what differs from none: 'rotation_range=40, horizontal_flip=True'."""
    chosen, plain = resolve_augment(settings).to_dict(), AugmentConfig().to_dict()
    changed = [f"{k}={_shown(k, v)}" for k, v in chosen.items() if v != plain[k]]
    return ", ".join(changed) or "no augmentation"


def _shown(name: str, value: Any) -> str:
    """A value as a person writes it: 30 not 30.0, 1/255 not 0.00392156862745098."""
    if name == "rescale" and isinstance(value, float) and math.isclose(value, 1 / 255):
        return "1/255"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ", ".join(_shown(name, v) for v in value) + "]"
    return str(value)
