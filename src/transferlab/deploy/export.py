"""Export a trained model as a fast, self-contained file: ONNX (optionally int8) or TorchScript.

The export folder holds the model file, labels.json, preprocessing.json and export_report.json, and a marker
listing what the export wrote (`runs.folder.export_folder`): an export replaces only an earlier export's files
and refuses a folder holding anything else. Parity with
the PyTorch model is checked on sample inputs (the run's validation images where available, else random
ones): max |Δlogit| and top-1 agreement are saved in the report, and a failed check is an error.
`predict` and `classify` read an ONNX export directly (`inference.onnx_reader.OnnxPredictor`: numpy, Pillow and
onnxruntime, no torch).

Example:
    >>> report = export_model("runs/cd", "onnx")  # doctest: +SKIP
    >>> report["parity"]["top1_agreement"]  # doctest: +SKIP
    1.0
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import atomic_path, write_json, write_text
from ..errors import ParityError, SettingError, check_choice
from ..inference.loading import bundle_digest
from ..inference.portable import BasePredictor
from ..inference.predictor import Predictor
from ..runs.bundle import find_bundle, load_bundle
from ..runs.folder import RunFolder, export_folder, export_folder_name

__all__ = ["FORMATS", "OPSET", "export_model", "export_hf", "ParityError"]

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
    size = predictor.preprocessing.image_size
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
    if int8 and not (fmt in FILE_FORMATS and FILE_FORMATS[fmt].int8):
        raise SettingError(f"--int8 is for ONNX exports (onnxruntime's dynamic quantisation); drop it for {fmt}.")
    if fmt == "hf":
        return export_hf(run, out)
    run = Path(run)
    bundle = load_bundle(run)
    model = bundle.model.eval().float()
    reference_predictor = Predictor(bundle, engine="fp32")
    with export_folder(_target(run, fmt, int8, out)) as target:
        return _export_file(run, bundle, model, reference_predictor, target, fmt, int8)


def _target(run: Path, fmt: str, int8: bool, out: str | os.PathLike[str] | None) -> Path:
    """The export folder: `out`, or the run's own `export-FORMAT[-int8]` (`runs.folder.export_folder_name`)."""
    return Path(out) if out else (run if run.is_dir() else run.parent) / export_folder_name(fmt, int8)


def _export_file(run: Path, bundle: Any, model: torch.nn.Module, reference_predictor: Predictor, target: Path,
                 fmt: str, int8: bool) -> dict[str, Any]:
    files = _sample_files(run if run.is_dir() else run.parent)
    x, source = _sample_inputs(files, reference_predictor)
    with torch.inference_mode():
        reference = model(x).float()
    start = time.perf_counter()
    kind = FILE_FORMATS[fmt]
    path, outputs, extra = kind.write(model, x, target, int8)
    seconds = time.perf_counter() - start
    diff = float((outputs - reference).abs().max())
    agreement = float((outputs.argmax(-1) == reference.argmax(-1)).float().mean()) if reference.shape[-1] > 1 \
        else float(((outputs > 0) == (reference > 0)).float().mean())
    parity = {"inputs": source, "max_abs_logit_diff": round(diff, 6), "top1_agreement": round(agreement, 4),
              "tolerance": ({"min_top1_agreement": INT8_MIN_TOP1_AGREEMENT} if int8
                            else {"max_abs_logit_diff": FP32_MAX_LOGIT_DIFF, "min_top1_agreement": 1.0})}
    for name in ("labels.json", "preprocessing.json"):
        shutil.copyfile(bundle_file(run, name), target / name)
    report = {"format": fmt, "int8": int8, "file": path.name, "size_mb": round(path.stat().st_size / 2**20, 2),
              "bundle_sha256": bundle_digest(find_bundle(run)),
              "export_seconds": round(seconds, 1), "parity": parity, "model": bundle.metadata.get("model"),
              "labels": len(bundle.labels), "dynamic_batch": True, **extra}
    if kind.reader is not None:  # the folder's own reader, checked on the same files end to end
        report.update(kind.reader(target, reference_predictor, files))
    ok = agreement >= INT8_MIN_TOP1_AGREEMENT if int8 else (diff <= FP32_MAX_LOGIT_DIFF and agreement == 1.0)
    report["parity"]["passed"] = ok  # `predict RUN` uses a current fp32 ONNX export only if this is true
    write_json(target / "export_report.json", report)
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


