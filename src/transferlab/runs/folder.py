"""A run folder: the one reader and writer of its files, their lock, and what `--overwrite` and exports may delete.

What a run folder holds is declared in `runs.files` (`RUN_FILES`, `RUN_DIRS`, `checkpoint_name`,
`export_folder_name`); this module reads, writes and deletes by those declarations.

Example:
    >>> RunFolder("runs/cd").checkpoint("best", phase=2, phases=2).name
    'best-phase2.ckpt'
    >>> export_folder_name("onnx", int8=True)
    'export-onnx-int8'
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from .._io import RUN_MARKER, safe_yaml, write_json, write_text, write_yaml
from .._version import __version__
from ..errors import DataError, MissingFileError, RunFolderError
from .files import (
    BUNDLE_FILES,
    EVALUATION_FILES,
    EXPORT_MARKER,
    LOCK_FILE,
    RUN_DIRS,
    RUN_FILES,
    SKIPPED_LOG,
    checkpoint_name,
    export_files,
    export_folder_name,
    is_run_entry,
)
from .history import read_history, run_metrics, write_history

__all__ = ["RunFolder", "BUNDLE_FILES", "EVALUATION_FILES", "RUN_FILES", "RUN_DIRS", "find_bundle",
           "checkpoint_name", "export_folder_name", "export_files", "export_folder", "LOCK_FILE", "EXPORT_MARKER",
           "SKIPPED_LOG"]

class RunFolder:
    """The files of one run folder, read and written in one place.

    Args:
        path: The run folder (it need not exist yet).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock: Any = None

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    def checkpoint(self, kind: str, phase: int | None = None, phases: int = 1) -> Path:
        """A checkpoint of the run ('best' or 'last'), or of one of its phases when the run has several."""
        return self.file(checkpoint_name(kind, phase if phases > 1 else None))

    def export_dir(self, fmt: str, int8: bool = False) -> Path:
        return self.file(export_folder_name(fmt, int8))

    # -- reading -------------------------------------------------------------------------------------------
    def _read(self, name: str, parse: Any, what: str) -> Any:
        path = self.file(name)
        try:
            return parse(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError, yaml.YAMLError) as e:
            raise DataError(f"'{path}' is damaged ({str(e).splitlines()[0][:120]}); it should hold {what}. Restore "
                            "it from a copy, or start the run again with --overwrite.") from None

    def config(self) -> dict[str, Any]:
        """config.yaml as a dict ({} when missing or empty)."""
        if not self.file("config.yaml").is_file():
            return {}
        data = self._read("config.yaml", safe_yaml, "the run's settings") or {}
        return data if isinstance(data, dict) else {}

    def history(self) -> list[dict[str, Any]]:
        """history.csv as rows of numbers ([] when missing)."""
        path = self.file("history.csv")
        try:
            return read_history(path)
        except (ValueError, KeyError, TypeError, csv.Error) as e:
            raise DataError(f"'{path}' is damaged ({e}); it should hold one row of numbers per epoch. Restore it from "
                            "a copy, or start the run again with --overwrite.") from None

    def metrics(self) -> dict[str, Any]:
        """metrics.json; for a run that has not finished yet, the same summary computed from history.csv with
        the run's monitor ({} when neither exists)."""
        if self.file("metrics.json").is_file():
            data = self._read("metrics.json", json.loads, "the run's final metrics")
            return data if isinstance(data, dict) else {}
        rows = self.history()
        if not rows:
            return {}
        monitor = self.config().get("monitor", "val_accuracy")
        return run_metrics(rows, monitor if monitor in ("val_accuracy", "val_loss") else "val_accuracy")

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
        if not self.file("state.json").is_file():
            return {"completed": []}
        state = self._read("state.json", json.loads, 'the finished phases, e.g. {"completed": [1]}')
        if not isinstance(state, dict) or not isinstance(state.get("completed", []), list) or not all(
                isinstance(p, int) for p in state.get("completed", [])):
            raise DataError(f"'{self.file('state.json')}' is damaged: it should hold the finished phases, e.g. "
                            '{"completed": [1]}. Restore it from a copy, or start the run again with --overwrite.')
        return {"completed": [], **state}

    def data_report(self) -> dict[str, Any]:
        if not self.file("data_report.json").is_file():
            return {}
        report = self._read("data_report.json", json.loads, "the data report")
        return report if isinstance(report, dict) else {}

    def is_finished(self) -> bool:
        """True once `fit` wrote metrics.json (its last step before the report) for a run that ran to its end (not
        interrupted by Ctrl+C or SIGTERM, not stopped by a diverging loss)."""
        if not self.file("metrics.json").is_file():
            return False
        metrics = self.metrics()
        return not (metrics.get("interrupted") or metrics.get("diverged"))

    def is_nonempty(self) -> bool:
        """Whether the folder holds anything but the marker and lock of a run that never started (a start that
        failed on its settings leaves only those: the corrected command may use the folder)."""
        return self.path.is_dir() and any(e.name not in (RUN_MARKER, LOCK_FILE) for e in self.path.iterdir())

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

    def has_marker(self) -> bool:
        """Whether the folder holds the marker `prepare` writes: a regular file (not a link) with our JSON."""
        marker = self.file(RUN_MARKER)
        if marker.is_symlink() or not marker.is_file():
            return False
        try:
            return isinstance(json.loads(marker.read_text(encoding="utf-8")).get("transferlab"), str)
        except (OSError, UnicodeDecodeError, ValueError, AttributeError):
            return False

    def is_run_folder(self) -> bool:
        """True for a folder transferlab made: it holds the marker written at creation, or (runs from before
        the marker) config.yaml and nothing but the files and folders a run writes."""
        if not self.path.is_dir():
            return False
        if self.has_marker():
            return True
        marker = self.file(RUN_MARKER)
        if marker.exists() or marker.is_symlink():  # a marker no run wrote (empty, foreign, a link): no proof
            return False
        entries = list(self.path.iterdir())
        return bool(entries) and not self.foreign_entries() and (self.path / "config.yaml").is_file()

    def foreign_entries(self) -> list[Path]:
        """What the folder holds that no run, export or evaluation writes (`RUN_FILES`, `RUN_DIRS`, checkpoints,
        export folders holding only what their export wrote), and every link."""
        if not self.path.is_dir():
            return []
        return [e for e in sorted(self.path.iterdir()) if not is_run_entry(e)]

    @contextmanager
    def locked(self) -> Iterator[RunFolder]:
        """Holds the folder's lock for the block (see `lock`)."""
        self.lock()
        try:
            yield self
        finally:
            self.unlock()

    def lock(self) -> None:
        """Takes the folder's lock (a `.transferlab-lock` file, locked with flock), so that two commands never write
        one run folder at once; refuses at once, naming the holder, when another process has it."""
        if self._lock is not None:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        handle = open(self.file(LOCK_FILE), "a+", encoding="utf-8")  # noqa: SIM115 - held until unlock()
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory locks; the folder is still written atomically
            self._lock = handle
            return
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RunFolderError(f"'{self.path}' is being written by another transferlab command ({holder}). Wait "
                                 "for it to finish (or stop it), or choose another --out.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {datetime.now():%Y-%m-%d %H:%M:%S}\n")
        handle.flush()
        self._lock = handle

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing releases the flock
            self._lock = None

    def prepare(self, overwrite: bool = False, resume: bool = False,
                protect: Sequence[str | os.PathLike[str] | None] = ()) -> None:
        """Makes the folder ready for a run and takes its lock (`lock`; `unlock` when the run ends): new and empty,
        kept for `resume`, or emptied with `overwrite`, which deletes only the files and folders a run writes
        (`RUN_FILES`, `RUN_DIRS`, checkpoints, exports) and refuses, deleting nothing, a folder that holds
        anything else, the data, the current folder or the home folder.

        Args:
            overwrite: Replace an existing run folder.
            resume: Keep the folder (the run continues).
            protect: Paths that must survive (the data): refusing a run folder that is, or holds, one of them.

        Raises:
            RunFolderError: The folder holds files and neither `overwrite` nor `resume` was asked for, or
                `overwrite` names a folder that is not a run folder, or holds the data or other files, or another
                command holds its lock.
            MissingFileError: `resume` of a folder that does not exist or is empty.
        """
        run_dir = self.path
        if run_dir.is_symlink() and not run_dir.exists():
            raise RunFolderError(f"--out '{run_dir}' is a link to '{os.readlink(run_dir)}', which does not exist. "
                                 "Create that folder first, or choose another --out, e.g. runs/mine.")
        if run_dir.exists() and not run_dir.is_dir():
            raise RunFolderError(f"--out '{run_dir}' is a file, not a folder. Choose a folder for the run, e.g. "
                                 "runs/mine.")
        if self.is_nonempty():
            if not resume and not overwrite:
                raise RunFolderError(
                    f"Output folder '{run_dir}' already exists and is not empty. Pass --overwrite to replace it, "
                    f"--resume {run_dir} to continue that run, or choose another --out."
                )
            if overwrite and not resume:
                self._check_deletable(protect)
        elif resume:
            raise MissingFileError(f"Cannot resume: run folder '{run_dir}' does not exist or is empty.")
        self.lock()
        try:
            if resume:
                return
            if overwrite and self.is_nonempty():
                self._check_deletable(protect)  # again, under the lock
                for entry in sorted(run_dir.iterdir()):
                    if entry.name != LOCK_FILE:
                        _delete(entry)
            write_json(run_dir / RUN_MARKER, {"transferlab": __version__, "created": datetime.now().isoformat()})
        except BaseException:
            self.unlock()
            raise

    def _check_deletable(self, protect: Sequence[str | os.PathLike[str] | None]) -> None:
        real = self.path.resolve()
        special = {Path.cwd().resolve(): "the current folder", Path.home().resolve(): "your home folder",
                   Path(real.anchor): "the file system's root"}
        if real in special:
            raise RunFolderError(f"Refusing --overwrite of '{self.path}': it is {special[real]}. Choose an --out "
                                 "folder of its own, e.g. runs/mine.")
        if self.path.is_symlink():
            raise RunFolderError(f"Refusing --overwrite of '{self.path}': it is a link to '{real}'. Nothing was "
                                 "deleted. Pass the folder itself, or choose another --out.")
        for item in protect:
            if item and "://" not in str(item):
                data = Path(item).resolve()
                if data == real or real in data.parents:
                    raise RunFolderError(f"Refusing --overwrite of '{self.path}': it holds the data '{item}'. "
                                         "Choose another --out, e.g. runs/mine.")
        if not self.is_run_folder():
            raise RunFolderError(f"Refusing --overwrite of '{self.path}': it is not a transferlab run folder (no "
                                 f"{RUN_MARKER} marker written by a run, or it holds files a run does not write). "
                                 "Nothing was deleted. Choose another --out, or empty the folder yourself.")
        foreign = self.foreign_entries()
        if foreign:
            listed = ", ".join(repr(e.name) for e in foreign[:10]) + (f" and {len(foreign) - 10} more"
                                                                       if len(foreign) > 10 else "")
            raise RunFolderError(f"Refusing --overwrite of '{self.path}': besides the run's own files it holds "
                                 f"{listed}, which no run wrote. Nothing was deleted. Move them out of the folder "
                                 "(or choose another --out) and run the command again.")


