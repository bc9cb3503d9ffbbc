"""The ONNX Runtime engine of the `Predictor` interface — numpy, Pillow and onnxruntime, no torch.

`transferlab export` copies this file into every ONNX export folder as `predict_onnx.py`, with the shared
decode + preprocess code beside it (`tl_portable.py`, `tl_images.py`, `tl_geometry.py`), so the folder runs anywhere
(`pip install onnxruntime pillow numpy`) and turns a file into exactly the pixels `transferlab predict` uses:

    python predict_onnx.py photo.jpg other.jpg --top-k 3

Inside transferlab, `load_predictor(EXPORT_FOLDER)` (`predict`, `evaluate`, `serve`) uses it too.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

try:  # inside the package
    from ..data.images import read_labels
    from .portable import TTA_CHOICES, BasePredictor, Preprocessing, softmax_or_sigmoid, tta_problem
except ImportError:  # pragma: no cover - run as predict_onnx.py in an export folder
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from tl_images import read_labels  # type: ignore[no-redef]
    from tl_portable import TTA_CHOICES, BasePredictor, Preprocessing, softmax_or_sigmoid, tta_problem  # type: ignore

__all__ = ["OnnxPredictor", "is_onnx_export"]


def is_onnx_export(path: str | os.PathLike[str]) -> bool:
    """True for a folder holding a *.onnx model and its labels.json."""
    p = Path(path)
    return p.is_dir() and any(p.glob("*.onnx")) and (p / "labels.json").is_file()


class OnnxPredictor(BasePredictor):
    """Classifies images with an exported ONNX model folder (model*.onnx, labels.json, preprocessing.json).

    Example:
        >>> OnnxPredictor("runs/cd/export-onnx").predict(["cat.jpg"], top_k=1)  # doctest: +SKIP
        [{'path': 'cat.jpg', 'top': [{'label': 'cats', 'probability': 0.97}]}]
    """

    engine_name = "onnxruntime"

    def __init__(self, folder: str | os.PathLike[str], threads: int | None = None) -> None:
        import onnxruntime as ort

        folder = Path(folder)
        models = sorted(folder.glob("*.onnx"))
        if not models or not (folder / "labels.json").is_file() or not (folder / "preprocessing.json").is_file():
            raise FileNotFoundError(f"'{folder}' is not a transferlab ONNX export (model.onnx, labels.json and "
                                    "preprocessing.json). Make one with `transferlab export RUN --format onnx`.")
        self.folder = folder
        self.labels: list[str] = read_labels(folder / "labels.json")
        self.preprocessing = Preprocessing.read(folder / "preprocessing.json")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(models[0]), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.metadata = {"model": models[0].name, "format": "onnx"}

    def batch_probabilities(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return softmax_or_sigmoid(self.session.run(None, {self.input_name: batch})[0])


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Classify images with this ONNX export (no torch needed).")
    parser.add_argument("images", nargs="+")
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--model", default=str(Path(__file__).resolve().parent), help="the export folder")
    parser.add_argument("--tta", default="none", choices=TTA_CHOICES,
                        help="test-time augmentation: flip (with the mirror image) or ten-crop (corner and centre "
                             "crops, each mirrored)")
    args = parser.parse_args(argv)
    predictor = OnnxPredictor(args.model)
    problem = tta_problem(predictor.preprocessing, args.tta)
    if problem:
        parser.error(problem)
    results = predictor.predict(args.images, top_k=args.top_k, tta=args.tta)
    sys.stdout.write(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return 0 if any("top" in r for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
