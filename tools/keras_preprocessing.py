"""Prints the table of docs/keras.md: each Keras module's `preprocess_input` (run through Keras itself) beside
ours (this model's pretrained statistics), as what a black pixel (0, 0, 0) and a white one (255, 255, 255) become
per input channel (R, G, B), and Keras' parameter counts without the top beside ours.

    KERAS_BACKEND=torch .venv/bin/python tools/keras_preprocessing.py
"""

from __future__ import annotations

import importlib
import os

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")


def _fmt(values: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in values) + ")"


def main() -> None:
    from transferlab import applications
    from transferlab.applications import KERAS_MODULES
    from transferlab.models.keras_layers import keras_tables

    tables = keras_tables()
    pixels = np.stack([np.zeros((1, 1, 3)), np.full((1, 1, 3), 255.0)]).astype("float32")
    rows = ["| Keras module | Keras: black, white (R, G, B inputs) | ours: black, white | Keras params (no top) "
            "| ours |", "| --- | --- | --- | ---: | ---: |"]
    for module, constructors in KERAS_MODULES.items():
        try:
            keras_module = importlib.import_module(f"keras.applications.{module}")
        except ImportError:
            continue
        keras_out = np.asarray(keras_module.preprocess_input(pixels.copy()))[:, 0, 0, :]
        # Keras' caffe mode swaps to BGR: its first channel is the input's blue; shown in the input's order
        if np.allclose(keras_out[0], [-103.939, -116.779, -123.68], atol=1e-2):
            keras_out = keras_out[:, ::-1]
        ours = getattr(applications, module).preprocess_input(pixels)[:, :, 0, 0].numpy()
        name = constructors[0]
        base = getattr(applications, name)(include_top=False, weights=None)
        keras_count = tables.get(name, {}).get("count_params")
        rows.append(f"| `{module}` | {_fmt(keras_out[0])}, {_fmt(keras_out[1])} | {_fmt(ours[0])}, {_fmt(ours[1])} "
                    f"| {keras_count:,} | {base.count_params():,} |" if keras_count else
                    f"| `{module}` | {_fmt(keras_out[0])}, {_fmt(keras_out[1])} | {_fmt(ours[0])}, {_fmt(ours[1])} "
                    f"| - | {base.count_params():,} |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
