"""The self-contained inference bundle: model.safetensors + labels.json + preprocessing.json.

The safetensors metadata names the architecture, so a bundle folder is all `predict` needs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from .._io import atomic_path, write_json
from .._version import __version__
from ..data.geometry import Preprocessing
from ..data.images import read_labels
from ..errors import DataError, MissingFileError, SettingError
from ..models._registry import check_model_kwargs
from ..models.transfer import HeadConfig
from .folder import BUNDLE_FILES, find_bundle

__all__ = ["Bundle", "save_bundle", "load_bundle", "find_bundle", "BUNDLE_FILES"]



@dataclass
class Bundle:
    """A loaded bundle: the model in eval mode, its class labels and preprocessing."""

    model: nn.Module
    labels: list[str]
    preprocessing: Preprocessing
    metadata: dict[str, Any]


def save_bundle(folder: str | os.PathLike[str], model: nn.Module, model_name: str, labels: list[str],
                preprocessing: Preprocessing, head: HeadConfig | None = None,
                model_kwargs: dict[str, Any] | None = None) -> Path:
    """Writes the bundle files into `folder` (each atomically) and returns the folder.

    Example:
        >>> save_bundle("runs/x", model, "efficientnet_lite0", ["cat", "dog"], pre)  # doctest: +SKIP
    """
    folder = Path(folder)
    arch = getattr(model, "pretrained_cfg", {}).get("architecture", model_name)
    metadata = {
        "format": "transferlab-bundle",
        "format_version": "1",
        "transferlab_version": __version__,
        "model": model_name,
        "architecture": str(arch),
        "num_classes": str(len(labels)),
        "model_kwargs": json.dumps(model_kwargs or {}),
        "head": json.dumps((head or HeadConfig()).to_dict()),
    }
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    write_json(folder / "labels.json", labels)
    write_json(folder / "preprocessing.json", preprocessing.to_dict())
    return folder


def load_bundle(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Bundle:
    """Loads a bundle from a run folder, a bundle folder or its model.safetensors file.

    Example:
        >>> bundle = load_bundle("runs/x")  # doctest: +SKIP
        >>> bundle.labels  # doctest: +SKIP
        ['cats', 'dogs']
    """
    from ..models.transfer import build_classifier

    folder = find_bundle(path)
    for name in BUNDLE_FILES:
        if not (folder / name).is_file():
            raise MissingFileError(f"Bundle '{folder}' lacks {name}; it is incomplete. Re-export or re-train it.")
    weights = folder / "model.safetensors"
    try:
        with safe_open(str(weights), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types for cut or foreign files
        raise DataError(f"'{weights}' cannot be read as safetensors ({str(e)[:120]}): the file is truncated or not "
                        "a model. Copy it again, re-export or re-train.") from None
    if metadata.get("format") != "transferlab-bundle":
        raise SettingError(f"'{weights}' was not written by transferlab (no bundle metadata).")
    labels = read_labels(folder / "labels.json")
    pre = Preprocessing.read(folder / "preprocessing.json")
    try:
        kwargs = check_model_kwargs(json.loads(metadata.get("model_kwargs", "{}")), f"the bundle '{folder}'")
        head = HeadConfig.from_dict(json.loads(metadata.get("head", "{}")))
    except json.JSONDecodeError as e:
        raise DataError(f"'{weights}' has damaged metadata ({e}); re-export or re-train.") from None
    if "model" not in metadata:
        raise DataError(f"'{weights}' does not say which model it holds (no 'model' in its metadata); re-export.")
    broken = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if broken:
        raise DataError(f"'{weights}' holds weights that are not numbers ({broken[0]}: NaN or infinite): the run that "
                        "wrote it diverged. Its answers would be meaningless; train it again with a lower --lr.")
    model = build_classifier(metadata["model"], num_classes=len(labels), weights="none", image_size=pre.image_size,
                             head=head, **kwargs)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        outputs = [v.shape[0] for k, v in state.items() if k.startswith("head.") and k.endswith(".weight")]
        raise DataError(f"The weights in '{weights}' do not fit labels.json ({len(labels)} classes) and model "
                        f"{metadata['model']!r}" + (f": the weights have {outputs[-1]} outputs" if outputs else "")
                        + f". The bundle's files come from different runs; copy the whole bundle again. "
                        f"({str(e).splitlines()[0][:120]})") from None
    model.eval().to(device)
    return Bundle(model, labels, pre, metadata)
