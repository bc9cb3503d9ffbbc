"""Optimizers and learning-rate schedules (the course's "learning decay"), as Lightning's optimizer config."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import SettingError
from ..runs.history import MONITORS
from .config import TrainConfig
from .strategies import base_and_head

__all__ = ["build_optimizer", "build_scheduler", "parameter_groups"]



def build_optimizer(groups: list[dict[str, Any]], name: str, lr: float) -> torch.optim.Optimizer:
    """The optimizer `name` ('adam', 'adamw', 'sgd' with momentum 0.9, 'rmsprop') over parameter groups.

    Example:
        >>> opt = build_optimizer([{"params": [torch.nn.Parameter(torch.zeros(1))]}], "sgd", 0.1)
        >>> type(opt).__name__, opt.defaults["momentum"]
        ('SGD', 0.9)
    """
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr)
    raise SettingError(f"Unknown optimizer {name!r}: use 'adam', 'adamw', 'sgd' or 'rmsprop'.")


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, epochs: int, total_steps: int) -> Any:
    """Lightning's optimizer config for the course's "learning decay" (`lr_schedule`) with optional warmup."""
    sched = torch.optim.lr_scheduler
    warmup = min(cfg.warmup_epochs, max(0, epochs - 1))
    if cfg.lr_schedule == "onecycle":
        scheduler = sched.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
                                     total_steps=max(1, total_steps),
                                     pct_start=(warmup / epochs) if warmup else 0.3)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
    if cfg.lr_schedule == "plateau":
        scheduler = sched.ReduceLROnPlateau(optimizer, mode=MONITORS[cfg.monitor], factor=cfg.plateau_factor,
                                            patience=cfg.plateau_patience)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": cfg.monitor}}
    main_epochs = max(1, epochs - warmup)
    if cfg.lr_schedule == "step":
        main = sched.StepLR(optimizer, step_size=cfg.decay_steps or max(1, main_epochs // 3),
                            gamma=0.1 if cfg.decay_rate is None else cfg.decay_rate)
    elif cfg.lr_schedule == "exponential":  # Keras' ExponentialDecay, per epoch: rate ** (1 / decay_steps) each
        rate = 0.9 if cfg.decay_rate is None else cfg.decay_rate
        main = sched.ExponentialLR(optimizer, gamma=rate ** (1 / (cfg.decay_steps or 1)))
    elif cfg.lr_schedule == "cosine":
        main = sched.CosineAnnealingLR(optimizer, T_max=main_epochs, eta_min=0.0)
    else:
        main = sched.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if warmup:
        ramp = sched.LinearLR(optimizer, start_factor=0.01, end_factor=1.0, total_iters=warmup)
        main = sched.SequentialLR(optimizer, [ramp, main], milestones=[warmup])
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": main, "interval": "epoch"}}


def parameter_groups(model: nn.Module, lr: float, weight_decay: float = 0.0, backbone_lr_mult: float = 1.0,
                     layer_decay: float | None = None) -> list[dict]:
    """Optimizer parameter groups: the head at `lr`, the base at `lr * backbone_lr_mult`, and with
    `layer_decay` each earlier base layer at a further factor (timm's `param_groups_layer_decay`).

    Only trainable parameters are included; every group carries its own `lr`.
    """
    base, head = base_and_head(model)
    groups: list[dict] = []
    head_params = [p for p in head.parameters() if p.requires_grad]
    if head_params:
        groups.append({"params": head_params, "lr": lr, "weight_decay": weight_decay, "name": "head"})
    base_lr = lr * backbone_lr_mult
    if layer_decay is not None and any(p.requires_grad for p in base.parameters()):
        from timm.optim import param_groups_layer_decay

        for i, group in enumerate(param_groups_layer_decay(base, weight_decay=weight_decay, layer_decay=layer_decay)):
            params = [p for p in group["params"] if p.requires_grad]
            if params:
                groups.append({"params": params, "lr": base_lr * group.get("lr_scale", 1.0),
                               "weight_decay": group.get("weight_decay", weight_decay), "name": f"base-{i}"})
    else:
        base_params = [p for p in base.parameters() if p.requires_grad]
        if base_params:
            groups.append({"params": base_params, "lr": base_lr, "weight_decay": weight_decay, "name": "base"})
    return groups
