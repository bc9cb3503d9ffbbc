"""Fine-tuning strategies: which parameters train, with which learning rate, and frozen BatchNorm.

A strategy is a string:

- `freeze`: the base is frozen (BatchNorm statistics too); only the new head trains.
- `unfreeze-from=K`: base layers K, K+1, ... train; earlier ones stay frozen. K indexes the list
  `transferlab layers MODEL` prints (the course's `base_model.layers[143:]`), or is a module name
  (`layer4`, `blocks.5`): the first layer inside it.
- `unfreeze-last=N`: the last N stages of the base train (timm's `group_matcher`, any architecture).
- `full`: everything trains.
- `two-phase`: `freeze` until early stopping, then unfreeze (all, or from `unfreeze_from`) with a lower rate.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..errors import SettingError, did_you_mean

__all__ = ["Strategy", "parse_strategy", "apply_strategy", "keep_frozen_batchnorm_in_eval", "count_parameters",
           "resolve_layer_index", "parameter_groups", "STRATEGY_NAMES"]

STRATEGY_NAMES = ("freeze", "unfreeze-from=K", "unfreeze-last=N", "full", "two-phase")


@dataclass(frozen=True)
class Strategy:
    """A parsed strategy: `kind` is one of freeze, unfreeze-from, unfreeze-last, full, two-phase."""

    kind: str
    arg: str | None = None

    def __str__(self) -> str:
        return self.kind if self.arg is None else f"{self.kind}={self.arg}"


def _strategy_error(value: str, extra: str = "") -> ValueError:
    listed = ", ".join(repr(s) for s in STRATEGY_NAMES)
    choices = ["freeze", "full", "two-phase", "unfreeze-from=", "unfreeze-last="]
    return SettingError(f"The 'strategy' parameter of train must be one of {listed}. Got {value!r} instead."
                      + extra + did_you_mean(value, choices))


def parse_strategy(value: str | Strategy) -> Strategy:
    """Parses 'freeze', 'full', 'two-phase', 'unfreeze-from=K' or 'unfreeze-last=N'.

    Example:
        >>> parse_strategy("unfreeze-from=143")
        Strategy(kind='unfreeze-from', arg='143')
    """
    if isinstance(value, Strategy):
        return value
    text = str(value).strip()
    kind, _, arg = text.partition("=")
    if kind in ("freeze", "full", "two-phase") and not arg:
        return Strategy(kind)
    if kind == "unfreeze-from" and arg:
        return Strategy(kind, arg)
    if kind == "unfreeze-last" and arg:
        if not arg.isdigit() or int(arg) < 1:
            raise _strategy_error(text, " unfreeze-last needs a positive number of stages, e.g. 'unfreeze-last=2'.")
        return Strategy(kind, arg)
    raise _strategy_error(text)


def _base_and_head(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    if hasattr(model, "features") and hasattr(model, "head"):
        return model.features, model.head
    return model, model.get_classifier()


def resolve_layer_index(model: nn.Module, ref: str | int) -> int:
    """Turns a layer index or a module name into an index of the base's layer list.

    Raises:
        ValueError: The index is out of range or no layer has that name; the message lists some names.
    """
    from ..models.transfer import base_layers

    base, _ = _base_and_head(model)
    layers = base_layers(base)
    text = str(ref)
    if text.startswith("keras:"):  # Keras' own layer index, as in the course's base_model.layers[143:]
        from ..models.keras_layers import keras_family, keras_index_to_layer

        number = text.removeprefix("keras:")
        if not number.isdigit():
            raise SettingError(f"keras:N needs a Keras layer index, e.g. 'unfreeze-from=keras:143'; got {text!r}.")
        return keras_index_to_layer(base, keras_family(base), int(number))
    if text.lstrip("-").isdigit():
        index = int(text)
        if not -len(layers) <= index < len(layers):
            raise SettingError(f"Layer index {index} is out of range: the base has {len(layers)} layers (0 to "
                             f"{len(layers) - 1}). Run `transferlab layers MODEL` to see them.")
        return index % len(layers)
    for layer in layers:
        if layer.name == text or layer.name.startswith(text + "."):
            return layer.index
    tops = sorted({layer.name.split(".")[0] for layer in layers})
    raise SettingError(f"No layer named {text!r} in the base. Top-level modules: {', '.join(tops)}. Run "
                     "`transferlab layers MODEL` for every layer." + did_you_mean(text, [la.name for la in layers]))


def _stage_groups(base: nn.Module) -> list[list[str]]:
    from timm.models import group_parameters

    groups = group_parameters(base, base.group_matcher(coarse=True))
    return [groups[k] for k in sorted(groups)]


def apply_strategy(model: nn.Module, strategy: str | Strategy) -> nn.Module:
    """Sets which parameters of `model` train under `strategy` and returns the model.

    The new head always trains. `two-phase` starts as `freeze`. Frozen BatchNorm layers are put in
    inference mode, as Keras does for `trainable = False`.

    Example:
        >>> from transferlab.models import build_classifier
        >>> model = apply_strategy(build_classifier("efficientnet_lite0", num_classes=2), "freeze")
        >>> count_parameters(model)["trainable"]
        2562
    """
    strategy = parse_strategy(strategy)
    base, head = _base_and_head(model)
    if strategy.kind == "full":
        model.requires_grad_(True)
    elif strategy.kind in ("freeze", "two-phase"):
        base.requires_grad_(False)
    elif strategy.kind == "unfreeze-from":
        from ..models.transfer import base_layers

        layers = base_layers(base)
        if str(strategy.arg).startswith("keras:"):  # exactly the counterparts of Keras' layers[N:]
            from ..models.keras_layers import keras_family, keras_layers_from

            resolve_layer_index(model, strategy.arg)  # the same checks and messages
            chosen = keras_layers_from(base, keras_family(base), int(str(strategy.arg).removeprefix("keras:")))
        else:
            chosen = set(range(resolve_layer_index(model, strategy.arg), len(layers)))
        base.requires_grad_(False)
        for layer in layers:
            if layer.index in chosen:
                layer.trainable = True
    elif strategy.kind == "unfreeze-last":
        groups = _stage_groups(base)
        n = int(strategy.arg)
        if n > len(groups):
            raise SettingError(f"unfreeze-last={n} asks for more stages than the base has ({len(groups)}); use "
                             f"a number up to {len(groups)}, or 'full'.")
        base.requires_grad_(False)
        names = {name for group in groups[-n:] for name in group}
        for name, param in base.named_parameters():
            if name in names:
                param.requires_grad_(True)
    head.requires_grad_(True)
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


def parameter_groups(model: nn.Module, lr: float, weight_decay: float = 0.0, backbone_lr_mult: float = 1.0,
                     layer_decay: float | None = None) -> list[dict]:
    """Optimizer parameter groups: the head at `lr`, the base at `lr * backbone_lr_mult`, and with
    `layer_decay` each earlier base layer at a further factor (timm's `param_groups_layer_decay`).

    Only trainable parameters are included; every group carries its own `lr`.
    """
    base, head = _base_and_head(model)
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
