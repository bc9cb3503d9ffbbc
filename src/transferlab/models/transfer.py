"""The transfer-learning model: a pretrained base (feature extractor) and a new classifier head.

It speaks Keras' idiom as well as PyTorch's::

    model = build_classifier("resnet50", num_classes=2, weights="imagenet")
    model.base.trainable = False                 # freeze the feature extractor
    for layer in model.base.layers[143:]:        # unfreeze from a layer, as in the course
        layer.trainable = True
    len(model.trainable_weights)                 # number of trainable weight tensors
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from .._settings import check_settings
from ..errors import SettingError
from ._registry import create_model

__all__ = ["HeadConfig", "TransferNet", "Layer", "Base", "build_classifier", "base_layers"]


@dataclass(frozen=True)
class HeadConfig:
    """The new classifier on top of the pooled features.

    Attributes:
        hidden: Units of hidden Dense(relu) layers, e.g. (256,) for the course's `Dense(256, activation='relu')`.
        dropout: Dropout rate before each Dense layer (the course's `Dropout(.5)`), 0 for none.
        batch_norm: BatchNormalization after each hidden layer.

    Example:
        >>> [type(layer).__name__ for layer in HeadConfig(hidden=(256,), dropout=0.5).build(1280, 2)]
        ['Dropout', 'Linear', 'ReLU', 'Dropout', 'Linear']
    """

    hidden: tuple[int, ...] = field(default=(), metadata={"ge": 1, "le": 65536, "example": "[256]"})
    dropout: float = field(default=0.0, metadata={"ge": 0, "lt": 1, "example": "0.5"})
    batch_norm: bool = False

    def __post_init__(self) -> None:
        check_settings(self, "the head")

    def build(self, in_features: int, outputs: int) -> nn.Sequential:
        layers: list[nn.Module] = []
        width = in_features
        for units in self.hidden:
            if self.dropout:
                layers.append(nn.Dropout(self.dropout))
            layers += [nn.Linear(width, units), nn.ReLU(inplace=True)]
            if self.batch_norm:
                layers.append(nn.BatchNorm1d(units))
            width = units
        if self.dropout:
            layers.append(nn.Dropout(self.dropout))
        layers.append(nn.Linear(width, outputs))
        return nn.Sequential(*layers)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> HeadConfig:
        data = dict(data or {})
        return cls(tuple(int(h) for h in data.get("hidden", ())), float(data.get("dropout", 0.0)),
                   bool(data.get("batch_norm", False)))


class Layer:
    """One layer of the base, with Keras' `trainable` switch (its own weights only, like a Keras layer)."""

    def __init__(self, index: int, name: str, module: nn.Module) -> None:
        self.index, self.name, self.module = index, name, module

    @property
    def weights(self) -> list[nn.Parameter]:
        return list(self.module.parameters(recurse=False))

    @property
    def trainable(self) -> bool:
        weights = self.weights
        return bool(weights) and all(p.requires_grad for p in weights)

    @trainable.setter
    def trainable(self, value: bool) -> None:
        for p in self.weights:
            p.requires_grad_(bool(value))

    def __repr__(self) -> str:
        return f"<Layer {self.index}: {self.name} ({type(self.module).__name__}), trainable={self.trainable}>"


def _is_layer(module: nn.Module) -> bool:
    if isinstance(module, nn.Identity):
        return False
    has_own = any(True for _ in module.parameters(recurse=False)) or any(True for _ in module.buffers(recurse=False))
    return has_own or not any(True for _ in module.children())


def base_layers(base: nn.Module) -> list[Layer]:
    """The layers of a base network, in definition order: modules with weights of their own, or leaf modules.

    This list is what `transferlab layers` prints and what `unfreeze-from=K` indexes, like Keras'
    `base_model.layers`.
    """
    named = [(n, m) for n, m in base.named_modules() if n and _is_layer(m)]
    return [Layer(i, n, m) for i, (n, m) in enumerate(named)]


class Base:
    """Keras-style view of the feature extractor: `.trainable`, `.layers`, `.trainable_weights`."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self._layers: list[Layer] | None = None

    @property
    def layers(self) -> list[Layer]:
        if self._layers is None:
            self._layers = base_layers(self.module)
        return self._layers

    @property
    def trainable(self) -> bool:
        return any(p.requires_grad for p in self.module.parameters())

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self.module.requires_grad_(bool(value))

    @property
    def trainable_weights(self) -> list[nn.Parameter]:
        return [p for p in self.module.parameters() if p.requires_grad]


class TransferNet(nn.Module):
    """A pretrained base without its classifier (`features`) and a new `head`.

    Args:
        features: A timm model whose classifier was removed (`reset_classifier(0)`): it returns pooled features.
        head: The new classifier.
        model_name: Registry name of the base, kept for bundles.

    Example:
        >>> model = build_classifier("efficientnet_lite0", num_classes=2)
        >>> model.base.trainable = False
        >>> len(model.trainable_weights)
        2
    """

    def __init__(self, features: nn.Module, head: nn.Module, model_name: str = "") -> None:
        super().__init__()
        self.features = features
        self.head = head
        self.model_name = model_name
        self.base = Base(features)

    @property
    def pretrained_cfg(self) -> dict[str, Any]:
        return self.features.pretrained_cfg

    @property
    def num_features(self) -> int:
        return int(self.features.num_features if not hasattr(self.features, "head_hidden_size")
                   else self.features.head_hidden_size)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features of the base (what the feature cache stores)."""
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def get_classifier(self) -> nn.Module:
        return self.head

    @property
    def trainable_weights(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    @property
    def non_trainable_weights(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if not p.requires_grad]

    def named_trainable(self) -> Iterator[tuple[str, nn.Parameter]]:
        return ((n, p) for n, p in self.named_parameters() if p.requires_grad)


def _feature_width(features: nn.Module, image_size: int) -> int:
    width = getattr(features, "head_hidden_size", None) or getattr(features, "num_features", None)
    if width:
        return int(width)
    with torch.no_grad():
        return int(features.eval()(torch.zeros(1, 3, image_size, image_size)).shape[-1])


def build_classifier(name: str, num_classes: int, weights: str | os.PathLike[str] | None = None,
                     image_size: int | None = None, head: HeadConfig | None = None,
                     **model_kwargs: Any) -> TransferNet:
    """Builds base + new head for `num_classes` (one sigmoid output for the course CNN on 2 classes).

    Args:
        name: Registered model or timm architecture.
        num_classes: Number of classes (at least 2).
        weights: 'imagenet', 'none' or a state-dict file (see `create_model`).
        image_size: Input size for size-dependent architectures.
        head: Head options; default a single Linear layer.
        **model_kwargs: Passed to the architecture.

    Example:
        >>> model = build_classifier("course_cnn", num_classes=2, weights="none")
        >>> sum(p.numel() for p in model.parameters())
        3453121
    """
    if num_classes < 2:
        raise SettingError(f"A classifier needs at least 2 classes; got num_classes={num_classes}.")
    features = create_model(name, num_classes=None, weights=weights, image_size=image_size, **model_kwargs)
    features.reset_classifier(0)
    size = image_size or features.pretrained_cfg["input_size"][-1]
    width = _feature_width(features, size)
    outputs = 1 if (num_classes == 2 and features.pretrained_cfg.get("architecture") == "course_cnn") else num_classes
    return TransferNet(features, (head or HeadConfig()).build(width, outputs), model_name=name)


def summarize_layers(model: TransferNet | nn.Module, image_size: int) -> list[dict[str, Any]]:
    """Rows of Keras' `model.summary()` for the base: index, name, type, output shape, parameters, trainable."""
    base = model.features if isinstance(model, TransferNet) else model
    layers = base_layers(base)
    shapes: dict[int, Any] = {}

    def hook_for(index: int) -> Any:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if index not in shapes:
                shapes[index] = tuple(output.shape[1:]) if torch.is_tensor(output) else None
        return hook

    hooks = [layer.module.register_forward_hook(hook_for(layer.index)) for layer in layers]
    try:
        with torch.no_grad():
            was = base.training
            base.eval()(torch.zeros(1, 3, image_size, image_size))
            base.train(was)
    finally:
        for h in hooks:
            h.remove()
    return [{"index": lay.index, "name": lay.name, "type": type(lay.module).__name__,
             "output_shape": list(shapes[lay.index]) if shapes.get(lay.index) else None,
             "parameters": sum(p.numel() for p in lay.weights),
             "trainable": lay.trainable if lay.weights else None} for lay in layers]


