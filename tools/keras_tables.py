"""Writes src/transferlab/models/keras_tables.json from Keras 3 itself: for every Keras family of the catalog,
`include_top=False` built with `weights=None` (offline), its parameter counts (count_params, trainable,
non-trainable: BatchNormalization's moving statistics) and its `layers` list (index, name, class, weights).

The Keras facade (`transferlab.applications`) compares its own counts with these in `summary()`, and the layer
lists are the data for Keras layer indices (`base.layers[143:]`). Run after adding a Keras family to the catalog:

    KERAS_BACKEND=torch .venv/bin/python tools/keras_tables.py
    .venv/bin/python tools/keras_tables.py --markdown   # the table of docs/finetuning.md (no Keras needed)
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "transferlab" / "models" / "keras_tables.json"


def describe(keras_name: str) -> dict:
    import keras

    builder = getattr(keras.applications, keras_name)
    start = time.perf_counter()
    model = builder(include_top=False, weights=None)
    trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
    non_trainable = sum(int(w.numpy().size) for w in model.non_trainable_weights)
    layers = [{"index": i, "name": layer.name, "class": type(layer).__name__,
               "weights": sum(int(w.numpy().size) for w in layer.weights)} for i, layer in enumerate(model.layers)]
    return {"keras": keras_name, "keras_version": keras.__version__, "count_params": int(model.count_params()),
            "trainable": trainable, "non_trainable": non_trainable, "layers": layers,
            "seconds_to_build": round(time.perf_counter() - start, 1)}


def main() -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from transferlab.models.catalog import CATALOG

    names = sys.argv[1:] or [e.keras for e in CATALOG if e.keras and e.keras.isidentifier()]
    tables = json.loads(OUT.read_text()) if OUT.is_file() else {}
    for name in names:
        try:
            tables[name] = describe(name)
            print(f"{name}: {tables[name]['count_params']:,} ({tables[name].pop('seconds_to_build')} s)", flush=True)
        except Exception as e:  # noqa: BLE001 - a family Keras 3 lacks is reported and skipped
            print(f"{name}: skipped ({type(e).__name__}: {e})", flush=True)
    OUT.write_text(json.dumps(tables, separators=(",", ":")) + "\n")  # compact: ~0.5 MB in the wheel
    print(f"wrote {OUT}")




def markdown_comparison() -> str:
    """The docs table: Keras 3's counts beside transferlab's for every Keras family (include_top=False)."""
    import torch

    sys.path.insert(0, str(ROOT / "src"))
    from transferlab.models.catalog import CATALOG
    from transferlab.models.keras import application

    tables = json.loads(OUT.read_text())
    lines = ["| Keras family | Keras count_params | transferlab count_params | Keras trainable | transferlab trainable "
             "| non-trainable (Keras / ours) |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for entry in CATALOG:
        if entry.keras not in tables:
            continue
        with torch.device("meta"):
            base = application(entry.name, include_top=False, weights=None)
        trainable = sum(p.numel() for p in base.trainable_weights)
        k = tables[entry.keras]
        lines.append(f"| {entry.keras} | {k['count_params']:,} | {base.count_params():,} | {k['trainable']:,} | "
                     f"{trainable:,} | {k['non_trainable']:,} / {base.count_params() - trainable:,} |")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:] == ["--markdown"]:  # the comparison table of docs/finetuning.md
        print(markdown_comparison())
    else:
        main()
