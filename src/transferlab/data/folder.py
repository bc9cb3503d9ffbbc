"""Finding the images of a data set folder: layout, classes, split, skipped files, and a report."""

from __future__ import annotations

import os
import random
import unicodedata
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .._io import RUN_MARKER, file_digest
from ..errors import DataError
from .images import check_image, is_image_file, is_virtual
from .splits import SPLIT_NAMES, names_of, split_of

__all__ = ["Sample", "DataSplits", "load_folders", "load_csv", "scan_class_folders", "link_class_folders",
           "VALIDATION_NAMES", "find_duplicates", "duplicate_groups"]

VALIDATION_NAMES = names_of("validation")  # validation/, val/, valid/ (`data.splits`)


@dataclass(frozen=True)
class Sample:
    """One labelled image file."""

    path: str
    label: int


@dataclass
class DataSplits:
    """A data set resolved into training and validation samples.

    Attributes:
        root: The data folder.
        classes: Class names, sorted; a sample's label indexes this list.
        train: Training samples.
        validation: Validation samples.
        layout: 'train/validation' (given folders) or 'split' (one folder split by `val_split`).
        skipped: Files left out, each {"path", "reason"}.
        test_dir: A `test/` folder left for evaluation, if present.
        val_split: The validation fraction used for 'split' layouts.
        seed: The seed of that split.
    """

    root: str
    classes: list[str]
    train: list[Sample]
    validation: list[Sample]
    layout: str
    skipped: list[dict[str, str]] = field(default_factory=list)
    test_dir: str | None = None
    val_split: float | None = None
    seed: int | None = None

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per class and split."""
        out = {}
        for split, samples in (("train", self.train), ("validation", self.validation)):
            c = Counter(s.label for s in samples)
            out[split] = {name: c.get(i, 0) for i, name in enumerate(self.classes)}
        return out

    def report(self) -> dict[str, Any]:
        """The content of `data_report.json`."""
        return {
            "root": self.root,
            "layout": self.layout,
            "classes": self.classes,
            "num_train": len(self.train),
            "num_validation": len(self.validation),
            "counts": self.counts(),
            "val_split": self.val_split,
            "seed": self.seed,
            "test_dir": self.test_dir,
            "skipped": self.skipped,
        }

    def subset(self, per_class: int, seed: int = 42) -> DataSplits:
        """At most `per_class` training and `max(1, per_class // 4)` validation images per class, drawn
        reproducibly with `seed`.

        Example:
            >>> small = load_image_folder("cifar10-jpg").subset(500)  # doctest: +SKIP
        """
        import random

        rng = random.Random(seed)

        def pick(samples: list[Sample], n: int) -> list[Sample]:
            out = []
            for label in range(len(self.classes)):
                members = [s for s in samples if s.label == label]
                out += sorted(rng.sample(members, n), key=lambda s: s.path) if len(members) > n else members
            return out

        return replace(self, train=pick(self.train, per_class), validation=pick(self.validation,
                                                                                  max(1, per_class // 4)))

    streamed = False  # the protocol `data.sources.open_source` returns: listed here, streamed in `StreamSource`

    def log_skipped_to(self, path: str) -> None:
        """Listed data found its unreadable files when it was listed (`skipped`): nothing is logged later."""

    def validation_samples(self) -> list[Sample]:
        """The validation images as a list (what the report at the end of training scores)."""
        return self.validation

    def find_duplicates(self) -> dict[str, Any]:
        """Identical files within and across the splits (`find_duplicates`): what `data info` would say about
        leaks, said by `train` too."""
        return find_duplicates(self)

    def split_rows(self) -> list[dict[str, str]]:
        """Rows of `split.csv`: every sample with its split and class, to reproduce the split."""
        rows = []
        for split, samples in (("train", self.train), ("validation", self.validation)):
            rows += [{"path": s.path, "label": self.classes[s.label], "split": split} for s in samples]
        return rows


IGNORED_DIRS = frozenset({"__MACOSX", "__pycache__", "@eaDir", "$RECYCLE.BIN"})
IGNORED_FILES = frozenset({"Thumbs.db", "desktop.ini"})


def _ignored(name: str) -> bool:
    """Hidden files and folders, macOS/Windows/NAS metadata: never data, never reported."""
    return name.startswith(".") or name in IGNORED_DIRS or name in IGNORED_FILES


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not _ignored(p.name) and not _is_run(p))


def _is_run(folder: Path) -> bool:
    """A transferlab run folder (its marker), or a folder of run folders (`runs/`, where `train` and the studio
    put them) with no images of its own: pictures of a run are no class of the data."""
    if (folder / RUN_MARKER).is_file():
        return True
    entries = list(folder.iterdir()) if os.access(folder, os.R_OK | os.X_OK) else []
    return any((e / RUN_MARKER).is_file() for e in entries) and not any(is_image_file(e) for e in entries)


def _files(folder: Path) -> list[Path]:
    """Every file below `folder`, following links but never the same real folder twice (no symlink loops)."""
    out = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not _ignored(d))
        out += [Path(dirpath) / f for f in sorted(filenames) if not _ignored(f)]
    return out


def class_label(name: str) -> str:
    """A class name in Unicode NFC: folder names made on macOS (decomposed, NFD) and elsewhere (composed) that
    read the same are one class, and labels.json holds the form every other program writes.

    Example:
        >>> class_label("cafe\u0301") == "caf\u00e9"
        True
    """
    return unicodedata.normalize("NFC", name)


def scan_class_folders(folder: Path, workers: int = 8) -> tuple[dict[str, list[str]], list[dict[str, str]]]:
    """Returns ({class name: readable image paths}, skipped files) for `folder/<class>/**`.

    Every file is decoded once (at reduced scale), so unreadable files are found before training.
    """
    per_class: dict[str, list[Path]] = {}
    for d in _class_dirs(folder):  # one class per name as people read it: 'café' typed on a Mac (NFD) is 'café'
        per_class.setdefault(class_label(d.name), []).extend(_files(d))
    candidates = [p for paths in per_class.values() for p in paths if is_image_file(p)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        errors = dict(zip(candidates, (err for err, _ in pool.map(check_image, candidates))))
    images: dict[str, list[str]] = {}
    skipped: list[dict[str, str]] = [{"path": str(d), "reason": "transferlab run folder(s), not a class: left out"}
                                     for d in sorted(folder.iterdir()) if d.is_dir() and _is_run(d)]
    for name, paths in per_class.items():
        images[name] = []
        for p in paths:
            if not is_image_file(p):
                skipped.append({"path": str(p), "reason": f"not an image file (extension {p.suffix or 'none'!r})"})
            elif errors[p]:
                skipped.append({"path": str(p), "reason": errors[p]})
            else:
                images[name].append(str(p))
    return images, skipped


def _check_classes(images: dict[str, list[str]], folder: Path) -> None:
    if not images and folder.is_file():  # an index (CSV/TSV) with no usable rows
        raise DataError(
            f"Index '{folder}' lists no readable images: it needs rows of path,label (e.g. 'cats/1.jpg,cat'), after "
            "an optional header line, with paths relative to the file; see the skipped files, if any, above."
        )
    if not images:
        raise DataError(
            f"No class folders found in '{folder}'. Expected one sub-folder per class (e.g. "
            f"'{folder}/cats/', '{folder}/dogs/') holding the images, or train/ and validation/ folders "
            "each organised that way."
        )
    empty = [name for name, paths in images.items() if not paths]
    if empty:
        raise DataError(
            f"Class folder(s) {', '.join(repr(str(folder / e)) for e in empty)} contain no readable images. "
            "Add images or remove the folder(s); see the skipped files in the report above."
        )
    if len(images) < 2:
        raise DataError(
            f"Found only one class ({next(iter(images))!r}) in '{folder}'; a classifier needs at least 2 class "
            "folders."
        )


def stratified_split(images: dict[str, list[str]], val_split: float, seed: int) -> tuple[dict, dict]:
    """Stratified, seeded split: each class is shuffled and its first round(n * val_split) go to validation."""
    rng = random.Random(seed)
    train, val = {}, {}
    for name, paths in images.items():
        if len(paths) < 2:
            raise DataError(
                f"Class {name!r} has only {len(paths)} image; at least 2 are needed to split it into train and "
                "validation. Add images, or provide separate train/ and validation/ folders."
            )
        shuffled = sorted(paths)
        rng.shuffle(shuffled)
        n_val = min(len(paths) - 1, max(1, round(len(paths) * val_split)))
        val[name], train[name] = sorted(shuffled[:n_val]), sorted(shuffled[n_val:])
    return train, val


def _samples(images: dict[str, list[str]], classes: list[str]) -> list[Sample]:
    index = {c: i for i, c in enumerate(classes)}
    return [Sample(p, index[name]) for name in classes for p in images.get(name, [])]


def load_folders(root: Path, val_split: float = 0.2, seed: int = 42) -> DataSplits:
    """A folder of split folders (train/ with validation/, val/ or valid/; test/ left out) or of class folders
    (split by `val_split`), as `DataSplits`."""
    if not 0.0 < val_split < 1.0:
        raise DataError(f"The 'val_split' parameter must be between 0 and 1 (e.g. 0.2); got {val_split}.")
    test = next((root / n for n in names_of("test") if (root / n).is_dir()), None)
    test_dir = str(test) if test is not None else None
    train_dir = next((root / n for n in names_of("train") if (root / n).is_dir()), None)
    val_dir = next((root / n for n in VALIDATION_NAMES if (root / n).is_dir()), None)
    if train_dir is not None:
        train_images, skipped = scan_class_folders(train_dir)
        _check_classes(train_images, train_dir)
        if val_dir is None:
            train_images, val_images = stratified_split(train_images, val_split, seed)
            layout, used_split, used_seed = "split", val_split, seed
        else:
            val_images, val_skipped = scan_class_folders(val_dir)
            skipped += val_skipped
            _check_classes(val_images, val_dir)
            only_train = sorted(set(train_images) - set(val_images))
            only_val = sorted(set(val_images) - set(train_images))
            if only_train or only_val:
                raise DataError(
                    f"The class folders of '{train_dir}' and '{val_dir}' differ: only in {train_dir.name}: "
                    f"{only_train}, only in {val_dir.name}: {only_val}. Give both the same class folders."
                )
            layout, used_split, used_seed = f"{train_dir.name}/{val_dir.name}", None, None
    else:
        ignore = set(SPLIT_NAMES)
        images, skipped = scan_class_folders(root)
        images = {k: v for k, v in images.items() if k.lower() not in ignore}
        _check_classes(images, root)
        train_images, val_images = stratified_split(images, val_split, seed)
        layout, used_split, used_seed = "split", val_split, seed
    classes = sorted(train_images)
    return DataSplits(str(root), classes, _samples(train_images, classes), _samples(val_images, classes),
                      layout, skipped, test_dir, used_split, used_seed)


def load_csv(path: str | os.PathLike[str], val_split: float = 0.2, seed: int = 42) -> DataSplits:
    """Reads a CSV/TSV of `path,label` rows (paths relative to the file; an optional `split` column with the names
    of `data.splits`: train, validation, and test rows, which are left for `evaluate`). Missing or unreadable files
    are skipped and reported.

    Example:
        >>> load_csv("labels.csv").classes  # doctest: +SKIP
        ['cat', 'dog']
    """
    from .index import read_index_rows

    path = Path(path)
    candidates: list[tuple[Path, str, str | None]] = []
    skipped: list[dict[str, str]] = []
    for row in read_index_rows(str(path)):  # the same reader as streamed indexes: the same files work
        file = (path.parent / row.path).resolve()
        split = split_of(row.split) if row.split else None
        if row.split and split is None:
            raise DataError(f"CSV '{path}' line {row.line}: unknown split {row.split!r}; use one of "
                            f"{', '.join(SPLIT_NAMES)} (test rows are left for `transferlab evaluate`).")
        if split == "test":  # left for `evaluate`
            continue
        candidates.append((file, row.label, split))
    with ThreadPoolExecutor(max_workers=8) as pool:
        checks = list(pool.map(lambda c: check_image(c[0]) if c[0].is_file() else ("file not found", None),
                               candidates))
    train: dict[str, list[str]] = {}
    val: dict[str, list[str]] = {}
    unsplit: dict[str, list[str]] = {}
    for (file, label, split), (err, _) in zip(candidates, checks):
        if err:
            skipped.append({"path": str(file), "reason": err})
            continue
        target = unsplit if split is None else (train if split == "train" else val)
        target.setdefault(label, []).append(str(file))
    if unsplit:
        _check_classes(unsplit, path)
        more_train, more_val = stratified_split(unsplit, val_split, seed)
        for k, v in more_train.items():
            train.setdefault(k, []).extend(v)
        for k, v in more_val.items():
            val.setdefault(k, []).extend(v)
    _check_classes(train, path)
    missing = sorted(set(train) - set(val))
    if missing:
        raise DataError(f"CSV '{path}': classes {missing} have no validation images; add rows or drop the split "
                         "column so the split is made for you.")
    classes = sorted(train)
    layout = "csv" if not unsplit else "csv+split"
    return DataSplits(str(path), classes, _samples(train, classes), _samples(val, classes), layout, skipped, None,
                      val_split if unsplit else None, seed if unsplit else None)


def link_class_folders(source: str | os.PathLike[str], root: str | os.PathLike[str],
                       classes: list[str] | None = None, splits: dict[str, str] | None = None) -> Path:
    """Makes `root/train/CLASS` and `root/validation/CLASS` symbolic links to the class folders of another tree
    (by default its train/ and test/ splits, as in the CIFAR-10 JPEG tree): a training folder of some classes
    without copying a file.

    Example:
        >>> link_class_folders("cifar10-jpg", "catdog", ["cat", "dog"])  # doctest: +SKIP
        PosixPath('catdog')
    """
    source, root = Path(source), Path(root)
    splits = splits or {"train": "train", "validation": "test"}
    first = source / next(iter(splits.values()))
    if not first.is_dir():
        raise DataError(f"'{first}' is not a folder; pass a tree with {sorted(set(splits.values()))} class folders.")
    names = classes or sorted(p.name for p in first.iterdir() if p.is_dir())
    for split, origin in splits.items():
        for name in names:
            folder = source / origin / name
            if not folder.is_dir():
                raise DataError(f"Class folder '{folder}' does not exist; check the class names {names}.")
            target = root / split / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.symlink_to(folder.resolve(), target_is_directory=True)
    return root


def find_duplicates(splits: Any) -> dict[str, Any]:
    """Identical files (by content) within and across the splits of a listed data set: {'groups', 'leakage',
    'conflicting', 'warnings'}. `train` runs it too, so a leak `data info` would report is never silent.
    (The file digests are memoised: the feature cache's keys reuse them.)

    Example:
        >>> find_duplicates(load_image_folder("data"))["warnings"]  # doctest: +SKIP
        ['1 image(s) appear in both train and validation: ...']
    """
    items = [(split, s) for split, samples in (("train", splits.train), ("validation", splits.validation))
             for s in samples if not is_virtual(s.path)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        digests = list(pool.map(lambda it: file_digest(it[1].path), items))
    return duplicate_groups(items, digests, splits.classes)


def duplicate_groups(items: list, digests: list[str], classes: list[str]) -> dict[str, Any]:
    by_hash: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for (split, sample), digest in zip(items, digests):
        by_hash[digest].append((split, sample.path, classes[sample.label]))
    groups = [g for g in by_hash.values() if len(g) > 1]
    leaks = [g for g in groups if {s for s, _, _ in g} == {"train", "validation"}]
    conflicting = [g for g in groups if len({c for _, _, c in g}) > 1]
    warnings = []
    if leaks:
        warnings.append(f"{len(leaks)} image(s) appear in both train and validation: validation accuracy is "
                        "inflated. Remove the copies from one split (`transferlab data info DATA` names them).")
    if conflicting:
        warnings.append(f"{len(conflicting)} identical image(s) carry different labels: "
                        + "; ".join(" = ".join(f"{p} ({c})" for _, p, c in g) for g in conflicting[:3])
                        + ("; ..." if len(conflicting) > 3 else "") + ".")
    return {"groups": [[{"split": s, "path": p, "label": c} for s, p, c in g] for g in groups],
            "leakage": len(leaks), "conflicting": len(conflicting), "warnings": warnings}