def _delete(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    else:
        entry.unlink(missing_ok=True)


@contextmanager
def export_folder(target: str | os.PathLike[str]) -> Iterator[Path]:
    """The folder an export writes into, locked for the block: new, empty, or one an earlier export made (whose
    files, as its marker lists them, are replaced); a folder holding anything else is refused, listing it, before
    anything is written. When the block ends (even by an error) the marker lists what the folder now holds.

    Example:
        >>> with export_folder("runs/cd/export-onnx") as target:  # doctest: +SKIP
        ...     (target / "model.onnx").write_bytes(data)
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise RunFolderError(f"--out '{target}' is a file, not a folder. Choose a folder for the export.")
    earlier = export_files(target) or []
    if RunFolder(target).is_nonempty():
        own = {*earlier, EXPORT_MARKER, LOCK_FILE}
        foreign = sorted(e.name for e in target.iterdir() if e.name not in own or e.is_symlink())
        if export_files(target) is None or foreign:
            listed = ", ".join(repr(n) for n in (foreign or sorted(e.name for e in target.iterdir()))[:10])
            raise RunFolderError(f"Refusing to export into '{target}': it holds {listed}, which no export of "
                                 "transferlab wrote, and an export would replace or mix with them. Nothing was "
                                 "written. Choose an empty or new --out folder.")
    folder = RunFolder(target)
    with folder.locked():
        for name in earlier:
            _delete(target / name)
        try:
            yield target
        finally:
            written = sorted(e.name for e in target.iterdir() if e.name not in (EXPORT_MARKER, LOCK_FILE)
                             and not (e.name.startswith(".") and e.name.endswith(".tmp")))
            write_json(target / EXPORT_MARKER, {"transferlab": __version__, "files": written})


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
