"""A run folder: the one reader and writer of its files.

    config.yaml        every resolved setting, the classes, preprocessing, parameter counts, environment
    history.csv        one row per epoch (see `runs.history`)
    metrics.json       the summary of the history (`run_metrics`)
    split.csv          path,label,split of every image of a listed data set
    state.json         the completed phases of a run and their best scores (resume)
    data_report.json   images per class and split, skipped files
    model.safetensors, labels.json, preprocessing.json   the inference bundle (`runs.bundle`)

Example:
    >>> run = RunFolder("runs/cd")  # doctest: +SKIP
    >>> run.metrics()["best_val_accuracy"], run.config()["model"]  # doctest: +SKIP
    (0.97, 'efficientnet_lite0')
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from .._io import RUN_MARKER, write_json, write_text, write_yaml
from .._version import __version__
from ..errors import MissingFileError, RunFolderError
from .history import read_history, run_metrics, write_history

__all__ = ["RunFolder", "BUNDLE_FILES", "find_bundle"]

BUNDLE_FILES = ("model.safetensors", "labels.json", "preprocessing.json")  # the inference bundle


class RunFolder:
    """The files of one run folder, read and written in one place.

    Args:
        path: The run folder (it need not exist yet).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    # -- reading -------------------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """config.yaml as a dict ({} when missing or empty)."""
        path = self.file("config.yaml")
        if not path.is_file():
            return {}
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return data if isinstance(data, dict) else {}

    def history(self) -> list[dict[str, Any]]:
        """history.csv as rows of numbers ([] when missing)."""
        return read_history(self.file("history.csv"))

    def metrics(self) -> dict[str, Any]:
        """metrics.json; for a run that has not finished yet, the same summary computed from history.csv with
        the run's monitor ({} when neither exists)."""
        path = self.file("metrics.json")
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
        rows = self.history()
        if not rows:
            return {}
        monitor = self.config().get("monitor", "val_accuracy")
        return run_metrics(rows, monitor)

    def split_paths(self, split: str) -> list[str]:
        """The image paths of one split ('train' or 'validation') recorded in split.csv ([] when missing)."""
        return [r["path"] for r in self.split_rows() if r.get("split") == split]

    def split_rows(self) -> list[dict[str, str]]:
        path = self.file("split.csv")
        if not path.is_file():
            return []
        with path.open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))

    def state(self) -> dict[str, Any]:
        """state.json: {'completed': [phase, ...], 'scores': {phase: best score}}."""
        path = self.file("state.json")
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
        return {"completed": []}

    def data_report(self) -> dict[str, Any]:
        path = self.file("data_report.json")
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def is_finished(self) -> bool:
        """True once `fit` wrote metrics.json (its last step before the report)."""
        return self.file("metrics.json").is_file()

    def is_nonempty(self) -> bool:
        return self.path.is_dir() and any(self.path.iterdir())

    # -- writing -------------------------------------------------------------------------------------------
    def write_config(self, config: dict[str, Any]) -> Path:
        return write_yaml(self.file("config.yaml"), config)

    def write_history(self, rows: list[dict[str, Any]]) -> Path:
        return write_history(self.file("history.csv"), rows)

    def write_metrics(self, metrics: dict[str, Any]) -> Path:
        return write_json(self.file("metrics.json"), metrics)

    def write_state(self, state: dict[str, Any]) -> Path:
        return write_json(self.file("state.json"), state)

    def write_data_report(self, report: dict[str, Any]) -> Path:
        return write_json(self.file("data_report.json"), report)

    def write_split(self, rows: list[dict[str, Any]]) -> Path:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=("path", "label", "split"))
        writer.writeheader()
        writer.writerows(rows)
        return write_text(self.file("split.csv"), buf.getvalue())

    def is_run_folder(self) -> bool:
        """True for a folder transferlab made: it holds the marker written at creation, or (runs from before
        the marker) nothing but the files and folders a run writes."""
        if not self.path.is_dir():
            return False
        if (self.path / RUN_MARKER).is_file():
            return True
        entries = list(self.path.iterdir())
        return bool(entries) and all(_is_run_entry(e) for e in entries) and (self.path / "config.yaml").is_file()

    def prepare(self, overwrite: bool = False, resume: bool = False,
                protect: Sequence[str | os.PathLike[str] | None] = ()) -> None:
        """Makes the folder ready for a run: new and empty, kept for `resume`, or replaced with `overwrite`,
        which only ever deletes a transferlab run folder (never the data, a folder holding it, the current
        folder, the home folder or anything else).

        Args:
            overwrite: Replace an existing run folder.
            resume: Keep the folder (the run continues).
            protect: Paths that must survive (the data): refusing a run folder that is, or holds, one of them.

        Raises:
            RunFolderError: The folder holds files and neither `overwrite` nor `resume` was asked for, or
                `overwrite` names a folder that is not a run folder, or that holds the data.
            MissingFileError: `resume` of a folder that does not exist or is empty.
        """
        run_dir = self.path
        if self.is_nonempty():
            if resume:
                return
            if not overwrite:
                raise RunFolderError(
                    f"Output folder '{run_dir}' already exists and is not empty. Pass --overwrite to replace it, "
                    f"--resume {run_dir} to continue that run, or choose another --out."
                )
            self._check_deletable(protect)
            shutil.rmtree(run_dir)
        elif resume:
            raise MissingFileError(f"Cannot resume: run folder '{run_dir}' does not exist or is empty.")
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / RUN_MARKER, {"transferlab": __version__, "created": datetime.now().isoformat()})

    def _check_deletable(self, protect: Sequence[str | os.PathLike[str] | None]) -> None:
        real = self.path.resolve()
        special = {Path.cwd().resolve(): "the current folder", Path.home().resolve(): "your home folder",
                   Path(real.anchor): "the file system's root"}
        if real in special:
            raise RunFolderError(f"Refusing --overwrite of '{self.path}': it is {special[real]}. Choose an --out "
                                 "folder of its own, e.g. runs/mine.")
        for item in protect:
            if item and "://" not in str(item):
                data = Path(item).resolve()
                if data == real or real in data.parents:
                    raise RunFolderError(f"Refusing --overwrite of '{self.path}': it holds the data '{item}'. "
                                         "Choose another --out, e.g. runs/mine.")
        if not self.is_run_folder():
            raise RunFolderError(f"Refusing --overwrite of '{self.path}': it is not a transferlab run folder (no "
                                 f"{RUN_MARKER} marker, and it holds files a run does not write). Nothing was "
                                 "deleted. Choose another --out, or empty the folder yourself.")


