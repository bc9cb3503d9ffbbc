"""The torch-free core of every predictor: one decode + preprocess path, probabilities, top-k, and the
`BasePredictor` interface that the PyTorch and ONNX Runtime engines implement.

This file imports only numpy, Pillow and (for decoding and the geometry) `transferlab.data.images` and
`transferlab.data.geometry`: `transferlab export` copies it, with those two, into every ONNX export folder, so that
`predict RUN`, `predict EXPORT`, `evaluate`, `serve` and the exported `predict_onnx.py` turn the same file into the
same pixels.

The geometry is `data.geometry.Preprocessing`'s (the one definition, which training's transforms follow too), the
resampling Pillow's antialiased filters (why inference resamples with Pillow and training with torchvision: see
`data.geometry`), the normalisation `(x / 255 - mean) / std` in float32.

Example:
    >>> from PIL import Image
    >>> pre = Preprocessing(4, (0.5,) * 3, (0.5,) * 3, "bilinear", 1.0)
    >>> preprocess(Image.new("RGB", (8, 6), (255, 0, 0)), pre)[:, 0, 0].tolist()
    [1.0, -1.0, -1.0]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

try:  # inside the package
    from ..data.geometry import Preprocessing
    from ..data.images import load_rgb
except ImportError:  # pragma: no cover - a copy beside predict_onnx.py in an export folder
    from tl_geometry import Preprocessing  # type: ignore[no-redef]
    from tl_images import load_rgb  # type: ignore[no-redef]

__all__ = ["BasePredictor", "Predictions", "Preprocessing", "TTA_CHOICES", "preprocess", "softmax_or_sigmoid",
           "top_k", "tta_batch", "tta_problem", "tta_views"]

TTA_VIEWS = {"none": 1, "flip": 2, "ten-crop": 10}  # the views `tta_views` cuts per image
TTA_CHOICES = tuple(TTA_VIEWS)

def preprocess(image: Image.Image, pre: Preprocessing) -> np.ndarray:
    """An RGB image -> the model input, float32 [3, S, S]: resize (shorter side to `resize_size`, or both
    sides with crop_mode 'squash'), centre crop S = image_size, scale to [0, 1], normalise.

    Args:
        image: An RGB PIL image (from `decode`).
        pre: The bundle's preprocessing (`data.geometry.Preprocessing`).
    """
    return tta_views(image, pre, "none")[0]


def tta_views(image: Image.Image, pre: Preprocessing, tta: str = "none") -> np.ndarray:
    """The model inputs whose probabilities test-time augmentation averages, float32 [V, 3, S, S]. View 0 is
    always `preprocess(image, pre)`, the plain answer.

    - 'none': that view alone.
    - 'flip': it and its mirror image.
    - 'ten-crop': the centre and the four corner crops (S x S) of the resized image, each also mirrored: the
      test protocol of AlexNet and of torchvision's `TenCrop` after `Resize(resize_size)`.

    Args:
        image: An RGB PIL image (from `decode`).
        pre: The bundle's preprocessing (see `preprocess`).
        tta: 'none', 'flip' or 'ten-crop'.

    Example:
        >>> pre = Preprocessing(4, (0.0,) * 3, (1.0,) * 3, "nearest", 0.5)
        >>> tta_views(Image.new("RGB", (8, 8)), pre, "ten-crop").shape
        (10, 3, 4, 4)
    """
    if tta not in TTA_CHOICES:
        raise ValueError(f"tta must be one of {', '.join(TTA_CHOICES)}; got '{tta}'.")
    size = pre.image_size
    new_w, new_h = pre.resized_shape(*image.size)
    if (new_w, new_h) != image.size:
        image = image.resize((new_w, new_h), Image.Resampling[pre.interpolation.upper()])
    top, left = pre.crop_box(new_w, new_h)
    x = np.asarray(image, dtype=np.uint8)
    if top < 0 or left < 0:  # smaller than the crop (squash to a smaller size): pad like torchvision, with 0
        pad = np.zeros((max(size, new_h), max(size, new_w), 3), dtype=np.uint8)
        pad[max(0, -top):max(0, -top) + new_h, max(0, -left):max(0, -left) + new_w] = x
        x, top, left = pad, max(0, top), max(0, left)
    corners = [(top, left)]
    if tta == "ten-crop":  # torchvision's five_crop order after the centre: top-left, top-right, bottom-left, -right
        bottom, right = x.shape[0] - size, x.shape[1] - size
        corners += [(0, 0), (0, right), (bottom, 0), (bottom, right)]
    crops = np.stack([x[t:t + size, c:c + size] for t, c in corners])  # [V, S, S, 3] uint8
    if tta != "none":
        crops = np.concatenate([crops, crops[:, :, ::-1]])
    views = crops.astype(np.float32).transpose(0, 3, 1, 2) / np.float32(255.0)
    mean = np.asarray(pre.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(pre.std, dtype=np.float32)[:, None, None]
    return np.ascontiguousarray((views - mean) / std)


def tta_batch(batch_size: int, tta: str) -> int:
    """Images per batch when each brings its `tta_views` (1, 2 or 10), so that a forward pass still gets
    about `batch_size` inputs."""
    return max(1, int(batch_size) // TTA_VIEWS[tta])


def tta_problem(pre: Preprocessing, tta: str) -> str | None:
    """Why `tta` cannot be used with this preprocessing, or None. 'ten-crop' needs a model whose preprocessing
    crops (crop_pct < 1): otherwise the five crops are one image and it would only repeat 'flip' five times."""
    if tta not in TTA_CHOICES:
        return f"tta must be one of {', '.join(TTA_CHOICES)}; got '{tta}'."
    if tta == "ten-crop" and pre.resize_size <= pre.image_size:
        return ("tta='ten-crop' needs a model whose preprocessing resizes larger than its input and crops "
                f"(crop_pct < 1); this one resizes to the input size ({pre.image_size} px, crop_pct "
                f"{pre.crop_pct}), so the five crops would be one image. Use tta='flip'.")
    return None


def softmax_or_sigmoid(logits: np.ndarray) -> np.ndarray:
    """Class probabilities from logits [N, C]; a single output is a sigmoid (binary) head -> [P(0), P(1)]."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.shape[-1] == 1:
        p = 1.0 / (1.0 + np.exp(-logits))
        return np.concatenate([1 - p, p], axis=-1)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def top_k(row: Sequence[float] | np.ndarray, labels: Sequence[str], k: int,
          ids: Sequence[str] | None = None, decimals: int | None = 6) -> list[dict[str, Any]]:
    """The k most probable labels of one row of probabilities, most probable first (ties: the lower index).

    Example:
        >>> top_k([0.1, 0.7, 0.2], ["a", "b", "c"], 2)
        [{'label': 'b', 'probability': 0.7}, {'label': 'c', 'probability': 0.2}]
    """
    row = np.asarray(row, dtype=np.float64)
    k = max(1, min(int(k), len(labels)))
    order = np.argsort(-row, kind="stable")[:k]
    return [{**({"wnid": ids[i]} if ids else {}), "label": labels[i],
             "probability": float(row[i]) if decimals is None else round(float(row[i]), decimals)} for i in order]


