"""Reads a transferlab ONNX export and classifies images with numpy, Pillow and onnxruntime only — no torch.

This file imports nothing from transferlab: `transferlab export` copies it into every ONNX export folder as
`predict_onnx.py`, so the folder runs anywhere (`pip install onnxruntime pillow numpy`):

    python predict_onnx.py photo.jpg other.jpg --top-k 3

Inside transferlab, `transferlab predict EXPORT_FOLDER ...` and `serve EXPORT_FOLDER` use it too.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
             "nearest": Image.Resampling.NEAREST}


def is_onnx_export(path: str | os.PathLike[str]) -> bool:
    p = Path(path)
    return p.is_dir() and any(p.glob("*.onnx")) and (p / "labels.json").is_file()


class OnnxPredictor:
    """Classifies images with an exported ONNX model folder (model*.onnx, labels.json, preprocessing.json).

    Example:
        >>> OnnxPredictor("runs/cd/export-onnx").predict(["cat.jpg"], top_k=1)  # doctest: +SKIP
        [{'path': 'cat.jpg', 'top': [{'label': 'cats', 'probability': 0.97}]}]
    """

    def __init__(self, folder: str | os.PathLike[str], threads: int | None = None) -> None:
        import onnxruntime as ort

        folder = Path(folder)
        models = sorted(folder.glob("*.onnx"))
        if not models or not (folder / "labels.json").is_file() or not (folder / "preprocessing.json").is_file():
            raise FileNotFoundError(f"'{folder}' is not a transferlab ONNX export (model.onnx, labels.json and "
                                    "preprocessing.json). Make one with `transferlab export RUN --format onnx`.")
        self.folder = folder
        self.labels: list[str] = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
        self.pre: dict[str, Any] = json.loads((folder / "preprocessing.json").read_text(encoding="utf-8"))
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(models[0]), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.metadata = {"model": models[0].name, "format": "onnx"}

    @staticmethod
    def load(source: Any) -> Image.Image:
        """An upright RGB image from a path, a file object or bytes (EXIF rotation applied)."""
        import io

        image = Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source)
        image = ImageOps.exif_transpose(image)
        if image.mode in ("RGBA", "LA", "P"):
            rgba = image.convert("RGBA")
            canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(canvas, rgba)
        return image.convert("RGB")

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """Resize (shorter side, or squash), centre crop, scale to [0, 1], normalise: [3, S, S] float32."""
        size = int(self.pre["image_size"])
        crop_pct = float(self.pre.get("crop_pct", 1.0))
        scale = math.floor(size / crop_pct) if crop_pct < 1.0 else size
        resample = _RESAMPLE.get(self.pre.get("interpolation", "bicubic"), Image.Resampling.BICUBIC)
        w, h = image.size
        if self.pre.get("crop_mode", "center") == "squash":
            image = image.resize((scale, scale), resample)
        else:
            ratio = scale / min(w, h)
            image = image.resize((max(scale, round(w * ratio)), max(scale, round(h * ratio))), resample)
        w, h = image.size
        left, top = int(round((w - size) / 2.0)), int(round((h - size) / 2.0))
        image = image.crop((left, top, left + size, top + size))
        x = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0
        mean = np.asarray(self.pre["mean"], dtype=np.float32)[:, None, None]
        std = np.asarray(self.pre["std"], dtype=np.float32)[:, None, None]
        return (x - mean) / std

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        logits = self.session.run(None, {self.input_name: batch.astype(np.float32)})[0].astype(np.float64)
        if logits.shape[-1] == 1:  # one sigmoid output (two classes)
            p = 1.0 / (1.0 + np.exp(-logits))
            return np.concatenate([1 - p, p], axis=-1)
        e = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def image_probabilities(self, images: list[Image.Image], tta: str = "none") -> np.ndarray:
        """[N, C] probabilities of RGB PIL images."""
        batch = np.stack([self.preprocess(im) for im in images])
        probs = self.probabilities(batch)
        if tta == "flip":
            probs = (probs + self.probabilities(batch[..., ::-1].copy())) / 2
        return probs

    def predict_images(self, images: list[Image.Image], top_k: int = 3, tta: str = "none") -> list[list[dict]]:
        """Top-k labels of PIL images, one list per image."""
        probs = self.image_probabilities(images, tta)
        k = max(1, min(int(top_k), len(self.labels)))
        out = []
        for row in probs:
            order = np.argsort(row)[::-1][:k]
            out.append([{"label": self.labels[i], "probability": round(float(row[i]), 6)} for i in order])
        return out

    def predict(self, paths: list[str | os.PathLike[str]], top_k: int = 3, batch_size: int = 32,
                tta: str = "none") -> list[dict[str, Any]]:
        """Per image {"path", "top": [...]} or {"path", "error"}, like transferlab's Predictor."""
        results: list[dict[str, Any]] = []
        pending: list[tuple[int, Image.Image]] = []

        def flush() -> None:
            if pending:
                for (slot, _), top in zip(pending, self.predict_images([im for _, im in pending], top_k, tta)):
                    results[slot]["top"] = top
                pending.clear()

        for path in paths:
            results.append({"path": str(path)})
            try:
                pending.append((len(results) - 1, self.load(path)))
            except Exception as e:  # noqa: BLE001 - one bad file must not stop the others
                results[-1]["error"] = f"cannot read image: {e}"
            if len(pending) >= batch_size:
                flush()
        flush()
        return results


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Classify images with this ONNX export (no torch needed).")
    parser.add_argument("images", nargs="+")
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--model", default=str(Path(__file__).resolve().parent), help="the export folder")
    args = parser.parse_args(argv)
    results = OnnxPredictor(args.model).predict(args.images, top_k=args.top_k)
    sys.stdout.write(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return 0 if any("top" in r for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
