"""Keras layer indices as the course means them, on the PyTorch models.

`base_model.layers[143:]` in Keras' ResNet50 starts at `conv5_block1_1_conv`, the first layer of the last
stage; the PyTorch model lists its modules in another order and granularity. This module aligns the two: the
layers with weights of Keras' model (from `keras_tables.json`, made from Keras 3 by tools/keras_tables.py) are
matched in order to the base's layers with weights by their size (a convolution or dense layer: its kernel,
with or without Keras' bias; batch normalisation: its four per-channel vectors, or three without a scale),
allowing the small local
reorderings of the two implementations (Keras builds ResNet's shortcut convolution between the block's second
and third). `keras_index_to_layer` then turns Keras' index N into the index of our first layer that is the
counterpart of a Keras layer at or after N.

Example:
    >>> from transferlab.models import build_classifier
    >>> model = build_classifier("resnet50", num_classes=2, weights="none")
    >>> base_layers(model.features)[keras_index_to_layer(model.features, "ResNet50", 143)].name
    'layer4.0.conv1'
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import SettingError
from .transfer import base_layers

__all__ = ["keras_index_to_layer", "keras_layers_from", "align", "keras_family", "keras_tables"]

_WINDOW = 6  # how far ahead a match is looked for (local reorderings of the two builds)


def keras_family(base: nn.Module) -> str | None:
    """The Keras Applications name of a catalog model's base (`ResNet50`), from its architecture, or None."""
    from .catalog import CATALOG

    arch = str(getattr(base, "pretrained_cfg", {}).get("architecture", ""))
    return next((e.keras for e in CATALOG if e.keras and e.architecture == arch), None)


