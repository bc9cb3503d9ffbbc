"""Fine-tuning strategies: which parameters train, and BatchNorm kept in inference mode where frozen.

A strategy is a string (`"freeze"`, `"full"`); each maps to a function in `STRATEGIES` that sets
`requires_grad` on a timm model through its uniform surface (`get_classifier`), never by layer names.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ._errors import check_choice

__all__ = ["STRATEGIES", "apply_strategy", "keep_frozen_batchnorm_in_eval", "count_parameters"]


def _freeze(model: nn.Module) -> None:
    """The base is frozen; only the new classifier head trains (Keras `base_model.trainable = False`)."""
    model.requires_grad_(False)
    model.get_classifier().requires_grad_(True)


def _full(model: nn.Module) -> None:
    """Everything trains."""
    model.requires_grad_(True)


STRATEGIES: dict[str, Callable[[nn.Module], None]] = {
    "freeze": _freeze,
    "full": _full,
}


def apply_strategy(model: nn.Module, strategy: str) -> nn.Module:
    """Sets which parameters of `model` train under `strategy` and returns the model.

    Example:
        >>> from transferlab.models import create_model
        >>> model = apply_strategy(create_model("efficientnet_lite0", num_classes=2), "freeze")
        >>> count_parameters(model)["trainable"]
        2562
    """
    check_choice("strategy", strategy, STRATEGIES, where="train")
    STRATEGIES[strategy](model)
    keep_frozen_batchnorm_in_eval(model)
    return model


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm)


def keep_frozen_batchnorm_in_eval(model: nn.Module) -> None:
    """Puts every BatchNorm layer whose parameters are all frozen in inference mode.

    As in Keras, a frozen BatchNorm uses and keeps its moving mean and variance; call this after every
    `model.train()` (the training module does).
    """
    for module in model.modules():
        if _is_norm(module):
            params = list(module.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                module.eval()


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Total, trainable and non-trainable parameter counts, as in Keras' `model.summary()`."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable, "non_trainable": total - trainable}