def _onnx_reader(target: Path, reference: Predictor, files: list[str]) -> dict[str, Any]:
    """The ONNX folder runs anywhere (numpy + Pillow + onnxruntime, no torch, no transferlab): the reader and the
    decode + preprocess code beside it; then the same files through predict RUN and predict EXPORT."""
    from ..data import geometry, images
    from ..inference import onnx_reader, portable

    for module, name in ((onnx_reader, "predict_onnx.py"), (portable, "tl_portable.py"), (images, "tl_images.py"),
                         (geometry, "tl_geometry.py")):
        shutil.copyfile(module.__file__, target / name)
    return {"file_parity": file_parity(reference, onnx_reader.OnnxPredictor(target), files)} if files else {}


def _export_torchscript(model: torch.nn.Module, x: torch.Tensor, target: Path,
                        int8: bool = False) -> tuple[Path, torch.Tensor, dict]:
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


def export_hf(run: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Writes the run's model as a folder in timm's Hugging Face layout: config.json (architecture, labels,
    preprocessing), model.safetensors (timm's own state dict: the base with the new head as its classifier) and
    a model card README.md with the run's metrics. `timm.create_model("local-dir:FOLDER", pretrained=True)` loads
    it; `huggingface_hub.upload_folder` (or `hf upload`) publishes it as it is.

    Raises:
        SettingError: The model is not a plain timm architecture with a one-layer head (course CNN, torchvision or
            Hugging Face transformers models, `head_hidden`): export those with --format onnx.

    Example:
        >>> export_hf("runs/cd", "runs/cd/export-hf")  # doctest: +SKIP
    """
    import timm
    from torch import nn

    from ..models import create_model

    run = Path(run)
    bundle = load_bundle(run)
    name = bundle.metadata.get("model", "")
    arch = str(bundle.metadata.get("architecture") or name)
    linear = [m for m in bundle.model.head.modules() if isinstance(m, nn.Linear)]
    others = [m for m in bundle.model.head.modules()
              if not isinstance(m, (nn.Sequential, nn.Linear, nn.Dropout, nn.Identity, nn.Flatten))]
    if name.startswith("hf:") and len(linear) == 1 and not others:
        return _export_transformers(run, bundle, linear[0], out)
    if arch not in timm.list_models() or len(linear) != 1 or others or linear[0].out_features != len(bundle.labels):
        why = ("its head has hidden layers (head_hidden)" if len(linear) != 1 or others else
               f"'{arch}' is not one of timm's architectures" if arch not in timm.list_models() else
               "its head has one sigmoid output")
        raise SettingError(f"--format hf writes timm's layout (a timm architecture whose classifier is the new head), "
                           f"but this model does not fit it: {why}. Export it with --format onnx instead.")
    kwargs = json.loads(bundle.metadata.get("model_kwargs", "{}"))
    pre = bundle.preprocessing
    model = create_model(name, num_classes=len(bundle.labels), weights="none", image_size=pre.image_size, **kwargs)
    prefix = model.pretrained_cfg.get("classifier", "classifier")
    prefix = prefix[0] if isinstance(prefix, (list, tuple)) else prefix
    state = {k: v for k, v in bundle.model.features.state_dict().items()}
    state.update({f"{prefix}.weight": linear[0].weight.detach(), f"{prefix}.bias": linear[0].bias.detach()})
    model.load_state_dict(state, strict=True)
    with export_folder(_target(run, "hf", False, out)) as target:
        return _write_timm_hf(run, bundle, model, arch, name, target)


def _write_timm_hf(run: Path, bundle: Any, model: Any, arch: str, name: str, target: Path) -> dict[str, Any]:
    import timm
    from timm.models import save_for_hf

    pre = bundle.preprocessing
    start = time.perf_counter()
    data_config = {"input_size": (3, pre.image_size, pre.image_size), "mean": tuple(pre.mean), "std": tuple(pre.std),
                   "interpolation": pre.interpolation, "crop_pct": pre.crop_pct, "crop_mode": pre.crop_mode}
    save_for_hf(model.eval(), str(target), model_config={"label_names": list(bundle.labels)},
                safe_serialization=True, data_config=data_config)
    metrics = RunFolder(run).metrics() if run.is_dir() and (run / "metrics.json").is_file() else {}
    write_text(target / "README.md", _model_card(arch, bundle.labels, pre, metrics, run.name))
    # the same inputs through the run's model and timm's loaded export
    reference = Predictor(bundle, engine="fp32")
    files = _sample_files(run if run.is_dir() else run.parent)
    x, source = _sample_inputs(files, reference)
    loaded = timm.create_model(f"local-dir:{target.resolve()}", pretrained=True).eval()
    with torch.inference_mode():
        diff = float((loaded(x).float() - bundle.model.eval().float()(x).float()).abs().max())
    return _hf_report(target, {"format": "hf", "file": "model.safetensors", "architecture": arch,
                               "labels": len(bundle.labels), "model": name}, "timm", start, source, diff)


def _hf_report(target: Path, fields: dict[str, Any], loader: str, start: float, source: str,
               diff: float) -> dict[str, Any]:
    """export_report.json of an hf export (size, time, the parity of `loader`'s load of it); raises ParityError
    beyond the float32 tolerance."""
    report = {**fields, "size_mb": round(sum(p.stat().st_size for p in target.glob("*.safetensors")) / 2**20, 2),
              "export_seconds": round(time.perf_counter() - start, 1),
              "parity": {"inputs": source, "max_abs_logit_diff": round(diff, 6),
                         "tolerance": {"max_abs_logit_diff": FP32_MAX_LOGIT_DIFF},
                         "passed": diff <= FP32_MAX_LOGIT_DIFF}}
    write_json(target / "export_report.json", report)
    if diff > FP32_MAX_LOGIT_DIFF:
        raise ParityError(f"{loader}'s load of the hf export differs from the run's model by {diff:.4g} (max "
                          f"|Δlogit|) on {source}; the files are kept in {target} for inspection.")
    return {**report, "folder": str(target)}


def _model_card(arch: str, labels: list[str], pre: Any, metrics: dict[str, Any], run_name: str) -> str:
    """A Hugging Face model card: YAML metadata, what the model does, its measured metrics and how to load it."""
    acc = metrics.get("best_val_accuracy")
    lines = ["---", "library_name: timm", "license: other", "pipeline_tag: image-classification",
             "tags: [image-classification, timm, transferlab]", "---", "",
             f"# {run_name}: {arch} fine-tuned with transferlab", "",
             f"An image classifier for {len(labels)} classes ({', '.join(labels[:20])}"
             + (", ..." if len(labels) > 20 else "") + f"), the `{arch}` architecture of timm with a new "
             "classifier head, trained by transfer learning with transferlab.", "",
             "## Metrics (validation split of the training run)", ""]
    if metrics:
        lines += ["| metric | value |", "| --- | ---: |"]
        lines += [f"| {key} | {metrics[key]} |" for key in ("best_val_accuracy", "best_val_loss", "best_epoch",
                                                            "epochs_run") if metrics.get(key) is not None]
    else:
        lines.append("(No metrics.json: exported from a bundle folder.)")
    lines += ["", "## Preprocessing", "",
              f"Input {pre.image_size}x{pre.image_size} RGB, {pre.interpolation} resize (crop_pct {pre.crop_pct}, "
              f"{pre.crop_mode}), mean {list(pre.mean)}, std {list(pre.std)} (also in config.json).", "",
              "## Use", "", "```python", "import timm, torch",
              "from PIL import Image", "",
              'model = timm.create_model("hf-hub:ORG/NAME", pretrained=True).eval()  # or "local-dir:FOLDER"',
              "cfg = timm.data.resolve_data_config({}, model=model)",
              "transform = timm.data.create_transform(**cfg)",
              'x = transform(Image.open("photo.jpg").convert("RGB")).unsqueeze(0)',
              "probabilities = model(x).softmax(-1)[0]",
              "labels = model.pretrained_cfg['label_names']", "```", "",
              f"Accuracy on the run's validation split: {acc:.4f}." if isinstance(acc, float) else "", ""]
    return "\n".join(lines)


def _export_transformers(run: Path, bundle: Any, linear: Any, out: str | os.PathLike[str] | None) -> dict[str, Any]:
    """`--format hf` for a transformers base (`hf:`): the model saved with `save_pretrained`, its classifier the new
    head and its id2label the run's labels, with the source's image processor; checked by loading it back with
    `AutoModelForImageClassification.from_pretrained` on the run's validation images."""
    with export_folder(_target(run, "hf", False, out)) as target:
        return _write_transformers(run, bundle, linear, target)


def _write_transformers(run: Path, bundle: Any, linear: Any, target: Path) -> dict[str, Any]:
    from transformers import AutoModelForImageClassification

    from ..models.hf import save_hf_classifier

    start = time.perf_counter()
    processor = save_hf_classifier(bundle.model.features, linear, list(bundle.labels), target)
    metrics = RunFolder(run).metrics() if run.is_dir() and (run / "metrics.json").is_file() else {}
    name = str(bundle.metadata.get("model"))
    write_text(target / "README.md", _model_card(name, bundle.labels, bundle.preprocessing, metrics, run.name)
               .replace("library_name: timm", "library_name: transformers")
               .replace("tags: [image-classification, timm, transferlab]", "tags: [image-classification, transferlab]"))
    reference = Predictor(bundle, engine="fp32")
    x, source = _sample_inputs(_sample_files(run if run.is_dir() else run.parent), reference)
    loaded = AutoModelForImageClassification.from_pretrained(str(target)).eval()
    with torch.inference_mode():
        diff = float((loaded(pixel_values=x).logits.float() - bundle.model.eval().float()(x).float()).abs().max())
    weights = next(iter(sorted(target.glob("*.safetensors"))), None)
    return _hf_report(target, {"format": "hf", "library": "transformers", "file": weights.name if weights else "",
                               "model": name, "labels": len(bundle.labels), "image_processor": processor},
                      "transformers", start, source, diff)


@dataclass(frozen=True)
class FileFormat:
    """A format that writes the model into one file, parity-checked on the run's validation images.

    Attributes:
        write: (model, inputs, folder, int8) -> (the file, its outputs on the inputs, report entries).
        int8: Whether `--int8` applies.
        reader: Run once the folder holds the file, labels.json and preprocessing.json: (folder, the PyTorch
            predictor, the run's image files) -> more report entries (the folder's own reader, checked).
    """

    write: Callable[[torch.nn.Module, torch.Tensor, Path, bool], tuple[Path, torch.Tensor, dict]]
    int8: bool = False
    reader: Callable[[Path, Predictor, list[str]], dict[str, Any]] | None = None


# Adding a format: one entry here (a file format) or a folder writer beside export_hf; tests/test_export_serve.py
# exports every one of FORMATS
FILE_FORMATS: dict[str, FileFormat] = {"onnx": FileFormat(_export_onnx, int8=True, reader=_onnx_reader),
                                       "torchscript": FileFormat(_export_torchscript)}
FORMATS = (*FILE_FORMATS, "hf")