# what a run writes: anything else in a folder makes `--overwrite` refuse it (a run from before the marker)
_RUN_FILES = {"config.yaml", "history.csv", "history.png", "metrics.json", "split.csv", "state.json",
              "data_report.json", "model.safetensors", "labels.json", "preprocessing.json", "report.html",
              "eval_metrics.json", "confusion_matrix.png", "misclassified.png", "per_class.png", "roc.png", RUN_MARKER}
_RUN_DIRS = {"logs", "lightning_logs"}


def _is_run_entry(entry: Path) -> bool:
    name = entry.name
    if entry.is_dir():
        return name in _RUN_DIRS or name.startswith("export-")
    return name in _RUN_FILES or name.endswith(".ckpt") or (name.startswith(".") and name.endswith(".tmp"))


def find_bundle(path: str | os.PathLike[str]) -> Path:
    """The bundle folder of a run folder, bundle folder or model.safetensors path."""
    path = Path(path)
    if path.is_file() and path.suffix == ".safetensors":
        return path.parent
    if (path / "model.safetensors").is_file():
        return path
    if not path.exists():
        raise MissingFileError(f"'{path}' does not exist. Pass a run folder made by `transferlab train`.")
    raise MissingFileError(
        f"'{path}' holds no model bundle (expected {', '.join(BUNDLE_FILES)}). Pass the run folder of "
        "`transferlab train` or a folder with those files."
    )