class BasePredictor:
    """What every predictor offers: labels, preprocessing, and predictions from files, bytes or images.

    Subclasses set `labels`, `preprocessing` (a `Preprocessing`), `engine_name` and `metadata`, and implement
    `batch_probabilities` on a preprocessed float32 [N, 3, S, S] batch; test-time augmentation is done here,
    once for every engine.
    """

    labels: list[str]
    preprocessing: Preprocessing
    engine_name: str = "?"
    metadata: dict[str, Any]
    ids: list[str] | None = None

    def batch_probabilities(self, batch: Any) -> np.ndarray:
        """[N, C] probabilities of a preprocessed batch: one forward pass of the engine, no test-time
        augmentation (that is `tta_views`' job: `image_probabilities`, `predict_proba`)."""
        raise NotImplementedError

    def decode(self, source: Any) -> Image.Image:
        """An upright RGB image from a path, bytes or a file object, decoded at the reduced JPEG scale that
        still covers the model's resize (the same call everywhere, so that every engine sees the same pixels)."""
        return load_rgb(source, min_size=self.preprocessing.resize_size)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """See `preprocess`."""
        return preprocess(image, self.preprocessing)

    def image_probabilities(self, images: Sequence[Image.Image], tta: str = "none") -> np.ndarray:
        """[N, C] probabilities of decoded RGB images (the web service's entry point), averaged over the
        `tta_views` of each image."""
        views = np.stack([tta_views(im, self.preprocessing, tta) for im in images])
        return self.view_probabilities(views).mean(axis=1)

    def view_probabilities(self, views: Any) -> np.ndarray:
        """[N, V, C] probabilities of a batch of `tta_views`, [N, V, 3, S, S], in one forward pass."""
        n, v = views.shape[:2]
        return np.asarray(self.batch_probabilities(views.reshape(n * v, *views.shape[2:]))).reshape(n, v, -1)

    def predict_proba(self, paths: Sequence[str | os.PathLike[str]], tta: str = "none", batch_size: int = 64,
                      num_workers: int = 0, quiet: bool = True) -> tuple[np.ndarray, np.ndarray | None,
                                                                         dict[int, str]]:
        """[N, C] probabilities of image files (rows of unreadable files are zero), the TTA probabilities
        (the mean over each image's `tta_views`; None for tta='none'), and {index: reason} of the unreadable
        files. `batch_size` counts model inputs: each image brings 1, 2 or 10 views."""
        plain = np.zeros((len(paths), len(self.labels)))
        averaged = None if tta == "none" else np.zeros_like(plain)
        failed: dict[int, str] = {}
        step = tta_batch(batch_size, tta)
        for start in range(0, len(paths), step):
            indices, arrays = [], []
            for i in range(start, min(start + step, len(paths))):
                try:
                    arrays.append(tta_views(self.decode(paths[i]), self.preprocessing, tta))
                    indices.append(i)
                except Exception as e:  # noqa: BLE001 - one bad file must not stop the others
                    failed[i] = f"cannot read image: {e}"
            if indices:
                self._fill(self.view_probabilities(np.stack(arrays)), indices, plain, averaged)
        return plain, averaged, failed

    @staticmethod
    def _fill(probs: np.ndarray, indices: list[int], plain: np.ndarray, averaged: np.ndarray | None) -> None:
        """Rows `indices` of `plain` (view 0) and of `averaged` (the mean over all views) from the [N, V, C]
        probabilities of one batch of `tta_views` (`view_probabilities`)."""
        plain[indices] = probs[:, 0]
        if averaged is not None:
            averaged[indices] = probs.mean(axis=1)

    def predict(self, paths: Sequence[str | os.PathLike[str]], top_k: int = 3, batch_size: int = 32,
                tta: str = "none") -> list[dict[str, Any]]:
        """Per image {"path", "top": [{"label", "probability"}, ...]} or {"path", "error"} (one bad file does
        not stop the others); with tta='flip' or 'ten-crop' the probabilities average the image's `tta_views`."""
        results = Predictions()
        plain, averaged, failed = self.predict_proba(list(paths), tta=tta, batch_size=batch_size)
        probs = averaged if averaged is not None else plain
        for i, path in enumerate(paths):
            if i in failed:
                results.append({"path": str(path), "error": failed[i]})
            else:
                results.append({"path": str(path), "top": _top(self, probs[i], top_k)})
        return results

    def predict_images(self, images: Sequence[Image.Image], top_k: int = 3, tta: str = "none") -> list[list[dict]]:
        """Top-k labels of decoded images, one list per image."""
        return [_top(self, row, top_k) for row in self.image_probabilities(images, tta)]


