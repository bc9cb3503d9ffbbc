"""Export a trained model as a fast, self-contained file: ONNX (optionally int8) or TorchScript.

The export folder holds the model file, labels.json, preprocessing.json and export_report.json. Parity with
the PyTorch model is checked on sample inputs (the run's validation images where available, else random
ones): max |Δlogit| and top-1 agreement are saved in the report, and a failed check is an error.
`predict` and `classify` read an ONNX export directly (`inference.onnx_reader.OnnxPredictor`: numpy, Pillow and
onnxruntime, no torch).

Example:
    >>> report = export_model("runs/cd", "onnx")  # doctest: +SKIP
    >>> report["parity"]["top1_agreement"]
    1.0
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import atomic_path, write_json
from ..errors import ParityError, SettingError, check_choice
from ..inference.portable import BasePredictor
from ..inference.predictor import Predictor
from ..runs.bundle import find_bundle, load_bundle
from ..runs.folder import RunFolder

__all__ = ["FORMATS", "OPSET", "export_model", "ParityError"]

FORMATS = ("onnx", "torchscript")
OPSET = 18
# fp32 exports must reproduce the logits; int8 must keep the predictions
FP32_MAX_LOGIT_DIFF = 1e-3
INT8_MIN_TOP1_AGREEMENT = 0.9




def _sample_files(run: Path, count: int = 16) -> list[str]:
    """Up to `count` validation images of the run (from its split.csv) that still exist."""
    return [p for p in RunFolder(run).split_paths("validation") if Path(p).is_file()][:count]


def _sample_inputs(paths: list[str], predictor: Predictor, count: int = 16) -> tuple[torch.Tensor, str]:
    """The parity inputs: the run's validation images through the shared decode + preprocess, else random."""
    tensors = []
    for p in paths:
        try:
            tensors.append(predictor.transform(predictor.decode(p)))
        except Exception:  # noqa: BLE001, S112 - a missing or broken image: use the others
            continue
    if len(tensors) >= 2:
        return torch.stack(tensors), f"{len(tensors)} validation images of the run"
    size = int(predictor.preprocessing["image_size"])
    return torch.randn(count, 3, size, size, generator=torch.Generator().manual_seed(0)), \
        f"{count} random inputs (no validation images found)"


def file_parity(reference: BasePredictor, candidate: BasePredictor, paths: list[str]) -> dict[str, Any]:
    """Both predictors on the same image files, each through its own full path (decode, preprocess, engine):
    max |Δprobability| and top-1 agreement. This is what a user of `predict EXPORT` sees, beyond tensors."""
    p_ref, _, failed_ref = reference.predict_proba(paths)
    p_new, _, failed_new = candidate.predict_proba(paths)
    keep = [i for i in range(len(paths)) if i not in failed_ref and i not in failed_new]
    if not keep:
        return {"files": 0}
    diff = float(np.abs(p_ref[keep] - p_new[keep]).max())
    agree = float((p_ref[keep].argmax(-1) == p_new[keep].argmax(-1)).mean())
    return {"files": len(keep), "max_abs_probability_diff": round(diff, 8), "top1_agreement": round(agree, 4),
            "reference": reference.engine_name, "candidate": candidate.engine_name}


