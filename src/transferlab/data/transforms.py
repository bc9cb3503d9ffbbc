"""The transforms derived from a model's preprocessing: the geometry of `data.geometry` with torchvision's kernels
(the training side: validation transform, augmentation, decoded cache, feature extraction)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import torch
from PIL import Image
from timm.data import resolve_data_config
from torch import nn
from torchvision.transforms import InterpolationMode, v2

from .augment import AugmentConfig, resolve_augment
from .augment_ops import BatchAugment, pil_transforms
from .geometry import CROP_MODES, INTERPOLATIONS, Preprocessing
from .images import decode_plain_jpeg, is_virtual, load_rgb, pillow_rgb, read_bytes

__all__ = ["Preprocessing", "preprocessing_from_model", "BatchTransform", "eval_transform", "train_transform",
           "train_uint8_transform", "resize_tensor", "crop_tensor"]

def preprocessing_from_model(model: nn.Module, image_size: int | None = None) -> Preprocessing:
    """A model's preprocessing, read from its pretrained config (never typed-in ImageNet statistics).

    Example:
        >>> from transferlab.models import create_model
        >>> preprocessing_from_model(create_model("efficientnet_lite0")).image_size
        224
    """
    cfg = resolve_data_config({}, model=model)
    size = int(image_size) if image_size else int(cfg["input_size"][-1])
    interpolation = cfg.get("interpolation", "bicubic")
    mode = str(cfg.get("crop_mode", "center"))
    return Preprocessing(size, tuple(map(float, cfg["mean"])), tuple(map(float, cfg["std"])),
                         interpolation if interpolation in INTERPOLATIONS else "bicubic",
                         float(cfg.get("crop_pct", 1.0)), mode if mode in CROP_MODES else "center")


def _resize_crop(pre: Preprocessing, resized: bool = False) -> list[nn.Module]:
    """PIL image or uint8 tensor -> uint8 [3, S, S] tensor at the model's size: the geometry of
    `data.geometry.Preprocessing` with torchvision's kernels.

    The resize runs on uint8 tensors (torchvision's vectorised antialiased kernels, about twice PIL's speed),
    in the evaluation, training and decoded-cache paths alike, so that cached and uncached images are equal.
    """
    if resized:  # the image is already resize_size x resize_size (decoded cache): only the centre crop remains
        return [PILToTensorHWC(), CentreCrop(pre)]
    return [PILToTensorHWC(), Resize(pre), CentreCrop(pre)]


def interpolation_mode(pre: Preprocessing) -> InterpolationMode:
    """torchvision's mode for the preprocessing's interpolation (its values are the same names)."""
    return InterpolationMode(pre.interpolation)


def resize_tensor(image: torch.Tensor, pre: Preprocessing) -> torch.Tensor:
    """A uint8 [3, H, W] image resized as `Preprocessing.resized_shape` says, with torchvision's antialiased kernel."""
    width, height = pre.resized_shape(image.shape[-1], image.shape[-2])
    return v2.functional.resize_image(image, [height, width], interpolation=interpolation_mode(pre), antialias=True)


def crop_tensor(image: torch.Tensor, pre: Preprocessing, size: int | None = None) -> torch.Tensor:
    """The centre crop of `Preprocessing.crop_box` (zeros where the image is smaller)."""
    size = pre.image_size if size is None else size
    top, left = pre.crop_box(image.shape[-1], image.shape[-2], size)
    return v2.functional.crop_image(image, top, left, size, size)


class Resize(nn.Module):
    """`resize_tensor` as a transform."""

    def __init__(self, pre: Preprocessing) -> None:
        super().__init__()
        self.pre = pre

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return resize_tensor(image, self.pre)


class CentreCrop(nn.Module):
    """`crop_tensor` to the input size as a transform."""

    def __init__(self, pre: Preprocessing) -> None:
        super().__init__()
        self.pre = pre

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return crop_tensor(image, self.pre)


def pil_to_chw(image: Image.Image) -> torch.Tensor:
    """A PIL RGB image as a uint8 [3, H, W] tensor that keeps PIL's interleaved (channels-last) memory layout.

    One copy instead of two (pil_to_tensor makes the planes contiguous), and torchvision's antialiased uint8
    resize is faster on this layout; the resized pixels are identical (tested).
    """
    if image.mode != "RGB":
        return v2.functional.pil_to_tensor(image)
    w, h = image.size
    return torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(h, w, 3).permute(2, 0, 1)


def load_rgb_tensor(path: str | os.PathLike[str], min_size: int | None = None) -> torch.Tensor:
    """`load_rgb` as a uint8 [3, H, W] tensor (channels-last memory); a plain JPEG goes from the decoder's
    array to the tensor without a round trip through a PIL image. Same pixels as `pil_to_chw(load_rgb(...))`.
    """
    if is_virtual(path):
        return pil_to_chw(load_rgb(path, min_size=min_size))
    data = read_bytes(path)
    plain = decode_plain_jpeg(data, min_size)
    if plain is not None:
        return torch.from_numpy(plain).permute(2, 0, 1)
    return pil_to_chw(pillow_rgb(data, min_size=min_size))