def _our_size(module: nn.Module) -> tuple[str, int, int]:
    """(kind, weights as Keras would count them without a bias, output channels)."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return "bn", 4 * module.num_features, module.num_features
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        out = module.out_channels if isinstance(module, nn.Conv2d) else module.out_features
        return "weights", module.weight.numel(), out
    own = sum(p.numel() for p in module.parameters(recurse=False))
    return "other", own, 0


def _keras_kind(cls: str) -> str:
    return "bn" if cls == "BatchNormalization" else "weights" if cls in (
        "Conv2D", "Dense", "DepthwiseConv2D", "SeparableConv2D", "Conv1D") else "other"


def align(base: nn.Module, keras_layers: list[dict[str, Any]]) -> dict[int, list[int]]:
    """{Keras layer index: its counterparts' indices in `base_layers(base)`} for the Keras layers with weights
    that have a counterpart (same kind and size: a Keras bias may be the only difference; a Keras
    SeparableConv2D is PyTorch's depthwise + pointwise pair).

    Keras lists a functional model's layers by depth, so parallel branches (Inception) interleave; when its layers
    carry Keras' automatic names (`conv2d_12`, `batch_normalization_12`), their numbers give the order they were
    built in, branch by branch as in PyTorch, and that order is matched instead.
    """
    mapping = _align(base, keras_layers)
    weighted = [la for la in keras_layers if la["weights"]]
    if len(mapping) < 0.95 * len(weighted):
        second = _align(base, _by_creation(weighted))
        if len(second) > len(mapping):
            return second
    return mapping


def _by_creation(layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each run of auto-named layers in build order; named layers (`block35_1_conv`) stay where they are."""
    out: list[dict[str, Any]] = []
    run: list[dict[str, Any]] = []
    for layer in [*layers, None]:
        key = _creation_key(layer) if layer is not None else None
        if key is not None:
            run.append(layer)
            continue
        out += sorted(run, key=_creation_key)  # type: ignore[arg-type]
        run = []
        if layer is not None:
            out.append(layer)
    return out


def _creation_key(layer: dict[str, Any]) -> tuple[int, int] | None:
    """(build number, conv before its batch norm) of a Keras auto-named layer, else None."""
    match = re.fullmatch(r"(conv2d|batch_normalization)(?:_(\d+))?", layer["name"])
    if not match:
        return None
    return int(match.group(2) or 0), 0 if match.group(1) == "conv2d" else 1


def _align(base: nn.Module, keras_layers: list[dict[str, Any]]) -> dict[int, list[int]]:
    ours = [(layer.index, *_our_size(layer.module)) for layer in base_layers(base)
            if any(True for _ in layer.module.parameters(recurse=False))]
    used: set[int] = set()
    mapping: dict[int, int] = {}
    start = 0
    for layer in keras_layers:
        if not layer["weights"]:
            continue
        kind = _keras_kind(layer["class"])
        if layer["class"] == "SeparableConv2D":  # one Keras layer = PyTorch's depthwise + pointwise pair
            pair = _separable_pair(ours, used, start, layer["weights"])
            if pair is not None:
                mapping[layer["index"]] = [ours[pair][0], ours[pair + 1][0]]
                used.update((pair, pair + 1))
                while start in used:
                    start += 1
                continue
        for j in range(start, min(len(ours), start + _WINDOW)):
            index, our_kind, size, out = ours[j]
            if j in used or our_kind != kind:
                continue
            sizes = (size, size * 3 // 4) if kind == "bn" else (size, size + out)  # Keras' BN without gamma
            if layer["weights"] in sizes:
                mapping[layer["index"]] = [index]
                used.add(j)
                while start in used:
                    start += 1
                break
    return mapping


def _separable_pair(ours: list[tuple], used: set[int], start: int, weights: int) -> int | None:
    for j in range(start, min(len(ours) - 1, start + _WINDOW)):
        (_, kind_a, size_a, _), (_, kind_b, size_b, out_b) = ours[j], ours[j + 1]
        if j in used or j + 1 in used or kind_a != "weights" or kind_b != "weights":
            continue
        if weights in (size_a + size_b, size_a + size_b + out_b):
            return j
    return None


@functools.lru_cache(maxsize=1)
def keras_tables() -> dict[str, Any]:
    """Keras 3's counts and layer lists per family without the top (tools/keras_tables.py made the file)."""
    path = Path(__file__).with_name("keras_tables.json")
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


@functools.lru_cache(maxsize=32)
def _table(keras_name: str) -> list[dict[str, Any]]:
    table = keras_tables().get(keras_name)
    if not table:
        raise SettingError(f"No Keras layer table for {keras_name!r}: keras:N indices work for the catalog's Keras "
                           "families (`transferlab models`). Use unfreeze-from=NAME with a layer name from "
                           "`transferlab layers MODEL` instead.")
    return table["layers"]


def keras_index_to_layer(base: nn.Module, keras_name: str | None, index: int) -> int:
    """Our first layer among the counterparts of Keras' `layers[index:]`, for the base of Keras family
    `keras_name` (see `keras_layers_from` for the exact set).

    Raises:
        SettingError: The model is no Keras family, the index is out of range, or the two models do not align.
    """
    return min(keras_layers_from(base, keras_name, index))


def keras_layers_from(base: nn.Module, keras_name: str | None, index: int) -> set[int]:
    """Our layer indices that are the counterparts of Keras' `layers[index:]`: exactly what Keras would train
    after `for layer in base_model.layers[index:]: layer.trainable = True` (for Inception, whose list is
    ordered by depth, not a suffix of ours).

    Raises:
        SettingError: As `keras_index_to_layer`.
    """
    if not keras_name:
        raise SettingError("keras:N layer indices need a model of the course's Keras families (ResNet50, VGG16, "
                           "MobileNetV2, ... see `transferlab models`); this model has no Keras counterpart. Use "
                           "unfreeze-from=NAME or an index from `transferlab layers MODEL`.")
    layers = _table(keras_name)
    if not 0 <= index < len(layers):
        raise SettingError(f"Keras' {keras_name} (include_top=False) has {len(layers)} layers, 0 to "
                           f"{len(layers) - 1}; got keras:{index}.")
    mapping = align(base, layers)
    weighted = [la["index"] for la in layers if la["weights"]]
    if len(mapping) < len(weighted) * 0.95:
        raise SettingError(f"The PyTorch {keras_name} differs too much from Keras' to map Keras layer indices "
                           f"({len(mapping)} of {len(weighted)} layers with weights matched). Use unfreeze-from=NAME "
                           "with a name from `transferlab layers MODEL`.")
    after = {i for k, ours in mapping.items() if k >= index for i in ours}
    if not after:
        raise SettingError(f"Keras' {keras_name} has no layer with weights at or after index {index}: nothing would "
                           "train but the head. Use 'freeze' for that.")
    return after