def export_model(run: str | os.PathLike[str], fmt: str = "onnx", out: str | os.PathLike[str] | None = None,
                 int8: bool = False) -> dict[str, Any]:
    """Exports the bundle of `run` into `out` (default `RUN/export-FORMAT[-int8]`) and checks parity.

    Raises:
        ParityError: The exported model differs from the PyTorch model beyond the tolerance.
        ValueError: Bad format, or int8 for TorchScript.
    """
    check_choice("format", fmt, FORMATS, where="export")
    if int8 and fmt != "onnx":
        raise SettingError("--int8 is for ONNX exports (onnxruntime's dynamic quantisation); drop it for torchscript.")
    run = Path(run)
    bundle = load_bundle(run)
    model = bundle.model.eval().float()
    reference_predictor = Predictor(bundle, engine="fp32")
    target = Path(out) if out else (run if run.is_dir() else run.parent) / f"export-{fmt}{'-int8' if int8 else ''}"
    target.mkdir(parents=True, exist_ok=True)
    files = _sample_files(run if run.is_dir() else run.parent)
    x, source = _sample_inputs(files, reference_predictor)
    with torch.inference_mode():
        reference = model(x).float()
    start = time.perf_counter()
    if fmt == "onnx":
        path, outputs, extra = _export_onnx(model, x, target, int8)
    else:
        path, outputs, extra = _export_torchscript(model, x, target)
    seconds = time.perf_counter() - start
    diff = float((outputs - reference).abs().max())
    agreement = float((outputs.argmax(-1) == reference.argmax(-1)).float().mean()) if reference.shape[-1] > 1 \
        else float(((outputs > 0) == (reference > 0)).float().mean())
    parity = {"inputs": source, "max_abs_logit_diff": round(diff, 6), "top1_agreement": round(agreement, 4),
              "tolerance": ({"min_top1_agreement": INT8_MIN_TOP1_AGREEMENT} if int8
                            else {"max_abs_logit_diff": FP32_MAX_LOGIT_DIFF, "min_top1_agreement": 1.0})}
    for name in ("labels.json", "preprocessing.json"):
        shutil.copyfile(bundle_file(run, name), target / name)
    if fmt == "onnx":  # the folder runs anywhere: numpy + Pillow + onnxruntime, no torch, no transferlab
        from ..data import images
        from ..inference import onnx_reader, portable

        for module, name in ((onnx_reader, "predict_onnx.py"), (portable, "tl_portable.py"), (images, "tl_images.py")):
            shutil.copyfile(module.__file__, target / name)
    report = {"format": fmt, "int8": int8, "file": path.name, "size_mb": round(path.stat().st_size / 2**20, 2),
              "export_seconds": round(seconds, 1), "parity": parity, "model": bundle.metadata.get("model"),
              "labels": len(bundle.labels), "dynamic_batch": True, **extra}
    if fmt == "onnx" and files:  # the same files through predict RUN and predict EXPORT, end to end
        from ..inference.onnx_reader import OnnxPredictor

        report["file_parity"] = file_parity(reference_predictor, OnnxPredictor(target), files)
    write_json(target / "export_report.json", report)
    ok = agreement >= INT8_MIN_TOP1_AGREEMENT if int8 else (diff <= FP32_MAX_LOGIT_DIFF and agreement == 1.0)
    if not ok:
        raise ParityError(f"The {fmt}{' int8' if int8 else ''} export does not match the PyTorch model: max |Δlogit| "
                          f"{diff:.4g}, top-1 agreement {agreement:.2%} on {source} (tolerance {parity['tolerance']})."
                          f" Details in {target / 'export_report.json'}; the files are kept for inspection.")
    return {**report, "folder": str(target)}


def bundle_file(run: Path, name: str) -> Path:
    return find_bundle(run) / name


def _export_onnx(model: torch.nn.Module, x: torch.Tensor, target: Path, int8: bool) -> tuple[Path, torch.Tensor,
                                                                                                dict]:
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise SettingError("ONNX export needs onnx and onnxruntime: `pip install transferlab[onnx]`.") from e
    path = target / "model.onnx"
    batch = torch.export.Dim("batch", min=1, max=4096)
    with atomic_path(path) as tmp:
        program = torch.onnx.export(model, (x[:2],), dynamic_shapes={"x": {0: batch}}, input_names=["input"],
                                    output_names=["logits"], opset_version=OPSET, dynamo=True, external_data=False,
                                    verbose=False)
        program.save(str(tmp))
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantized = target / "model.int8.onnx"
        with atomic_path(quantized) as tmp:
            quantize_dynamic(str(path), str(tmp), weight_type=QuantType.QInt8)
        path.unlink()
        path = quantized
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]).float()
    return path, outputs, {"opset": OPSET, "input_name": session.get_inputs()[0].name}


def _export_torchscript(model: torch.nn.Module, x: torch.Tensor, target: Path) -> tuple[Path, torch.Tensor, dict]:
    import warnings

    path = target / "model.torchscript.pt"
    with warnings.catch_warnings():  # TorchScript is deprecated upstream but still what many deployments load
        warnings.simplefilter("ignore", FutureWarning)
        with torch.inference_mode():
            traced = torch.jit.trace(model, x[:2], check_trace=False)
        with atomic_path(path) as tmp:
            torch.jit.save(traced, str(tmp))
        loaded = torch.jit.load(str(path))
    with torch.inference_mode():
        outputs = loaded(x).float()
    return path, outputs, {"torch": str(torch.__version__)}
