"""The course's history of CNNs as models with timm's surface: LeNet-5 (ours, trained from scratch), and
AlexNet and GoogLeNet from torchvision (timm has neither).

Every model here has `forward_features`, `forward_head`, `reset_classifier`, `num_features` and a
`pretrained_cfg`, so the rest of transferlab (feature extraction, new heads, fine-tuning) treats it like a
timm model. The torchvision models take their preprocessing (mean, std, sizes) from torchvision's own weight
metadata.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import register_model
from torch import nn

from ..errors import SettingError
from ._surface import ClassifierSurface, SequentialNet, from_scratch, replace_submodule

__all__ = ["LeNet5", "TorchvisionNet", "lenet5", "torchvision_model", "TORCHVISION_MODELS"]


class LeNet5(SequentialNet):
    """LeNet-5 (LeCun et al., 1998) on 32x32 RGB images: two 5x5 convolutions with average pooling, then
    120-84-N dense layers with tanh, as in the paper (RGB instead of grayscale input).

    Example:
        >>> sum(p.numel() for p in LeNet5(num_classes=10).parameters())
        62006
    """

    def __init__(self, num_classes: int = 10, in_chans: int = 3, img_size: int = 32, drop_rate: float = 0.0) -> None:
        super().__init__()
        if img_size < 32:
            raise SettingError(f"lenet5 needs images of at least 32 pixels; got image_size={img_size}.")
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 6, 5), nn.Tanh(), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
        )
        side = ((img_size - 4) // 2 - 4) // 2
        self.dense = nn.Sequential(nn.Flatten(), nn.Linear(16 * side * side, 120), nn.Tanh(), nn.Linear(120, 84),
                                   nn.Tanh(), nn.Dropout(drop_rate))
        self.num_features = self.head_hidden_size = 84
        self.num_classes = num_classes
        self.fc = nn.Linear(84, num_classes) if num_classes > 0 else nn.Identity()
        self.pretrained_cfg = {
            "architecture": "lenet5", "input_size": (3, img_size, img_size), "fixed_input_size": False,
            "interpolation": "bilinear", "crop_pct": 1.0, "crop_mode": "squash", "mean": (0.0, 0.0, 0.0),
            "std": (1.0, 1.0, 1.0), "num_classes": num_classes, "first_conv": "features.0", "classifier": "fc",
        }
        self.default_cfg = self.pretrained_cfg

    def _pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(x)


@register_model
def lenet5(pretrained: bool = False, **kwargs: Any) -> LeNet5:
    """LeNet-5 (no pretrained weights: it is trained from scratch)."""
    return from_scratch(LeNet5, "lenet5", pretrained, kwargs)


# name -> (torchvision builder, weights enum, path of the final Linear inside the torchvision model)
TORCHVISION_MODELS: dict[str, tuple[str, str, str]] = {
    "alexnet": ("alexnet", "AlexNet_Weights", "classifier.6"),
    "googlenet": ("googlenet", "GoogLeNet_Weights", "fc"),
}


class TorchvisionNet(ClassifierSurface):
    """A torchvision classifier with timm's surface. `forward_features` gives the pre-logits vector (AlexNet:
    the 4096-wide fc7; GoogLeNet: the pooled 1024 features); the final Linear is the replaceable classifier.

    Example:
        >>> model = torchvision_model("alexnet", pretrained=False)
        >>> model.num_features, model.pretrained_cfg["input_size"]
        (4096, (3, 224, 224))
    """

    def __init__(self, name: str, net: nn.Module, weights_enum: Any) -> None:
        super().__init__()
        self.arch = name
        self.net = net
        fc_path = TORCHVISION_MODELS[name][2]
        fc = self.net.get_submodule(fc_path)
        self.num_features = self.head_hidden_size = fc.in_features
        self.num_classes = fc.out_features
        replace_submodule(self.net, fc_path, nn.Identity())  # the net now ends in the pre-logits features
        self.fc = fc
        preset = weights_enum.DEFAULT.transforms()
        crop, resize = int(preset.crop_size[0]), int(preset.resize_size[0])
        self.pretrained_cfg = {
            "architecture": name, "input_size": (3, crop, crop), "fixed_input_size": False,
            "interpolation": str(preset.interpolation.value), "crop_pct": crop / resize, "crop_mode": "center",
            "mean": tuple(preset.mean), "std": tuple(preset.std), "num_classes": self.num_classes,
            "classifier": "fc", "url": weights_enum.DEFAULT.url, "source": "torchvision",
        }
        self.default_cfg = self.pretrained_cfg

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return out.logits if hasattr(out, "logits") else out  # GoogLeNet's namedtuple in training mode

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        if self.arch == "alexnet":
            return {"stem": r"^net\.features\.[0-2]\.", "blocks": [(r"^net\.features\.(\d+)", None),
                                                                    (r"^net\.classifier\.(\d+)", (99999,))]}
        return {"stem": r"^net\.(conv1|maxpool1|conv2|conv3)", "blocks": [(r"^net\.inception(\d)", None)]}


def torchvision_model(name: str, pretrained: bool = False, num_classes: int | None = None) -> TorchvisionNet:
    """Builds torchvision's `name` ('alexnet', 'googlenet'), with its ImageNet weights when `pretrained`
    (downloaded by torch.hub into $TORCH_HOME)."""
    import torchvision.models as tvm

    builder, enum_name, _ = TORCHVISION_MODELS[name]
    weights_enum = getattr(tvm, enum_name)
    kwargs: dict[str, Any] = {"init_weights": False} if name == "googlenet" and not pretrained else {}
    net = getattr(tvm, builder)(weights=weights_enum.DEFAULT if pretrained else None, **kwargs)
    if name == "googlenet":
        net.aux_logits, net.aux1, net.aux2 = False, None, None
    model = TorchvisionNet(name, net, weights_enum)
    if num_classes is not None and num_classes != model.num_classes:
        model.reset_classifier(num_classes)
    return model
