"""Preprocessing taken from the model's pretrained config, and the transforms derived from it."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from PIL import Image
from timm.data import resolve_data_config
from torch import nn
from torchvision.transforms import InterpolationMode, v2

from .augment import AugmentConfig, augment_transforms, resolve_augment

__all__ = ["Preprocessing", "eval_transform", "train_transform"]

_INTERPOLATIONS = {"bicubic": InterpolationMode.BICUBIC, "bilinear": InterpolationMode.BILINEAR,
                   "nearest": InterpolationMode.NEAREST}


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

    @classmethod
    def from_model(cls, model: nn.Module, image_size: int | None = None) -> Preprocessing:
        """Reads the model's pretrained config (never typed-in ImageNet statistics).

        Example:
            >>> from transferlab.models import create_model
            >>> Preprocessing.from_model(create_model("efficientnet_lite0")).image_size
            224
        """
        cfg = resolve_data_config({}, model=model)
        size = int(image_size) if image_size else int(cfg["input_size"][-1])
        interpolation = cfg.get("interpolation", "bicubic")
        if interpolation not in _INTERPOLATIONS:
            interpolation = "bicubic"
        return cls(size, tuple(map(float, cfg["mean"])), tuple(map(float, cfg["std"])), interpolation,
                   float(cfg.get("crop_pct", 1.0)), str(cfg.get("crop_mode", "center")))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocessing:
        return cls(int(data["image_size"]), tuple(data["mean"]), tuple(data["std"]),
                   data.get("interpolation", "bicubic"), float(data.get("crop_pct", 1.0)),
                   data.get("crop_mode", "center"))

    @property
    def resize_size(self) -> int:
        """The size images are resized to before the centre crop."""
        return math.floor(self.image_size / self.crop_pct) if self.crop_pct < 1.0 else self.image_size

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d


def _resize_crop(pre: Preprocessing, resized: bool = False) -> list[nn.Module]:
    if resized:  # the image is already resize_size x resize_size (decoded cache): only the centre crop remains
        return [v2.CenterCrop(pre.image_size)]
    interp = _INTERPOLATIONS[pre.interpolation]
    scale = pre.resize_size
    if pre.crop_mode == "squash":
        resize = v2.Resize((scale, scale), interpolation=interp, antialias=True)
    else:
        resize = v2.Resize(scale, interpolation=interp, antialias=True)
    return [resize, v2.CenterCrop(pre.image_size)]


def _to_tensor(pre: Preprocessing) -> list[nn.Module]:
    return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(pre.mean), list(pre.std))]


def eval_transform(pre: Preprocessing, resized: bool = False) -> Callable[[Image.Image], torch.Tensor]:
    """Validation/inference transform: resize, centre crop, scale to [0, 1], normalise.

    Example:
        >>> pre = Preprocessing(224, (0.5,) * 3, (0.5,) * 3)
        >>> eval_transform(pre)(Image.new("RGB", (300, 200))).shape
        torch.Size([3, 224, 224])
    """
    return v2.Compose([*_resize_crop(pre, resized), *_to_tensor(pre)])


def train_transform(pre: Preprocessing, augment: str | Mapping[str, Any] | AugmentConfig | None = "none",
                    resized: bool = False) -> Callable[[Image.Image], torch.Tensor]:
    """Training transform: the evaluation geometry, then the augmentation (Keras' order: random transforms
    on the resized image), then normalisation.

    Example:
        >>> pre = Preprocessing(150, (0.0,) * 3, (1.0,) * 3, "bilinear", 1.0, "squash")
        >>> train_transform(pre, "course")(Image.new("RGB", (300, 200))).shape
        torch.Size([3, 150, 150])
    """
    config = resolve_augment(augment)
    pil, floats, normalised = augment_transforms(config)
    return v2.Compose([*_resize_crop(pre, resized), *pil, v2.ToImage(), v2.ToDtype(torch.float32, scale=True), *floats,
                       v2.Normalize(list(pre.mean), list(pre.std)), *normalised])
