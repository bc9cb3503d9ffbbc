"""Keras Applications, in PyTorch: course notebooks port line by line.

    from transferlab.applications import ResNet50
    base_model = ResNet50(include_top=False, weights="imagenet", input_shape=(240, 240, 3), pooling="avg")
    base_model.trainable = False
    for layer in base_model.layers[143:]:
        layer.trainable = True

Every family of the course's catalog has a function with Keras' name and arguments. With `include_top=True`
it returns the full classifier (a timm model with its 1000-class head, or `classes` outputs); without the
top it returns a `KerasBase`: the feature extractor *without* its classifier, giving the feature map
(`pooling=None`, channels first as PyTorch does) or the pooled vector (`'avg'`, `'max'`), with Keras'
`trainable`, `layers`, `trainable_weights` / `non_trainable_weights` (BatchNormalization's moving statistics
count as non-trainable weights, as in Keras), `count_params()`, `summary()` and `output_shape` (Keras'
channels-last order). Keras' own counts for each family (tools/keras_tables.py, from Keras 3) are in
`keras_tables.json`; `summary()` says in one line where the PyTorch architecture differs from Keras'.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import SettingError
from . import create_model
from .catalog import CATALOG
from .keras_layers import keras_tables
from .transfer import Base

__all__ = ["KerasBase", "KerasLayer", "application", "preprocess_input"]


class KerasLayer:
    """One layer of Keras' list (its index, name and class), switching its PyTorch counterpart's weights.

    Layers without weights (activations, padding, pooling, additions) have no counterpart: `trainable` is then
    a flag only, as in Keras, where it changes nothing either.
    """

    def __init__(self, index: int, name: str, kind: str, counterparts: list[Any]) -> None:
        self.index, self.name, self.kind, self.counterparts = index, name, kind, list(counterparts)
        self._flag = True

    @property
    def counterpart(self) -> Any:
        """The (first) PyTorch layer this one corresponds to, or None."""
        return self.counterparts[0] if self.counterparts else None

    @property
    def trainable(self) -> bool:
        return all(c.trainable for c in self.counterparts) if self.counterparts else self._flag

    @trainable.setter
    def trainable(self, value: bool) -> None:
        for c in self.counterparts:
            c.trainable = value
        self._flag = bool(value)

    def __repr__(self) -> str:
        twin = f" -> {', '.join(c.name for c in self.counterparts)}" if self.counterparts else ""
        return f"<KerasLayer {self.index}: {self.name} ({self.kind}){twin}, trainable={self.trainable}>"


class KerasBase(nn.Module):
    """A pretrained base without its classifier, with Keras' `trainable`, `layers` and `output_shape`.

    Example:
        >>> from transferlab.applications import EfficientNetB0
        >>> base = EfficientNetB0(include_top=False, weights=None, pooling="avg")
        >>> base(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 1280])
    """

    def __init__(self, model: nn.Module, pooling: str | None, input_shape: tuple[int, int, int],
                 keras_name: str | None = None) -> None:
        super().__init__()
        if pooling not in (None, "avg", "max"):
            raise SettingError(f"pooling must be None, 'avg' or 'max' (as in Keras); got {pooling!r}.")
        model.reset_classifier(0)  # include_top=False: no classifier weights (timm's uniform surface)
        if any(True for _ in getattr(getattr(model, "pre_logits", None), "parameters", lambda: [])()):
            model.pre_logits = nn.Identity()  # VGG's fc6/fc7 (timm's ConvMlp) are Keras' top too
        if type(model).__name__ == "MobileNetV3":  # its last 1x1 conv sits in timm's head, and in Keras' top
            model.conv_head = nn.Identity()
        self.model = model
        self.keras_name = keras_name
        self._keras_layers: list | None = None
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
        """Keras' output shape: None for the batch, channels last, e.g. (None, 7, 7, 2048) or (None, 2048)."""
        h, w, c = self.input_shape
        device = next(self.model.parameters()).device
        with torch.no_grad():
            was = self.training
            self.eval()
            out = self(torch.zeros(1, c, h, w, device=device))
            self.train(was)
        shape = tuple(out.shape[1:])
        return (None, *shape[1:], shape[0]) if len(shape) == 3 else (None, *shape)

    @property
    def layers(self) -> list:
        """Keras' own layer list for the course's Keras families (index 143 of ResNet50 is `conv5_block1_1_conv`,
        as in the course), each layer switching its PyTorch counterpart's `trainable`; for other models, the
        PyTorch layers (`transferlab layers MODEL`)."""
        if self._keras_layers is None:
            self._keras_layers = self._build_keras_layers()
        return self._keras_layers or self._base.layers

    def _build_keras_layers(self) -> list:
        from .keras_layers import align

        table = keras_tables().get(self.keras_name or "")
        if not table:
            return []
        mapping = align(self.model, table["layers"])
        weighted = sum(1 for la in table["layers"] if la["weights"])
        if len(mapping) < 0.95 * weighted:  # the PyTorch port is built differently: no faithful Keras indices
            return []
        ours = {layer.index: layer for layer in self._base.layers}
        return [KerasLayer(la["index"], la["name"], la["class"], [ours[i] for i in mapping.get(la["index"], [])])
                for la in table["layers"]]

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
    def non_trainable_weights(self) -> list[torch.Tensor]:
        """Frozen parameters and BatchNormalization's moving mean and variance (Keras counts both)."""
        return [p for p in self.parameters() if not p.requires_grad] + _moving_statistics(self)

    @property
    def weights(self) -> list[torch.Tensor]:
        return self.trainable_weights + self.non_trainable_weights

    def count_params(self) -> int:
        """Every weight, as Keras' `count_params()`: parameters plus BatchNormalization's moving statistics."""
        return sum(w.numel() for w in self.weights)

    def keras_counts(self) -> dict[str, int] | None:
        """Keras 3's own counts for this family without the top (keras_tables.json), or None."""
        table = keras_tables().get(self.keras_name or "")
        if not table:
            return None
        return {k: table[k] for k in ("count_params", "trainable", "non_trainable")}

    def summary(self, print_fn: Callable[[str], None] | None = None) -> str:
        """Keras' `model.summary()`: one row per layer with weights (name, type, output shape, weights), then
        total, trainable and non-trainable counts (Keras' way), and one line on how Keras' own model differs.

        Example:
            >>> from transferlab.applications import ResNet50
            >>> print(ResNet50(include_top=False, weights=None).summary())  # doctest: +SKIP
        """
        rows = [(layer.name, type(layer.module).__name__,
                 sum(t.numel() for t in [*layer.module.parameters(recurse=False), *_moving_statistics(layer.module,
                                                                                                     False)]))
                for layer in self._base.layers]
        rows = [r for r in rows if r[2]]
        width = max(len(r[0]) for r in rows) if rows else 10
        lines = [f'Model: "{self.keras_name or type(self.model).__name__}" (include_top=False, pooling='
                 f"{self.pooling!r})", f"{'Layer (type)':<{width + 20}} {'Param #':>12}", "=" * (width + 33)]
        lines += [f"{name + ' (' + kind + ')':<{width + 20}} {count:>12,}" for name, kind, count in rows]
        total, trainable = self.count_params(), sum(w.numel() for w in self.trainable_weights)
        lines += ["=" * (width + 33), f"Output shape: {self.output_shape}", f"Total params: {total:,}",
                  f"Trainable params: {trainable:,}", f"Non-trainable params: {total - trainable:,}"]
        keras = self.keras_counts()
        if keras and keras["count_params"] != total:
            lines.append(f"Keras' {self.keras_name} counts {keras['count_params']:,} "
                         f"({keras['trainable']:,} trainable): {_difference(self.keras_name, keras, total)}")
        text = "\n".join(lines)
        (print_fn or print)(text)
        return text

    def compile(self, *args: Any, **kwargs: Any) -> None:
        """Keras' `model.compile(optimizer, loss, metrics)` has no counterpart here (and must not silently mean
        PyTorch's `torch.compile`)."""
        raise SettingError(
            "Keras' model.compile(optimizer=..., loss=..., metrics=...) is not how transferlab trains: put the "
            "settings in transferlab.TrainConfig(optimizer='adam', lr=1e-4, ...) and call transferlab.fit(...) (or "
            "`transferlab train`). To compile the network with PyTorch's compiler, call torch.compile(model)."
        )


