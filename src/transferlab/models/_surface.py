"""The part of timm's model surface that transferlab's own model classes share.

CourseCNN, LeNet-5, the torchvision wrappers and the Hugging Face wrapper all end in a replaceable Linear
`fc` reading `head_hidden_size` features; this mixin gives them timm's `forward`, `forward_head`,
`get_classifier` and `reset_classifier` over it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import SettingError

__all__ = ["ClassifierSurface", "SequentialNet", "replace_submodule", "from_scratch"]


class ClassifierSurface(nn.Module):
    """timm's classifier methods over `self.fc`; subclasses define `forward_features` and may override
    `_pre_logits` (layers between the features and `fc`) and `_outputs` (width of `fc` for N classes)."""

    fc: nn.Module
    head_hidden_size: int
    num_classes: int

    def _pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def _outputs(self, num_classes: int) -> int:
        return num_classes

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self._pre_logits(x)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.head_hidden_size, self._outputs(num_classes)) if num_classes > 0 else nn.Identity()


class SequentialNet(ClassifierSurface):
    """A `features` Sequential (its first conv block the stem) followed by `dense` layers and `fc`: the
    from-scratch CNNs of the course (CourseCNN, LeNet-5). Gives `forward_features` and timm's
    `group_matcher` (stem, one group per feature layer, then the dense layers)."""

    features: nn.Sequential

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return {"stem": r"^features\.[0-2]\.", "blocks": [(r"^features\.(\d+)", None), (r"^dense", (99999,))]}


def replace_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    """Sets the submodule at dotted `path` (e.g. 'classifier.6') of `root` to `module`."""
    parent, _, leaf = path.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, module)


def from_scratch(cls: type[nn.Module], name: str, pretrained: bool, kwargs: dict[str, Any]) -> nn.Module:
    """The body of a timm factory for a model without pretrained weights: refuses `pretrained`, drops the
    pretrained-config arguments timm passes, builds `cls(**kwargs)`."""
    if pretrained:
        raise SettingError(f"{name} has no pretrained weights: it is trained from scratch. Pass weights='none'.")
    for key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
        kwargs.pop(key, None)
    return cls(**kwargs)
