"""Boundary caching for partial fine-tuning: the frozen prefix of the base runs once per image.

With `unfreeze-from`/`unfreeze-last`, everything before the first trainable stage is frozen (BatchNorm
included), so its output for an image never changes. Without augmentation the activations at that stage
boundary are cached (bf16) and each epoch runs only the trainable suffix and the head; with augmentation and
`feature_cache_copies=N`, N augmented copies are cached and epoch e reads copy e mod N.

Supported for bases built from a sequence of stages: timm's EfficientNet/MobileNet family (`blocks`) and
ResNet family (`layer1`..`layer4`). Other bases train the ordinary way.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["stages_of", "boundary_stage", "boundary_bytes", "Prefix", "BoundaryNet"]


def stages_of(base: nn.Module) -> tuple[list[nn.Module], str] | None:
    """The base's stages and its family ('efficientnet' or 'resnet'), or None when unsupported."""
    if all(hasattr(base, a) for a in ("conv_stem", "bn1", "blocks", "conv_head", "bn2", "forward_head")):
        return list(base.blocks), "efficientnet"
    if all(hasattr(base, a) for a in ("conv1", "bn1", "act1", "maxpool", "layer4", "forward_head")):
        return [base.layer1, base.layer2, base.layer3, base.layer4], "resnet"
    return None


def boundary_stage(base: nn.Module) -> int | None:
    """Index of the first stage holding a trainable parameter, when everything before it is frozen.

    None when the base is unsupported, fully frozen, or trains from the stem (nothing to cache).
    """
    found = stages_of(base)
    if found is None:
        return None
    stages, _ = found
    trainable_ids = {id(p) for p in base.parameters() if p.requires_grad}
    if not trainable_ids:
        return None
    for k, stage in enumerate(stages):
        if any(id(p) in trainable_ids for p in stage.parameters()):
            before = {id(p) for s in stages[:k] for p in s.parameters()}
            stage_ids = {id(p) for s in stages for p in s.parameters()}
            stem = {id(p) for p in base.parameters()} - stage_ids - _tail_ids(base)
            if (before | stem) & trainable_ids:
                return None
            return k if k > 0 else (0 if not (stem & trainable_ids) else None)
    return len(stages)  # only the tail (conv_head / bn2) trains


def _tail_ids(base: nn.Module) -> set[int]:
    tail = [getattr(base, n) for n in ("conv_head", "bn2", "global_pool") if hasattr(base, n)]
    return {id(p) for m in tail for p in m.parameters()}


def _run_stem(base: nn.Module, x: torch.Tensor, family: str) -> torch.Tensor:
    if family == "efficientnet":
        return base.bn1(base.conv_stem(x))
    return base.maxpool(base.act1(base.bn1(base.conv1(x))))


class Prefix(nn.Module):
    """Stem and stages[:k] of a base: what the boundary cache stores."""

    def __init__(self, base: nn.Module, k: int) -> None:
        super().__init__()
        stages, self.family = stages_of(base)
        self.base, self.k = base, k
        self._stages = stages

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _run_stem(self.base, x, self.family)
        for stage in self._stages[: self.k]:
            x = stage(x)
        return x


def boundary_bytes(base: nn.Module, k: int, image_size: int) -> int:
    """Bytes of one image's cached activation at stage `k` (stored as bfloat16), from one blank image run in eval
    mode; the base's train/eval modes are restored and no BatchNorm statistic changes."""
    modes = {m: m.training for m in base.modules()}
    try:
        base.eval()
        with torch.no_grad():
            return Prefix(base, k)(torch.zeros(1, 3, image_size, image_size)).numel() * 2
    finally:
        for module, training in modes.items():
            module.training = training


class BoundaryNet(nn.Module):
    """Stages[k:] of the base, its tail, pooling and the head: trains on cached boundary activations.

    It holds the same `features` and `head` modules as the `TransferNet` it came from (same state-dict keys),
    so checkpoints of either load into the other.
    """

    def __init__(self, features: nn.Module, head: nn.Module, k: int) -> None:
        super().__init__()
        self.features, self.head, self.k = features, head, k
        self._stages, self.family = stages_of(features)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z.float() if z.dtype == torch.bfloat16 and not torch.is_autocast_enabled() else z
        for stage in self._stages[self.k:]:
            x = stage(x)
        if self.family == "efficientnet":
            x = self.features.bn2(self.features.conv_head(x))
        return self.head(self.features.forward_head(x, pre_logits=True))

    def get_classifier(self) -> nn.Module:
        return self.head


