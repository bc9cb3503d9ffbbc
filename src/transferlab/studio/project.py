"""A studio project: a plain folder of class folders (`PROJECT/<class>/*.jpg`), its run folders under
`PROJECT/runs/`, and the studio's own bookkeeping under `PROJECT/.studio/` (hidden: never read as data).

The command line and notebooks read the same folder: `transferlab train PROJECT` trains on exactly the images the
studio shows, and `transferlab evaluate PROJECT/runs/<run>` opens a run the studio trained.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import time
import unicodedata
from pathlib import Path
from typing import Any

from .._io import atomic_path, file_digest, write_json
from ..data.folder import IGNORED_DIRS, _class_dirs, _files, _ignored, _is_run
from ..data.images import IMAGE_EXTENSIONS, is_image_file
from ..errors import DataError, SettingError

__all__ = ["Project", "RUNS_DIR", "STUDIO_DIR", "MAX_CLASS_NAME", "MAX_PIXELS", "recent_projects", "remember"]

RUNS_DIR = "runs"  # PROJECT/runs/<run>: what the studio trains
STUDIO_DIR = ".studio"  # PROJECT/.studio/: jobs (events, logs), the trash and the journal of changes
MAX_CLASS_NAME = 64
MAX_PIXELS = 50_000_000  # like `serve`: an image with more pixels than this is refused, not decoded
MAX_IMAGE_BYTES = 30 * 2**20
MIN_IMAGES = 10  # fewer training images in a class than this: a warning
_RESERVED = {RUNS_DIR, STUDIO_DIR, "train", "validation", "test", *IGNORED_DIRS}


def class_name(text: str) -> str:
    """A class name as a folder name: NFC Unicode (the same name typed on a Mac and on Windows is one class),
    trimmed; refuses names a folder cannot have or that the layout reserves.

    Example:
        >>> class_name("  고양이 ")
        '고양이'
    """
    name = unicodedata.normalize("NFC", str(text)).strip()
    problem = None
    if not name:
        problem = "it is empty"
    elif len(name) > MAX_CLASS_NAME:
        problem = f"it has {len(name)} characters; the limit is {MAX_CLASS_NAME}"
    elif re.search(r'[/\\:*?"<>|\x00-\x1f]', name):
        problem = 'it holds a character a folder name cannot have (/ \\ : * ? " < > | or a control character)'
    elif _ignored(name) or name.lower() in {r.lower() for r in _RESERVED} or name in {".", ".."}:
        problem = "the project layout reserves it (hidden names, runs, train, validation, test)"
    if problem:
        raise SettingError(f"Class name {name[:80]!r} cannot be used: {problem}. Choose another name, e.g. 'cats'.")
    return name


def _file_name(text: str, fallback: str) -> str:
    """A safe file name from an upload's name: its last path part, NFC, without characters folders refuse."""
    name = unicodedata.normalize("NFC", str(text).replace("\\", "/").rsplit("/", 1)[-1]).strip()
    name = re.sub(r'[:*?"<>|\x00-\x1f]', "_", name).lstrip(".")
    stem, ext = os.path.splitext(name)
    return (stem[:100] or fallback) + ext.lower()


