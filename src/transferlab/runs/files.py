"""The one list of what a run folder holds: every file and folder a run, an export or an evaluation writes.

The readers, `--overwrite` (which deletes only these), `export --out` (which replaces only an earlier export's
files) and the README's table of a run folder all follow these declarations.

Example:
    >>> checkpoint_name("best", phase=2)
    'best-phase2.ckpt'
    >>> export_folder_name("onnx", int8=True)
    'export-onnx-int8'
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .._io import RUN_MARKER

__all__ = ["BUNDLE_FILES", "EVALUATION_FILES", "RUN_FILES", "RUN_DIRS", "EXPORT_MARKER", "LOCK_FILE", "SKIPPED_LOG",
           "checkpoint_name", "export_folder_name", "export_files", "is_run_entry", "markdown_table"]

BUNDLE_FILES = ("model.safetensors", "labels.json", "preprocessing.json")  # the inference bundle
# what `evaluate` (and the report at the end of training) writes, by role; in the run folder or in `--out`
EVALUATION_FILES = {"metrics": "eval_metrics.json", "confusion_matrix": "confusion_matrix.png",
                    "misclassified": "misclassified.png", "per_class": "per_class.png", "roc": "roc.png",
                    "report": "report.html"}
# every file of a run folder, with what it holds (the README's table of a run folder)
RUN_FILES = {
    "config.yaml": "every resolved setting, the classes, preprocessing, parameter counts, versions",
    "best.ckpt": "Lightning checkpoint of the best epoch (by --monitor; ties: the lower val_loss)",
    "last.ckpt": "Lightning checkpoint of the last epoch, written every epoch (for --resume)",
    "model.safetensors": "the inference bundle's weights (with labels.json and preprocessing.json)",
    "labels.json": "the class names, in the model's output order",
    "preprocessing.json": "input size, mean, std, interpolation, crop: how an image becomes the model's input",
    "history.csv": "per epoch: loss, accuracy, val_loss, val_accuracy, lr, seconds, phase",
    "history.png": "the course's two plots (loss and accuracy, train vs validation) and the learning rate",
    "metrics.json": "best_epoch, best_phase, best_val_accuracy, best_val_loss, wall_seconds, ...",
    "state.json": "the finished phases and their best scores (for --resume)",
    "data_report.json": "images per class and split, every skipped file with its reason, duplicates",
    "split.csv": "path,label,split of every image: the split, reproducible",
    "eval_metrics.json": "the validation split's evaluation (or `transferlab evaluate`'s): accuracy, top-k, "
                         "per-class precision/recall/F1, confusion matrix, ROC AUC, calibration error",
    "confusion_matrix.png": "the confusion matrix (normalised by row above two classes)",
    "misclassified.png": "the misclassified images with the highest loss",
    "per_class.png": "the accuracy of each class",
    "roc.png": "the ROC curve (two classes)",
    "report.html": "one self-contained page: settings, data, history, metrics, confusion matrix, mistakes, timings",
    "mlflow.db": "the --logger mlflow store (when used)",
    "skipped.jsonl": "streamed data: the images the readers could not decode, as they met them",
    RUN_MARKER: "the marker that makes it a run folder: --overwrite deletes only the files listed here",
    ".transferlab-lock": "held while a command writes the folder: a second one is refused, not mixed in",
}
RUN_DIRS = {"logs": "Lightning's CSV logs", "lightning_logs": "Lightning's default logs", "csv": "--logger csv",
            "tensorboard": "--logger tensorboard", "mlartifacts": "--logger mlflow: artifacts, when any are logged"}
EXPORT_MARKER = ".transferlab-export"  # in an export folder: the files the export wrote (JSON {"files": [...]})
SKIPPED_LOG = "skipped.jsonl"
LOCK_FILE = ".transferlab-lock"  # held while a command writes the folder (training, export, evaluation)
assert LOCK_FILE in RUN_FILES and set(EVALUATION_FILES.values()) <= set(RUN_FILES)
CHECKPOINT_KINDS = ("best", "last")
EXPORT_PREFIX = "export-"


def checkpoint_name(kind: str, phase: int | None = None) -> str:
    """A checkpoint's file name: 'best.ckpt' / 'last.ckpt' for the run, 'best-phase2.ckpt' for one phase of a run
    with several.

    Example:
        >>> checkpoint_name("last"), checkpoint_name("best", 1)
        ('last.ckpt', 'best-phase1.ckpt')
    """
    if kind not in CHECKPOINT_KINDS:
        raise ValueError(f"kind must be one of {CHECKPOINT_KINDS}; got {kind!r}")
    return f"{kind}.ckpt" if phase is None else f"{kind}-phase{int(phase)}.ckpt"


def export_folder_name(fmt: str, int8: bool = False) -> str:
    """The default export folder inside a run folder: 'export-onnx', 'export-onnx-int8', 'export-hf', ..."""
    return f"{EXPORT_PREFIX}{fmt}{'-int8' if int8 else ''}"


_CHECKPOINT = re.compile(r"(best|last)(-phase\d+)?\.ckpt")


def export_files(folder: str | os.PathLike[str]) -> list[str] | None:
    """The files an export wrote into `folder`, from its marker (`EXPORT_MARKER`, written by `transferlab export`);
    None when the folder has no such marker (a regular file holding our JSON)."""
    marker = Path(folder) / EXPORT_MARKER
    if marker.is_symlink() or not marker.is_file():
        return None
    try:
        files = json.loads(marker.read_text(encoding="utf-8")).get("files")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return None
    return [str(f) for f in files] if isinstance(files, list) else None


def _is_export_dir(entry: Path) -> bool:
    """An export folder made by `transferlab export` holding nothing but what its marker says it wrote."""
    files = export_files(entry)
    if files is None:
        return False
    own = {*files, EXPORT_MARKER, LOCK_FILE}
    return all(e.name in own or (e.name.startswith(".") and e.name.endswith(".tmp")) for e in entry.iterdir())


def is_run_entry(entry: Path) -> bool:
    """Whether a folder entry is one a run, an export or an evaluation writes (a link never is)."""
    name = entry.name
    if entry.is_symlink():
        return False  # a link is never ours: deleting it is harmless, but it may stand for the user's data
    if entry.is_dir():
        if name in RUN_DIRS:
            return True
        return name.startswith(EXPORT_PREFIX) and _is_export_dir(entry)
    return (name in RUN_FILES or name == LOCK_FILE or bool(_CHECKPOINT.fullmatch(name))
            or (name.startswith(".") and name.endswith(".tmp")))


def markdown_table() -> str:
    """The README's table of a run folder, from these declarations (`python -m transferlab.runs.files` prints it;
    tests/test_run_folder.py checks the README holds it)."""
    rows = ["| file | what |", "| --- | --- |"]
    rows += [f"| `{name}` | {what} |" for name, what in RUN_FILES.items()]
    phase = f"`{checkpoint_name('best', 1)}`, `{checkpoint_name('last', 1)}`, ..."
    rows.append(f"| {phase} | each phase's checkpoints, in a run of several phases (two-phase) |")
    rows += [f"| `{name}/` | {what} |" for name, what in RUN_DIRS.items()]
    rows.append(f"| `{export_folder_name('FORMAT')}/` | `transferlab export` (onnx, onnx-int8, torchscript, hf), with "
                f"its `{EXPORT_MARKER}` list of what it wrote |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