class PILToTensorHWC(nn.Module):
    """`v2.PILToTensor` through `pil_to_chw`; tensors pass through unchanged."""

    def forward(self, image: Any) -> Any:
        return pil_to_chw(image) if isinstance(image, Image.Image) else image


def _to_tensor(pre: Preprocessing) -> list[nn.Module]:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(pre.mean), list(pre.std))]


def eval_transform(pre: Preprocessing, resized: bool = False) -> Callable[[Image.Image], torch.Tensor]:
    """Validation/inference transform: resize, centre crop, scale to [0, 1], normalise.

    Example:
        >>> pre = Preprocessing(224, (0.5,) * 3, (0.5,) * 3)
        >>> eval_transform(pre)(Image.new("RGB", (300, 200))).shape
        torch.Size([3, 224, 224])
    """
    return v2.Compose([*_resize_crop(pre, resized), *_to_tensor(pre)])


class _OneImage(nn.Module):
    """Runs a batch augmentation on a single [C, H, W] image."""

    def __init__(self, augment: BatchAugment) -> None:
        super().__init__()
        self.augment = augment

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.augment(image.as_subclass(torch.Tensor)[None])[0]


def train_transform(pre: Preprocessing, augment: str | Mapping[str, Any] | AugmentConfig | None = "none",
                    resized: bool = False) -> Callable[[Image.Image], torch.Tensor]:
    """Training transform for one image: the evaluation geometry, then the augmentation (Keras' order: random
    transforms on the resized image), then normalisation.

    Training does the same work per batch instead (`train_uint8_transform` + `BatchTransform`).

    Example:
        >>> pre = Preprocessing(150, (0.0,) * 3, (1.0,) * 3, "bilinear", 1.0, "squash")
        >>> train_transform(pre, "course")(Image.new("RGB", (300, 200))).shape
        torch.Size([3, 150, 150])
    """
    config = resolve_augment(augment)
    return v2.Compose([*_resize_crop(pre, resized), *pil_transforms(config),
                       _OneImage(BatchAugment(config, pre.mean, pre.std))])


def train_uint8_transform(pre: Preprocessing, augment: str | Mapping[str, Any] | AugmentConfig | None = "none",
                          resized: bool = False) -> Callable[[Image.Image], torch.Tensor]:
    """The per-image part of the training transform: geometry and PIL-stage augmentation, to a uint8 tensor.

    Example:
        >>> pre = Preprocessing(150, (0.0,) * 3, (1.0,) * 3, "bilinear", 1.0, "squash")
        >>> train_uint8_transform(pre, "course")(Image.new("RGB", (300, 200))).dtype
        torch.uint8
    """
    config = resolve_augment(augment)
    return v2.Compose([*_resize_crop(pre, resized), *pil_transforms(config)])


class BatchTransform:
    """Augments and normalises a uint8 training batch on its device, then applies MixUp/CutMix when asked
    (soft labels). The training loader delivers uint8 batches (`train_uint8_transform`, default collate) and
    the training module calls this once the batch is on the accelerator.

    Example:
        >>> pre = Preprocessing(32, (0.5,) * 3, (0.5,) * 3)
        >>> x, y = BatchTransform(pre, "course")(torch.zeros(4, 3, 32, 32, dtype=torch.uint8), torch.ones(4))
        >>> x.shape, x.dtype
        (torch.Size([4, 3, 32, 32]), torch.float32)
    """

    def __init__(self, pre: Preprocessing, augment: str | Mapping[str, Any] | AugmentConfig | None = "none",
                 num_classes: int = 0, mixup: float = 0.0, cutmix: float = 0.0) -> None:
        self.augment = BatchAugment(resolve_augment(augment), pre.mean, pre.std)
        choices = []
        if mixup:
            choices.append(v2.MixUp(alpha=mixup, num_classes=num_classes))
        if cutmix:
            choices.append(v2.CutMix(alpha=cutmix, num_classes=num_classes))
        self.mix = None if not choices else choices[0] if len(choices) == 1 else v2.RandomChoice(choices)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.augment(images.as_subclass(torch.Tensor))
        return self.mix(x, labels) if self.mix is not None else (x, labels)

    def mix_tensors(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """MixUp/CutMix of a batch of cached tensors (in float32): [N, C, H, W] activations, or [N, D] features
        (MixUp only: they are mixed as [N, D, 1, 1])."""
        flat = x.dim() == 2
        mixed, soft = self.mix(x.float()[:, :, None, None] if flat else x.float(), labels)
        return (mixed[:, :, 0, 0] if flat else mixed), soft
