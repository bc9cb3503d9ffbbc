"""The `transferlab models` table, derived from the registry.

Sizes (parameters, depth, MB) and input sizes are measured from each architecture on PyTorch's meta device
(no memory, no weights), so they are exact for the model transferlab builds. Measuring needs torch and timm
(seconds), so the measured columns are kept in `catalog_table.json` beside this file, written by
`python -m transferlab.models.table` and checked against a fresh measurement by tests/test_zoo.py; the
table itself (`catalog_rows`) then needs no torch. Whether weights are here is checked live, from the
package index and the hub caches' folders.

Example:
    >>> row = catalog_rows(["vgg16"])[0]
    >>> row["parameters"], row["depth"]
    (138357544, 16)
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from .catalog import CATALOG, CatalogEntry

__all__ = ["catalog_rows", "measure_rows", "weights_availability", "TABLE_FILE"]

TABLE_FILE = Path(__file__).with_name("catalog_table.json")
MEASURED = ("source_name", "parameters", "depth", "size_mb", "input_size", "top1", "top5", "accuracy_source",
            "hf_hub_id", "hub_file")


def _torch_hub_dir() -> Path:
    """torch.hub.get_dir() without importing torch: $TORCH_HOME/hub, else $XDG_CACHE_HOME/torch/hub."""
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(os.path.expanduser(home)) / "hub"


def _hf_cached(hf_hub_id: str) -> bool:
    """True when the Hugging Face hub cache holds weights of `hf_hub_id` (the cache's folder layout)."""
    cache = os.environ.get("HF_HUB_CACHE") or os.path.join(os.environ.get("HF_HOME", "~/.cache/huggingface"), "hub")
    repo = Path(os.path.expanduser(cache)) / ("models--" + hf_hub_id.replace("/", "--")) / "snapshots"
    names = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")
    return repo.is_dir() and any((snap / n).is_file() for snap in repo.iterdir() for n in names)


def weights_availability(entry: CatalogEntry, measured: dict[str, Any] | None = None) -> str:
    """'bundled' (works offline), 'cached' (downloaded before), 'download' (needs internet once) or 'none'.

    timm's hub cache follows HF_HOME / HF_HUB_CACHE; torch.hub's follows TORCH_HOME.
    """
    measured = measured or {}
    if entry.weights == "none":
        return "none"
    if entry.bundled_package and importlib.util.find_spec(entry.bundled_package[0]) is not None:
        return "bundled"
    if measured.get("hf_hub_id") and _hf_cached(measured["hf_hub_id"]):
        return "cached"
    if measured.get("hub_file") and (_torch_hub_dir() / "checkpoints" / measured["hub_file"]).is_file():
        return "cached"
    return "download" if measured.get("hf_hub_id") or measured.get("hub_file") or entry.bundled_package else "none"


def _row(entry: CatalogEntry, measured: dict[str, Any]) -> dict[str, Any]:
    source = "torchvision" if entry.architecture.startswith("tv:") else \
        "transferlab" if entry.architecture in ("lenet5", "course_cnn") else "timm"
    return {"name": entry.name, "keras": entry.keras, "family": entry.family, "source": source,
            **{k: measured.get(k) for k in MEASURED if k not in ("hf_hub_id", "hub_file")},
            "weights": weights_availability(entry, measured), "note": entry.note}


def catalog_rows(names: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per registry entry: measured sizes (`catalog_table.json`), accuracy, weight availability.
    Entries missing from the file (registered at run time) are measured now."""
    table = json.loads(TABLE_FILE.read_text(encoding="utf-8")) if TABLE_FILE.is_file() else {}
    entries = [e for e in CATALOG if names is None or e.name in names]
    missing = [e.name for e in entries if e.name not in table]
    if missing:
        table.update(measure_rows(missing))
    return [_row(e, table[e.name]) for e in entries]


def measure_rows(names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Measures the entries (all by default) on the meta device: {name: measured columns}."""
    import torch
    from torch import nn

    from ._registry import create_model

    def depth(model: nn.Module) -> int:  # layers with weights, the way the course counts VGG16's 16
        return sum(1 for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)))

    out = {}
    for e in CATALOG:
        if names is not None and e.name not in names:
            continue
        with torch.device("meta"):
            model = create_model(e.name, weights="none")
        params = sum(p.numel() for p in model.parameters())
        cfg = dict(getattr(model, "pretrained_cfg", {}) or {})
        row = {"source_name": e.architecture.removeprefix("tv:"), "parameters": params, "depth": depth(model),
               "size_mb": round(params * 4 / 2**20, 1), "input_size": int(cfg.get("input_size", (3, 224, 224))[-1]),
               "top1": e.keras_top1, "top5": e.keras_top5,
               "accuracy_source": "course table (Keras weights)" if e.keras_top1 is not None else "",
               "hf_hub_id": None, "hub_file": None}
        if e.architecture.startswith("tv:"):
            top1, top5 = _torchvision_metrics(e.architecture[3:])
            row.update(top1=top1, top5=top5, accuracy_source="torchvision weights metadata",
                       hub_file=os.path.basename(cfg.get("url", "")) or None)
        elif e.weights == "timm":
            row.update(_timm_weights(e.architecture))
        out[e.name] = row
    return out


def _timm_weights(architecture: str) -> dict[str, Any]:
    import timm

    tags = timm.list_pretrained(architecture + ".*") or timm.list_pretrained(architecture)
    if not tags:
        return {}
    cfg = timm.models.get_pretrained_cfg(tags[0])
    return {"hf_hub_id": (cfg.hf_hub_id or None) if cfg else None,
            "hub_file": os.path.basename(cfg.url) if cfg and cfg.url else None}


def _torchvision_metrics(name: str) -> tuple[float, float]:
    import torchvision.models as tvm

    from .classic import TORCHVISION_MODELS

    meta = getattr(tvm, TORCHVISION_MODELS[name][1]).DEFAULT.meta["_metrics"]["ImageNet-1K"]
    return round(meta["acc@1"] / 100, 4), round(meta["acc@5"] / 100, 4)


if __name__ == "__main__":  # python -m transferlab.models.table: rewrite catalog_table.json after a registry change
    from .._io import write_json

    write_json(TABLE_FILE, measure_rows())
    print(f"wrote {TABLE_FILE}")
