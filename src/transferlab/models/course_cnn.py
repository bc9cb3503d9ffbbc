"""The course's from-scratch baseline CNN, registered with timm like any other architecture.

Keras original (150x150x3, two classes, 3,453,121 parameters)::

    Conv2D(32, 3, relu) -> MaxPool2D(2) -> Conv2D(64, 3, relu) -> MaxPool2D(2)
    -> Conv2D(128, 3, relu) -> MaxPool2D(2) -> Conv2D(128, 3, relu) -> MaxPool2D(2)
    -> Flatten -> Dropout(0.5) -> Dense(512, relu) -> Dense(1, sigmoid)

For two classes the last layer has one output (a logit; the sigmoid lives in the loss, as
`binary_crossentropy` from logits), for N > 2 classes it has N outputs (softmax).
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import register_model
from torch import nn

from ..errors import SettingError
from ._surface import SequentialNet, from_scratch

__all__ = ["CourseCNN", "course_cnn"]


def _cfg(**kwargs: Any) -> dict[str, Any]:
    # `rescale=1/255` in the course: pixels scaled to [0, 1], no mean subtraction.
    return {
        "architecture": "course_cnn",
        "input_size": (3, 150, 150),
        "fixed_input_size": False,
        "interpolation": "bilinear",
        "crop_pct": 1.0,
        "crop_mode": "squash",
        "mean": (0.0, 0.0, 0.0),
        "std": (1.0, 1.0, 1.0),
        "num_classes": 2,
        "first_conv": "features.0",
        "classifier": "fc",
        **kwargs,
    }


def _out_size(size: int) -> int:
    for _ in range(4):
        size = (size - 2) // 2  # 3x3 'valid' conv, then 2x2 max-pool
    return size


class CourseCNN(SequentialNet):
    """The course's 4-conv baseline with timm's model surface.

    Args:
        num_classes: Number of classes; 2 gives the course's single sigmoid output.
        img_size: Square input size in pixels (the course uses 150).
        drop_rate: Dropout before the dense layer (the course's `Dropout(.5)`).
        batch_norm: Adds BatchNorm after each convolution (the course's "+ batch normalization" variant).

    Example:
        >>> model = CourseCNN(num_classes=2)
        >>> sum(p.numel() for p in model.parameters())
        3453121
    """

    def __init__(self, num_classes: int = 2, img_size: int = 150, drop_rate: float = 0.5,
                 batch_norm: bool = False, in_chans: int = 3) -> None:
        super().__init__()
        if _out_size(img_size) < 1:
            raise SettingError(f"course_cnn needs an image size of at least 46 pixels; got image_size={img_size}.")
        layers: list[nn.Module] = []
        chans = [in_chans, 32, 64, 128, 128]
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers.append(nn.Conv2d(cin, cout, 3))
            if batch_norm:
                layers.append(nn.BatchNorm2d(cout))
            layers += [nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers)
        self.num_features = 128 * _out_size(img_size) ** 2
        self.head_hidden_size = 512
        self.drop = nn.Dropout(drop_rate)
        self.dense = nn.Linear(self.num_features, 512)
        self.act = nn.ReLU(inplace=True)
        self.num_classes = num_classes
        self.fc = nn.Linear(512, self._outputs(num_classes))
        self.pretrained_cfg = _cfg(input_size=(3, img_size, img_size))
        self.default_cfg = self.pretrained_cfg

    @staticmethod
    def _outputs(num_classes: int) -> int:
        return 1 if num_classes == 2 else num_classes

    def _pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(self.drop(torch.flatten(x, 1))))


@register_model
def course_cnn(pretrained: bool = False, **kwargs: Any) -> CourseCNN:
    """The course's baseline CNN (no pretrained weights exist: it is trained from scratch)."""
    return from_scratch(CourseCNN, "course_cnn", pretrained, kwargs)
