"""Which engine reads a path: `load_predictor`, the one place that decides. Imports no torch by itself, so a
command that ends up on ONNX Runtime never pays for torch, torchvision and timm (about 4 s of a 4.4 s
`predict` on 2 cores, docs/benchmarks.md).

- An ONNX export folder (`transferlab export RUN`): ONNX Runtime.
- A run or bundle folder with `engine='auto'`: ONNX Runtime when the folder holds a *current* fp32 ONNX export
  (`RUN/export-onnx`, whose report records the SHA-256 of the bundle it was made from and matches the bundle
  now: retraining or resuming makes it stale, and then PyTorch answers) and onnxruntime is installed; else
  PyTorch. The two agree within 1e-4 in probability on the same files (the export checks it and so do the tests).
- `engine='pytorch'` (PyTorch, bf16 where the CPU runs it natively), `'fp32'` (PyTorch, eager float32),
  `'onnx'` (the current ONNX export, or an error that says how to make one).

Example:
    >>> load_predictor("runs/cd/export-onnx").engine_name  # doctest: +SKIP
    'onnxruntime'
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MissingFileError, SettingError, check_choice
from ..runs.folder import BUNDLE_FILES, export_folder_name, find_bundle
from .onnx_reader import OnnxPredictor, is_onnx_export
from .portable import TTA_CHOICES, BasePredictor, tta_problem

if TYPE_CHECKING:
    from ..runs.bundle import Bundle

__all__ = ["ENGINES", "load_predictor", "predict", "bundle_digest", "check_tta", "current_onnx_export"]

ENGINES = ("auto", "pytorch", "fp32", "onnx")
EXPORT_FOLDER = export_folder_name("onnx")  # the run's own fp32 ONNX export, which `auto` may use


def bundle_digest(folder: str | os.PathLike[str]) -> str:
    """SHA-256 over a bundle folder's model.safetensors, labels.json and preprocessing.json (in that order).

    Example:
        >>> bundle_digest("runs/cd")[:12]  # doctest: +SKIP
        '3f2a9c0b81de'
    """
    digest = hashlib.sha256()
    for name in BUNDLE_FILES:
        with open(Path(folder) / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def current_onnx_export(source: str | os.PathLike[str]) -> Path | None:
    """The fp32 ONNX export of a run or bundle folder if it was made from the bundle as it is now, else None."""
    try:
        folder = find_bundle(source)
    except MissingFileError:
        return None
    export = folder / EXPORT_FOLDER
    try:
        report: dict[str, Any] = json.loads((export / "export_report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    passed = isinstance(report.get("parity"), dict) and report["parity"].get("passed") is True
    if report.get("format") != "onnx" or report.get("int8") or not passed or not is_onnx_export(export):
        return None
    try:
        return export if report.get("bundle_sha256") == bundle_digest(folder) else None
    except OSError:
        return None


def load_predictor(source: str | os.PathLike[str] | Bundle, engine: str = "auto",
                   device: str = "cpu") -> BasePredictor:
    """The predictor for `source` (an ONNX export folder, a run or bundle folder, a model.safetensors file or a
    loaded `Bundle`) on `engine` (see the module's docstring for the rules).

    Args:
        source: What to predict with.
        engine: 'auto', 'pytorch', 'fp32' or 'onnx'.
        device: Torch device for the PyTorch engine (ONNX Runtime runs on the CPU).

    Raises:
        SettingError: An unknown engine, or 'onnx' for a run without a current ONNX export.

    Example:
        >>> load_predictor("runs/cd", engine="fp32").engine_name  # doctest: +SKIP
        'pytorch (float32)'
    """
    check_choice("engine", engine, ENGINES, where="predict")
    is_path = isinstance(source, (str, os.PathLike))
    if is_path and is_onnx_export(source):
        return OnnxPredictor(source)
    if is_path and engine in ("auto", "onnx") and str(device) == "cpu":
        export = current_onnx_export(source)
        if export is not None and importlib.util.find_spec("onnxruntime") is not None:
            return OnnxPredictor(export)
    if engine == "onnx":
        raise SettingError(
            f"--engine onnx needs a current ONNX export of '{source}' (made from the model as it is now) and "
            "onnxruntime (pip install 'transferlab[onnx]'); run `transferlab export RUN --format onnx` first, "
            "or pass --engine auto.")
    from .predictor import Predictor

    return Predictor(source, device=device, engine="fp32" if engine == "fp32" else "auto")


def check_tta(tta: str, predictor: BasePredictor, where: str = "predict") -> str:
    """Returns `tta` if `predictor` can use it ('none', 'flip', or 'ten-crop' for a model whose preprocessing
    crops), else raises a SettingError that says what to pass.

    Example:
        >>> check_tta("flip", load_predictor("runs/cd"))  # doctest: +SKIP
        'flip'
    """
    check_choice("tta", tta, TTA_CHOICES, where=where)
    problem = tta_problem(predictor.preprocessing, tta)
    if problem:
        raise SettingError(f"{where}: {problem}")
    return tta


def predict(bundle: str | os.PathLike[str], images: Sequence[str | os.PathLike[str]],
            top_k: int = 3) -> list[dict[str, Any]]:
    """Classifies image files and folders with a trained run, bundle or ONNX export; see `BasePredictor.predict`.

    Example:
        >>> predict("runs/x", ["new_photos/"], top_k=2)  # doctest: +SKIP
    """
    from ..data.sources import list_images

    return load_predictor(bundle).predict(list_images(images), top_k=top_k)