def _moving_statistics(module: nn.Module, recurse: bool = True) -> list[torch.Tensor]:
    """BatchNorm running mean and variance (Keras' non-trainable moving statistics; not the step counter)."""
    return [b for n, b in module.named_buffers(recurse=recurse) if n.rsplit(".", 1)[-1] in ("running_mean",
                                                                                           "running_var")]


def _difference(keras_name: str | None, keras: dict[str, int], ours: int) -> str:
    diff = keras["count_params"] - ours
    if keras_name and keras_name.startswith("ResNet") and not keras_name.endswith("V2"):
        return (f"its convolutions have biases ({diff:+,} weights), which PyTorch's ResNet leaves out before "
                "BatchNormalization; the layers correspond one to one.")
    return f"{diff:+,} weights in Keras' architecture (the PyTorch port differs in details; see docs/finetuning.md)."


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
    entry = next((e for e in CATALOG if e.name == name or e.keras == name), None)
    return KerasBase(model, pooling, (size, size, 3), keras_name=entry.keras if entry and entry.keras else None)


def preprocess_input(x: Any, model: str = "efficientnet_lite0") -> torch.Tensor:
    """Keras' `preprocess_input` for `model`: images in 0..255, channels last ([H, W, 3] or [N, H, W, 3], numpy or
    tensor, as Keras takes them), to the model's input: float32 [N, 3, H, W] scaled to [0, 1] and normalised with
    the mean and std of *this model's* pretrained weights (its timm config; Keras' own per-family modes, such as
    ResNet's BGR 'caffe' mode, belong to Keras' weights). No resizing, as in Keras.

    Example:
        >>> from transferlab.applications import EfficientNetLite0
        >>> EfficientNetLite0.preprocess_input(np.full((1, 2, 2, 3), 255.0))[0, :, 0, 0]
        tensor([1., 1., 1.])
    """
    with torch.device("meta"):
        cfg = create_model(model, weights="none").pretrained_cfg
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or x.shape[-1] != 3:
        raise SettingError(f"preprocess_input takes images channels last, [H, W, 3] or [N, H, W, 3] (Keras' order); "
                           f"got shape {tuple(x.shape)}.")
    mean = torch.tensor(cfg["mean"], dtype=torch.float32)
    std = torch.tensor(cfg["std"], dtype=torch.float32)
    return ((x / 255.0 - mean) / std).permute(0, 3, 1, 2).contiguous()


def _make(entry_name: str, keras_name: str) -> Callable[..., nn.Module]:
    def constructor(include_top: bool = True, weights: str | os.PathLike[str] | None = "imagenet",
                    input_shape: tuple[int, int, int] | None = None, pooling: str | None = None,
                    classes: int = 1000) -> nn.Module:
        return application(entry_name, include_top, weights, input_shape, pooling, classes)

    constructor.__name__ = constructor.__qualname__ = keras_name
    constructor.preprocess_input = functools.partial(preprocess_input, model=entry_name)  # type: ignore[attr-defined]
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