class Project:
    """One project folder.

    Example:
        >>> project = Project("my-photos")  # doctest: +SKIP
        >>> project.add_class("cats")  # doctest: +SKIP
        >>> project.add_images("cats", [("a.jpg", open("a.jpg", "rb").read())])  # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        if self.root.exists() and not self.root.is_dir():
            raise SettingError(f"Project '{self.root}' is a file, not a folder. Pass a folder (it may be new).")
        self._digests: dict[str, str] | None = None  # content hash -> relative path, built on first upload

    # --- what is there -------------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.root.name

    @property
    def studio_dir(self) -> Path:
        return self.root / STUDIO_DIR

    @property
    def runs_dir(self) -> Path:
        return self.root / RUNS_DIR

    @property
    def layout(self) -> str:
        """'split' for train/ and validation/ folders of classes (new images go to train/), else 'flat'."""
        return "split" if (self.root / "train").is_dir() else "flat"

    @property
    def data_root(self) -> Path:
        """The folder whose sub-folders are the classes (PROJECT, or PROJECT/train)."""
        return self.root / "train" if self.layout == "split" else self.root

    def class_dirs(self) -> list[Path]:
        """The class folders (the data layout `train` reads: hidden, run and `runs` folders are none)."""
        if not self.data_root.is_dir():
            return []  # `runs/` is excluded by name too: before its first run folder exists, it is an empty folder
        return sorted((p for p in _class_dirs(self.data_root) if p.name != RUNS_DIR), key=lambda p: p.name.lower())

    def images(self, label: str) -> list[Path]:
        """The images of a class (in split layout: its train/ and validation/ images)."""
        folders = [self.class_folder(label)]
        if self.layout == "split":
            folders.append(self.root / "validation" / class_name(label))
        return [p for folder in folders if folder.is_dir() for p in _files(folder) if is_image_file(p)]

    def classes(self, samples: int = 8) -> list[dict[str, Any]]:
        """Per class: name, image count and the first `samples` image paths (relative to the project)."""
        out = []
        for folder in self.class_dirs():
            images = self.images(folder.name)
            out.append({"name": folder.name, "count": len(images),
                        "samples": [self.relative(p) for p in images[:samples]]})
        return out

    def runs(self) -> list[dict[str, Any]]:
        """The studio's run folders, newest first, with their best validation accuracy when they finished."""
        import json

        if not self.runs_dir.is_dir():
            return []
        out = []
        for run in self.runs_dir.iterdir():
            if not _is_run(run):
                continue
            metrics: dict[str, Any] = {}
            try:
                metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                pass
            out.append({"name": run.name, "modified": run.stat().st_mtime,
                        "best_val_accuracy": metrics.get("best_val_accuracy"),
                        "finished": (run / "model.safetensors").is_file()})
        return sorted(out, key=lambda r: -r["modified"])

    def relative(self, path: Path) -> str:
        return Path(path).resolve().relative_to(self.root).as_posix()

    def inside(self, relative: str) -> Path:
        """A path below the project from a client's relative path; refuses anything that leaves the project."""
        path = (self.root / unicodedata.normalize("NFC", str(relative))).resolve()
        if path == self.root or self.root not in path.parents:
            raise SettingError(f"Path {str(relative)[:80]!r} is not inside the project.")
        return path

    def class_folder(self, label: str) -> Path:
        return self.data_root / class_name(label)

    def checks(self) -> dict[str, Any]:
        """What `transferlab data info` finds, for the page: images per class and split, warnings (imbalance,
        too few images, leakage), unreadable files and groups of identical images, paths relative to the project.
        Data that cannot be trained on yet (one class, an empty class) is a check that failed, not an error."""
        from ..data.info import data_info

        try:
            report = data_info(self.root)
        except DataError as e:
            return {"ready": False, "problem": str(e), "classes": [], "counts": {}, "warnings": [],
                    "skipped": [], "duplicates": []}
        train = report["counts"]["train"]
        warnings = list(report["warnings"])
        few = [name for name in report["classes"] if train.get(name, 0) < MIN_IMAGES]
        if few:
            warnings.append(f"Few images in {', '.join(few)} (fewer than {MIN_IMAGES} for training): add more "
                            "for a model you can trust.")

        def rel(path: str) -> str:
            try:
                return Path(path).resolve().relative_to(self.root).as_posix()
            except ValueError:
                return path

        return {"ready": True, "problem": None, "classes": report["classes"], "counts": report["counts"],
                "warnings": warnings, "image_size": report["image_size"],
                "skipped": [{**s, "path": rel(s["path"])} for s in report["skipped"]
                            if "run folder" not in s["reason"]],
                "duplicates": [[{**d, "path": rel(d["path"])} for d in group] for group in report["duplicates"]]}

    # --- changes -------------------------------------------------------------------------------------------------
    def add_class(self, label: str) -> str:
        name = class_name(label)
        folder = self.root / name
        existing = {p.name.lower(): p.name for p in self.class_dirs()}
        if name.lower() in existing:
            raise SettingError(f"Class {existing[name.lower()]!r} already exists. Choose another name.")
        folder.mkdir(parents=True)
        self.journal("add_class", label=name)
        return name

    def add_images(self, label: str, files: list[tuple[str, bytes]]) -> dict[str, list]:
        """Saves uploaded images into a class folder: checked from their bytes (an image, within the size and
        pixel limits), exact duplicates of an image already in the project skipped (by content), each written
        atomically under its own name (a new name when another image has it).

        Returns {"added": [relative paths], "duplicates": [{"name", "of"}], "refused": [{"name", "reason"}]}.
        """
        folder = self.class_folder(label)
        if not folder.is_dir():
            raise SettingError(f"Class {label!r} does not exist. Create it first.")
        digests = self._digest_index()
        added: list[str] = []
        duplicates: list[dict[str, str]] = []
        refused: list[dict[str, str]] = []
        for original, data in files:
            problem, extension = inspect_image(data)
            if problem:
                refused.append({"name": str(original)[:200], "reason": problem})
                continue
            digest = hashlib.sha1(data).hexdigest()
            if digest in digests:
                duplicates.append({"name": str(original)[:200], "of": digests[digest]})
                continue
            name = _file_name(original, f"image-{digest[:10]}")
            if Path(name).suffix not in IMAGE_EXTENSIONS:
                name = Path(name).stem + extension
            target = _free_name(folder / name)
            with atomic_path(target) as tmp:
                tmp.write_bytes(data)
            digests[digest] = self.relative(target)
            added.append(digests[digest])
        if added:
            self.journal("add_images", label=folder.name, count=len(added))
        return {"added": added, "duplicates": duplicates, "refused": refused}

    def import_folder(self, folder: Path, label: str | None = None, chunk: int = 100) -> dict[str, Any]:
        """Copies the images of a folder on this computer into the project (the folder is read, never changed):
        all of them into class `label`, or, without a label, each sub-folder into the class of its name (made
        when missing). The same checks and duplicate skipping as uploads.

        Returns {class: {"added": n, "duplicates": n, "refused": [{"name", "reason"}]}}.
        """
        folder = Path(folder)
        if label is not None:
            groups = {self.add_class_if_missing(label): [p for p in _files(folder) if is_image_file(p)]}
        else:
            subfolders = _class_dirs(folder)
            if not subfolders:
                raise SettingError(f"'{folder}' has no sub-folders: pick a class to import its images into, or "
                                   "choose a folder with one sub-folder per class (cats/, dogs/).")
            groups = {self.add_class_if_missing(d.name): [p for p in _files(d) if is_image_file(p)]
                      for d in subfolders}
        out: dict[str, Any] = {}
        for name, paths in groups.items():
            total = {"added": 0, "duplicates": 0, "refused": []}
            for start in range(0, len(paths), chunk):
                files = []
                for path in paths[start:start + chunk]:
                    try:
                        files.append((path.name, path.read_bytes()))
                    except OSError as e:
                        total["refused"].append({"name": str(path), "reason": e.strerror or str(e)})
                done = self.add_images(name, files)
                total["added"] += len(done["added"])
                total["duplicates"] += len(done["duplicates"])
                total["refused"] += done["refused"]
            out[name] = total
        return out

    def add_class_if_missing(self, label: str) -> str:
        name = class_name(label)
        existing = {p.name.lower(): p.name for p in self.class_dirs()}
        return existing[name.lower()] if name.lower() in existing else self.add_class(name)

    def forget_digests(self) -> None:
        """Images moved or removed: the duplicate index is built again on the next upload."""
        self._digests = None

    def _digest_index(self) -> dict[str, str]:
        if self._digests is None:
            self._digests = {}
            for folder in self.class_dirs():
                for path in self.images(folder.name):
                    try:
                        self._digests.setdefault(file_digest(path), self.relative(path))
                    except OSError:
                        continue
        return self._digests

    def journal(self, action: str, **details: Any) -> None:
        """Appends one line to PROJECT/.studio/journal.jsonl: what changed, when (the project's history)."""
        import json

        self.studio_dir.mkdir(parents=True, exist_ok=True)
        with open(self.studio_dir / "journal.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"time": round(time.time(), 3), "action": action, **details},
                               ensure_ascii=False) + "\n")

    def new_run_dir(self, model: str) -> Path:
        """A fresh run folder name under PROJECT/runs/ (never an existing one)."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return _free_name(self.runs_dir / f"{model}-{stamp}")


def _recent_file() -> Path:
    from .._runtime import transferlab_home

    return transferlab_home() / "studio-recent.json"


def recent_projects() -> list[str]:
    """The projects the studio opened, newest first (those that still exist; at most 10)."""
    import json

    try:
        recent = json.loads(_recent_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [p for p in recent if isinstance(p, str) and Path(p).is_dir()][:10] if isinstance(recent, list) else []


def remember(project: Project) -> None:
    """Puts `project` first in the list of recent projects."""
    recent = [str(project.root)] + [p for p in recent_projects() if p != str(project.root)]
    write_json(_recent_file(), recent[:10])


def _free_name(path: Path) -> Path:
    """`path`, or `stem-2.ext`, `stem-3.ext`, ...: the first name nothing has."""
    if not path.exists():
        return path
    for i in range(2, 100_000):
        candidate = path.with_name(f"{path.stem}-{i}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise DataError(f"No free name for '{path}'.")


FORMAT_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif"}


def inspect_image(data: bytes) -> tuple[str | None, str]:
    """(why these bytes are not an image the project takes, or None; the file extension of their format), from
    one read of the header."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        return "empty file (0 bytes)", ""
    if len(data) > MAX_IMAGE_BYTES:
        return f"{len(data) / 2**20:.1f} MB; the limit is {MAX_IMAGE_BYTES // 2**20} MB", ""
    try:
        with Image.open(io.BytesIO(data)) as image:
            w, h = image.size
            if w * h > MAX_PIXELS:
                return f"{w}x{h} pixels; the limit is {MAX_PIXELS:,}", ""
            extension = FORMAT_EXTENSIONS.get(image.format or "", ".png")
            image.verify()
    except Image.DecompressionBombError:
        return "declares too many pixels to decode safely", ""
    except UnidentifiedImageError:
        return "not an image (JPEG, PNG, WebP, GIF, BMP or TIFF), whatever its name says", ""
    except Exception as e:  # noqa: BLE001 - truncated or corrupt data
        return f"a damaged image ({str(e)[:80]})", ""
    return None, extension
