"""The course's "CNN performance improvement techniques", as one measured study.

The course CNN is trained with the same budget (epochs, data, learning rate, seed) as a baseline and with
each technique: dropout 20% / 30% / 50%, weight regularisation (L2, Keras' `l2(0.001)`), data augmentation
(the course's generator: shifts 0.1 + horizontal flip), dropout + augmentation, and dropout + augmentation +
batch normalisation. The result is a table (best validation accuracy, its epoch, the train/validation gap,
time) and an overlay of the validation curves.

Example:
    >>> rows = regularization_study("cats_vs_dogs", "study", epochs=10, subset=500)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from .._console import log_console
from .._io import write_json, write_text
from ..errors import SettingError
from ..evaluation.compare import compare_runs, markdown_table
from ..runs.folder import RunFolder
from ..runs.history import chance_warning
from ..training.config import TrainConfig

__all__ = ["VARIANTS", "regularization_study"]

# name -> (TrainConfig overrides, description)
VARIANTS: dict[str, tuple[dict[str, Any], str]] = {
    "baseline": ({"model_kwargs": {"drop_rate": 0.0}}, "the course CNN, no regularisation"),
    "dropout20": ({"model_kwargs": {"drop_rate": 0.2}}, "Dropout(0.2) before the dense layer"),
    "dropout30": ({"model_kwargs": {"drop_rate": 0.3}}, "Dropout(0.3)"),
    "dropout50": ({"model_kwargs": {"drop_rate": 0.5}}, "Dropout(0.5), the course CNN's own"),
    "weight_l2": ({"model_kwargs": {"drop_rate": 0.0}, "weight_decay": 2e-3},
                  "L2 weight regularisation (Keras l2(0.001): gradient 0.002 w)"),
    "augment": ({"model_kwargs": {"drop_rate": 0.0}, "augment": "light"},
                "data augmentation (shifts 0.1, horizontal flip)"),
    "dropout_augment": ({"model_kwargs": {"drop_rate": 0.5}, "augment": "light"}, "dropout 50% + augmentation"),
    "dropout_augment_bn": ({"model_kwargs": {"drop_rate": 0.5, "batch_norm": True}, "augment": "light"},
                           "dropout 50% + augmentation + batch normalisation"),
}


def regularization_study(data: str | os.PathLike[str], out: str | os.PathLike[str], epochs: int = 10,
                         subset: int | None = None, image_size: int | None = None, batch_size: int = 32,
                         lr: float = 1e-4, seed: int = 42, variants: list[str] | None = None,
                         num_workers: int | None = None, quiet: bool = True) -> list[dict[str, Any]]:
    """Trains every variant into `out/<variant>` and writes `out/study.md`, `out/study.json`, `out/compare.png`.

    Runs already finished in `out` (a metrics.json) are kept, so an interrupted study resumes where it stopped.
    """
    from ..training.fit import fit

    names = variants or list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SettingError(f"Unknown study variant(s) {unknown}; choose from {list(VARIANTS)}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = TrainConfig(data=str(data), model="course_cnn", weights="none", strategy="full", epochs=epochs,
                       batch_size=batch_size, lr=lr, seed=seed, subset=subset, image_size=image_size,
                       patience=0, num_workers=num_workers)
    console = log_console(quiet)
    runs = []
    for i, name in enumerate(names, start=1):
        overrides, description = VARIANTS[name]
        run_dir = out / name
        finished = RunFolder(run_dir).is_finished()
        console.print(f"Variant {i}/{len(names)}: {name} ({description})" + (" - finished before, kept" if finished
                                                                             else ""), highlight=False)
        if not finished:  # an unfinished run is started again
            fit(replace(base, out=str(run_dir), **overrides), overwrite=True, quiet=quiet)
        runs.append(run_dir)
    rows = compare_runs(runs, out)
    classes = RunFolder(runs[0]).config().get("classes") or []
    finals = [RunFolder(run).metrics() for run in runs]
    if finals and all(m.get("at_chance") for m in finals):
        console.print(f"[yellow]Warning:[/] every variant: {chance_warning(finals[0], len(classes))} The comparison "
                      "says nothing yet.", highlight=False)
    for row, name in zip(rows, names):
        row["variant"], row["description"] = name, VARIANTS[name][1]
    write_text(out / "study.md", markdown_table(rows, [
        ("variant", "variant", "{}"), ("what", "description", "{}"),
        ("best val_accuracy", "best_val_accuracy", "{:.4f}"), ("best epoch", "best_epoch", "{}"),
        ("train-val gap", "train_val_gap", "{:+.4f}"), ("best val_loss", "best_val_loss", "{:.4f}"),
        ("seconds", "seconds", "{}")]))
    write_json(out / "study.json", {"settings": json.loads(json.dumps(base.to_dict(), default=str)), "rows": rows})
    return rows