class Predictions(list):
    """The list `predict` returns (per image {"path", "top"} or {"path", "error"}); in a notebook it shows each
    image with its top labels.

    Example:
        >>> Predictions([{"path": "a.jpg", "top": [{"label": "cat", "probability": 0.9}]}])[0]["top"][0]["label"]
        'cat'
    """

    def _repr_html_(self, size: int = 160, limit: int = 48) -> str:
        import base64
        import html
        import io

        cells = []
        for item in self[:limit]:
            name = html.escape(os.path.basename(str(item["path"])))
            if "error" in item:
                cells.append(f"<figure style='display:inline-block;margin:4px;width:{size}px'><figcaption>{name}: "
                             f"<span style='color:#b00'>{html.escape(str(item['error']))}</span></figcaption></figure>")
                continue
            try:
                with Image.open(item["path"]) as im:
                    im.draft("RGB", (size, size))
                    image = im.convert("RGB")
                image.thumbnail((size, size))
                buffer = io.BytesIO()
                image.save(buffer, format="JPEG", quality=85)
                img = f"<img src='data:image/jpeg;base64,{base64.b64encode(buffer.getvalue()).decode()}'>"
            except Exception:  # noqa: BLE001 - a picture that cannot be drawn still gets its labels
                img = ""
            labels = "<br>".join(f"{'<b>' if i == 0 else ''}{html.escape(str(t['label']))} "
                                 f"{t['probability']:.1%}{'</b>' if i == 0 else ''}" for i, t in enumerate(item["top"]))
            cells.append(f"<figure style='display:inline-block;margin:4px;width:{size}px;vertical-align:top'>{img}"
                         f"<figcaption style='font-size:0.85em'>{name}<br>{labels}</figcaption></figure>")
        more = f"<p>… and {len(self) - limit} more</p>" if len(self) > limit else ""
        return "<div>" + "".join(cells) + more + "</div>"


def _top(predictor: BasePredictor, row: np.ndarray, k: int) -> list[dict[str, Any]]:
    return top_k(row, predictor.labels, k, predictor.ids)


