"""Keras Applications, in PyTorch: course notebooks port line by line.

    from transferlab.applications import ResNet50
    base_model = ResNet50(include_top=False, weights="imagenet", input_shape=(240, 240, 3), pooling="avg")
    base_model.trainable = False
    for layer in base_model.layers[143:]:
        layer.trainable = True

Every family of the course's catalog has a function with Keras' name and arguments. With `include_top=True`
it returns the full classifier (a timm model with its 1000-class head, or `classes` outputs); without the
top it returns a `KerasBase`: the feature extractor, giving the feature map (`pooling=None`, channels
first as PyTorch does) or the pooled vector (`'avg'`, `'max'`), with Keras' `trainable`, `layers` and
`trainable_weights`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..errors import SettingError
from . import create_model
from .catalog import CATALOG
from .transfer import Base

__all__ = ["KerasBase", "application"]


class KerasBase(nn.Module):
    """A pretrained base without its classifier, with Keras' `trainable`, `layers` and `output_shape`.

    Example:
        >>> from transferlab.applications import EfficientNetB0
        >>> base = EfficientNetB0(include_top=False, weights=None, pooling="avg")
        >>> base(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 1280])
    """

    def __init__(self, model: nn.Module, pooling: str | None, input_shape: tuple[int, int, int]) -> None:
        super().__init__()
        if pooling not in (None, "avg", "max"):
            raise SettingError(f"pooling must be None, 'avg' or 'max' (as in Keras); got {pooling!r}.")
        self.model = model
        self.pooling = pooling
        self.input_shape = input_shape
        self._base = Base(model)

    @property
    def pretrained_cfg(self) -> dict[str, Any]:
        return self.model.pretrained_cfg

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.model.forward_features(x)
        if self.pooling is None or x.dim() != 4:
            return x
        return x.mean(dim=(2, 3)) if self.pooling == "avg" else x.amax(dim=(2, 3))

    @property
    def output_shape(self) -> tuple[int | None, ...]:
        """Keras-style output shape with None for the batch (channels first)."""
        h, w, c = self.input_shape
        device = next(self.model.parameters()).device
        with torch.no_grad():
            was = self.training
            self.eval()
            out = self(torch.zeros(1, c, h, w, device=device))
            self.train(was)
        return (None, *out.shape[1:])

    @property
    def layers(self) -> list:
        return self._base.layers

    @property
    def trainable(self) -> bool:
        return self._base.trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._base.trainable = value

    @property
    def trainable_weights(self) -> list[nn.Parameter]:
        return self._base.trainable_weights

    @property
    def non_trainable_weights(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if not p.requires_grad]


def application(name: str, include_top: bool = True, weights: str | os.PathLike[str] | None = "imagenet",
                input_shape: tuple[int, int, int] | None = None, pooling: str | None = None,
                classes: int = 1000) -> nn.Module:
    """Keras Applications' constructor for catalog model `name`.

    Args:
        name: Catalog name or Keras spelling (`resnet50`, `ResNet50`).
        include_top: Keep the classifier (True) or return the feature extractor (False).
        weights: 'imagenet', None (random initialisation) or the path of a weights file.
        input_shape: (height, width, 3), Keras' channels-last spelling; the model's default size when None.
        pooling: Without the top: None (feature map), 'avg' or 'max'.
        classes: Outputs of the top; must be 1000 with ImageNet weights, as in Keras.

    Raises:
        ValueError: Keras' own argument rules (with what to pass instead).
    """
    if weights is not None and str(weights) != "imagenet" and not os.path.exists(weights):
        raise SettingError(f"The `weights` argument should be 'imagenet', None or the path to a weights file; got "
                         f"{weights!r} (no such file).")
    if include_top and str(weights) == "imagenet" and classes != 1000:
        raise SettingError(f"With weights='imagenet' and include_top=True, classes must be 1000; got {classes}. Use "
                         "include_top=False and add your own head (or transferlab.models.build_classifier).")
    if input_shape is not None and (len(input_shape) != 3 or input_shape[2] != 3 or input_shape[0] != input_shape[1]):
        raise SettingError(f"input_shape must be (size, size, 3), square RGB in Keras' channels-last order; got "
                         f"{input_shape}.")
    size = int(input_shape[0]) if input_shape else None
    model = create_model(name, num_classes=classes if include_top and classes != 1000 else None,
                         weights="none" if weights is None else weights, image_size=size)
    if include_top:
        return model
    if size is None:
        size = int(model.pretrained_cfg["input_size"][-1])
    return KerasBase(model, pooling, (size, size, 3))


def _make(entry_name: str, keras_name: str) -> Callable[..., nn.Module]:
    def constructor(include_top: bool = True, weights: str | os.PathLike[str] | None = "imagenet",
                    input_shape: tuple[int, int, int] | None = None, pooling: str | None = None,
                    classes: int = 1000) -> nn.Module:
        return application(entry_name, include_top, weights, input_shape, pooling, classes)

    constructor.__name__ = constructor.__qualname__ = keras_name
    constructor.__doc__ = (f"Keras' `{keras_name}` as transferlab model {entry_name!r} (see `application` for the "
                           "arguments).")
    return constructor


_KERAS_EXTRA = {"efficientnet_lite0": "EfficientNetLite0", "efficientnet_lite1": "EfficientNetLite1",
                "efficientnet_lite2": "EfficientNetLite2", "alexnet": "AlexNet", "googlenet": "GoogLeNet",
                "lenet5": "LeNet5"}
for _entry in CATALOG:
    _keras = _entry.keras or _KERAS_EXTRA.get(_entry.name)
    if _keras and _keras.isidentifier():
        globals()[_keras] = _make(_entry.name, _keras)
        __all__.append(_keras)
ViT_B16 = _make("vit_b16", "ViT_B16")
__all__.append("ViT_B16")
