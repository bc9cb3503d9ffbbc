"""The Keras model of the facade: a pretrained network (with or without its classifier) with Keras' `layers`,
`get_layer`, `trainable`, `count_params`, `summary` and `predict` (see `transferlab.applications`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import SettingError
from ..models.keras_layers import keras_tables
from ..models.transfer import Base

__all__ = ["KerasModel", "KerasBase", "KerasLayer", "normalise"]


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


class KerasModel(nn.Module):
    """A Keras Applications model: the pretrained network with Keras' `trainable`, `layers`, `get_layer`,
    `count_params`, `summary` and `predict`, with its classifier (`include_top=True`) or without it (a base).

    Calling it (`model(x)`) runs PyTorch's forward on a [N, 3, H, W] batch: the logits of the top, or the base's
    features (the feature map, or with `pooling` the pooled vector). `predict` is Keras' `model.predict`: it takes
    images (files, PIL images, or arrays [N, H, W, 3] in 0..255 as Keras does) and returns numpy: the class
    probabilities (softmax, as Keras' top) or the features.

    Example:
        >>> from transferlab.applications import EfficientNetB0
        >>> base = EfficientNetB0(include_top=False, weights=None, pooling="avg")
        >>> base(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 1280])
    """

    def __init__(self, model: nn.Module, pooling: str | None, input_shape: tuple[int, int, int],
                 keras_name: str | None = None, include_top: bool = False, name: str = "") -> None:
        super().__init__()
        if pooling not in (None, "avg", "max"):
            raise SettingError(f"pooling must be None, 'avg' or 'max' (as in Keras); got {pooling!r}.")
        if not include_top:
            model.reset_classifier(0)  # include_top=False: no classifier weights (timm's uniform surface)
            if any(True for _ in getattr(getattr(model, "pre_logits", None), "parameters", lambda: [])()):
                model.pre_logits = nn.Identity()  # VGG's fc6/fc7 (timm's ConvMlp) are Keras' top too
            if type(model).__name__ == "MobileNetV3":  # its last 1x1 conv sits in timm's head, and in Keras' top
                model.conv_head = nn.Identity()
        self.model = model
        self.keras_name = keras_name
        self.include_top = include_top
        self.name = name or keras_name or type(model).__name__
        self._keras_layers: list | None = None
        self.pooling = pooling
        self.input_shape = input_shape
        self._base = Base(model)

    @property
    def pretrained_cfg(self) -> dict[str, Any]:
        return self.model.pretrained_cfg

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.include_top:
            return self.model(x)
        x = self.model.forward_features(x)
        if self.pooling is None or x.dim() != 4:
            return x
        return x.mean(dim=(2, 3)) if self.pooling == "avg" else x.amax(dim=(2, 3))

    @property
    def output_shape(self) -> tuple[int | None, ...]:
        """Keras' output shape: None for the batch, channels last, e.g. (None, 7, 7, 2048) or (None, 2048)."""
        out = self._probe(lambda: None)
        return _keras_shape(tuple(out.shape))

    def _probe(self, before: Callable[[], None]) -> torch.Tensor:
        """One forward pass of zeros at the input size, in eval mode (for shapes)."""
        h, w, c = self.input_shape
        device = next(self.model.parameters()).device
        with torch.no_grad():
            was = self.training
            self.eval()
            before()
            out = self(torch.zeros(1, c, h, w, device=device))
            self.train(was)
        return out

    @property
    def layers(self) -> list:
        """Keras' own layer list for the course's Keras families (index 143 of ResNet50 is `conv5_block1_1_conv`,
        as in the course), each layer switching its PyTorch counterpart's `trainable`, followed with the top by
        Keras' top layers (`avg_pool`, `predictions`); for other models, the PyTorch layers (`transferlab layers
        MODEL`)."""
        if self._keras_layers is None:
            self._keras_layers = self._build_keras_layers()
        return self._keras_layers or self._base.layers

    def _build_keras_layers(self) -> list:
        from ..models.keras_layers import align

        table = keras_tables().get(self.keras_name or "")
        if not table:
            return []
        mapping = align(self.model, table["layers"])
        weighted = sum(1 for la in table["layers"] if la["weights"])
        if len(mapping) < 0.95 * weighted:  # the PyTorch port is built differently: no faithful Keras indices
            return []
        ours = {layer.index: layer for layer in self._base.layers}
        layers = [KerasLayer(la["index"], la["name"], la["class"], [ours[i] for i in mapping.get(la["index"], [])])
                  for la in table["layers"]]
        if self.include_top:  # Keras' top: a pooling layer, then the Dense layers the base table does not have
            used = {i for indices in mapping.values() for i in indices}
            rest = [layer for layer in self._base.layers if layer.index not in used and layer.weights]
            n = len(layers)
            if not self.keras_name or not self.keras_name.startswith("VGG"):
                layers.append(KerasLayer(n, "avg_pool", "GlobalAveragePooling2D", []))
            else:
                layers.append(KerasLayer(n, "flatten", "Flatten", []))
            for i, layer in enumerate(rest):
                name = "predictions" if i == len(rest) - 1 else f"fc{i + 1}"
                layers.append(KerasLayer(len(layers), name, "Dense", [layer]))
        return layers

    def get_layer(self, name: str | None = None, index: int | None = None) -> Any:
        """Keras' `model.get_layer(name=None, index=None)`: the layer of that name, or at that index of `layers`.

        Raises:
            SettingError: No such layer (the message names close ones).
        """
        layers = self.layers
        if index is not None:
            if not -len(layers) <= int(index) < len(layers):
                raise SettingError(f"get_layer(index={index}): the model has {len(layers)} layers (0 to "
                                   f"{len(layers) - 1}).")
            return layers[int(index)]
        for layer in layers:
            if layer.name == name:
                return layer
        from ..errors import did_you_mean

        raise SettingError(f"No layer named {name!r} in {self.name}." + did_you_mean(str(name), [la.name for la in
                                                                                             layers]))

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
        if not table or self.include_top:
            return None
        return {k: table[k] for k in ("count_params", "trainable", "non_trainable")}

    def summary(self, print_fn: Callable[[str], None] | None = None) -> str:
        """Keras' `model.summary()`: one row per layer, in Keras' names where the family has Keras' table (name and
        type, output shape in Keras' channels-last order, weights), then total, trainable and non-trainable counts
        (Keras' way), and one line on how Keras' own model differs.

        Example:
            >>> from transferlab.applications import ResNet50
            >>> print(ResNet50(include_top=False, weights=None).summary())  # doctest: +SKIP
        """
        layers = self.layers
        shapes = self._layer_shapes(layers)
        rows = []
        for layer in layers:
            modules = [c.module for c in getattr(layer, "counterparts", [layer])]
            weights = sum(t.numel() for m in modules for t in [*m.parameters(recurse=False),
                                                               *_moving_statistics(m, False)])
            shape = shapes.get(id(layer))
            rows.append((f"{layer.name} ({getattr(layer, 'kind', None) or type(layer.module).__name__})",
                         str(shape) if shape else "", weights))
        name_width = max([len(r[0]) for r in rows] + [12])
        shape_width = max([len(r[1]) for r in rows] + [12])
        rule = name_width + shape_width + 16
        top = "include_top=True" if self.include_top else f"include_top=False, pooling={self.pooling!r}"
        lines = [f'Model: "{self.name}" ({top})',
                 f"{'Layer (type)':<{name_width}}  {'Output Shape':<{shape_width}}  {'Param #':>12}", "=" * rule]
        lines += [f"{n:<{name_width}}  {sh:<{shape_width}}  {c:>12,}" for n, sh, c in rows]
        total, trainable = self.count_params(), sum(w.numel() for w in self.trainable_weights)
        lines += ["=" * rule, f"Output shape: {self.output_shape}", f"Total params: {total:,}",
                  f"Trainable params: {trainable:,}", f"Non-trainable params: {total - trainable:,}"]
        keras = self.keras_counts()
        if keras and keras["count_params"] != total:
            lines.append(f"Keras' {self.keras_name} counts {keras['count_params']:,} "
                         f"({keras['trainable']:,} trainable): {_difference(self.keras_name, keras, total)}")
        text = "\n".join(lines)
        (print_fn or print)(text)
        return text

    def _layer_shapes(self, layers: list) -> dict[int, tuple]:
        """{id(layer): Keras' output shape} for the layers with a PyTorch counterpart (one pass of zeros)."""
        found: dict[int, tuple] = {}
        hooks = []
        for layer in layers:
            parts = getattr(layer, "counterparts", [layer])
            if not parts:
                continue

            def hook(module: nn.Module, inputs: Any, output: Any, key: int = id(layer)) -> None:
                if torch.is_tensor(output):
                    found[key] = _keras_shape(tuple(output.shape))

            hooks.append(parts[-1].module.register_forward_hook(hook))
        try:
            self._probe(lambda: None)
        finally:
            for handle in hooks:
                handle.remove()
        return found

    def predict(self, x: Any, batch_size: int = 32, verbose: Any = None) -> np.ndarray:
        """Keras' `model.predict(x)`: class probabilities (with the top; softmax) or features, as numpy.

        Args:
            x: Image files or PIL images (decoded and resized as `transferlab predict` does), an array [N, H, W, 3]
                (or [H, W, 3]) of pixels in 0..255 as Keras takes them (normalised with this model's statistics,
                `preprocess_input`), or a [N, 3, H, W] float tensor already preprocessed.
            batch_size: Images per forward pass.
            verbose: Accepted for Keras' signature; ignored.

        Example:
            >>> from transferlab.applications import EfficientNetLite0
            >>> EfficientNetLite0().predict(np.zeros((1, 224, 224, 3))).shape
            (1, 1000)
        """
        batch = self._inputs(x)
        device = next(self.model.parameters()).device
        outputs = []
        was = self.training
        self.eval()
        with torch.inference_mode():
            for start in range(0, len(batch), max(1, int(batch_size))):
                out = self(batch[start:start + batch_size].to(device)).float()
                outputs.append(torch.softmax(out, -1) if self.include_top else out)
        self.train(was)
        return torch.cat(outputs).cpu().numpy()

    def _inputs(self, x: Any) -> torch.Tensor:
        """The model's input batch [N, 3, H, W] from whatever `predict` was given."""
        from PIL import Image

        items = list(x) if isinstance(x, (list, tuple)) else None
        if items is not None and items and all(isinstance(i, (str, os.PathLike, Image.Image)) for i in items):
            from ..data.geometry import Preprocessing
            from ..data.images import load_rgb
            from ..inference.portable import preprocess

            cfg = self.pretrained_cfg
            size = self.input_shape[0]
            pre = Preprocessing(size, tuple(cfg["mean"]), tuple(cfg["std"]), cfg.get("interpolation", "bicubic")
                                if cfg.get("interpolation") in ("bicubic", "bilinear", "nearest") else "bicubic",
                                float(cfg.get("crop_pct", 1.0)))
            images = [i if isinstance(i, Image.Image) else load_rgb(i, min_size=pre.resize_size) for i in items]
            return torch.from_numpy(np.stack([preprocess(im.convert("RGB"), pre) for im in images]))
        array = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x)
        if array.dim() == 4 and array.shape[1] == 3 and array.shape[-1] != 3:
            return array.float()  # already the model's input (e.g. preprocess_input's output)
        return normalise(array, self.pretrained_cfg)

    def compile(self, *args: Any, **kwargs: Any) -> None:
        """Keras' `model.compile(optimizer, loss, metrics)` has no counterpart here (and must not silently mean
        PyTorch's `torch.compile`)."""
        raise SettingError(
            "Keras' model.compile(optimizer=..., loss=..., metrics=...) is not how transferlab trains: put the "
            "settings in transferlab.TrainConfig(optimizer='adam', lr=1e-4, ...) and call transferlab.fit(...) (or "
            "`transferlab train`). To compile the network with PyTorch's compiler, call torch.compile(model)."
        )


KerasBase = KerasModel  # the name of earlier versions, for `include_top=False`


def _keras_shape(shape: tuple[int, ...]) -> tuple[int | None, ...]:
    """A PyTorch output shape (N, C, H, W) as Keras prints it: (None, H, W, C); vectors (None, C)."""
    rest = shape[1:]
    return (None, *rest[1:], rest[0]) if len(rest) == 3 else (None, *rest)


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


def normalise(x: torch.Tensor, cfg: dict[str, Any]) -> torch.Tensor:
    """Channels-last pixels in 0..255 -> float32 [N, 3, H, W] normalised with a pretrained config's mean and std."""
    x = x.to(torch.float32)
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or x.shape[-1] != 3:
        raise SettingError(f"preprocess_input takes images channels last, [H, W, 3] or [N, H, W, 3] (Keras' order); "
                           f"got shape {tuple(x.shape)}.")
    mean = torch.tensor(cfg["mean"], dtype=torch.float32)
    std = torch.tensor(cfg["std"], dtype=torch.float32)
    return ((x / 255.0 - mean) / std).permute(0, 3, 1, 2).contiguous()
