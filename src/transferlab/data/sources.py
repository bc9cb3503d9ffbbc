"""The one reader of what a user passes as data: every command turns DATA into images through here.

`source_kind` is the one place that tells the forms apart (`SOURCE_KINDS`):

- 'folder': class folders (`DATA/<class>/*`, split by `val_split`), or split folders (`DATA/train/<class>/*` with
  `validation/`, `val/` or `valid/`, and a `test/` left for evaluation: the names of `data.splits`);
- 'index': a CSV/TSV/Parquet index of `path,label[,split]` (the split column uses the same names);
- 'archive': a zip or tar archive of either (extracted once, safely);
- 'cifar': the CIFAR-10 python batches folder (`data get cifar10`), read in place;
- 'shards': a folder of tar shards (`data shard`), which only streams;
- 'image': one image file (predict and classify only).

Three entry points read them, for what each command needs:

- `open_source(data, ...)`: the training and validation splits, listed (`DataSplits`) or streamed
  (`StreamSource`): train, advise, advise --budget, data info, data shard.
- `open_labelled(data, labels, run_dir)`: the labelled images a model is evaluated on, from every form train
  takes (its test split where it has one, else its validation split, else every image): evaluate.
- `list_images(inputs)`: every image, without labels: predict, classify.

Adding a form is one kind in `source_kind` and its branch in each entry point; tests/test_sources.py runs every
kind through all three.

Example:
    >>> source_kind("photos/labels.csv")  # doctest: +SKIP
    'index'
    >>> list_images(["photos/", "labels.csv"])  # doctest: +SKIP
    ['photos/a.jpg', 'photos/b.png', '/data/cats/1.jpg', ...]
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataError, MissingFileError, SettingError
from .images import is_image_file
from .splits import names_of, split_of

if TYPE_CHECKING:
    from .folder import DataSplits, Sample
    from .stream import StreamSource

__all__ = ["SOURCE_KINDS", "INDEX_SUFFIXES", "source_kind", "open_source", "load_image_folder", "open_labelled",
           "LabelledImages", "list_images"]

INDEX_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")
SOURCE_KINDS = ("folder", "index", "archive", "cifar", "shards", "image")
FORMS = ("class folders, train/ and validation/ folders, a CSV/TSV/Parquet index of path,label[,split], a zip or "
         "tar archive of either, a CIFAR-10 batches folder, or a shard folder (`transferlab data shard`)")


def source_kind(data: str | os.PathLike[str]) -> str:
    """Which of `SOURCE_KINDS` DATA is (remote indexes, s3:// and the like, are 'index').

    Raises:
        MissingFileError: DATA does not exist.
    """
    text = str(data)
    if "://" in text and not text.startswith("file://"):
        return "index"
    path = Path(text.removeprefix("file://"))
    if path.is_file():
        from .archive import is_archive

        if is_archive(path):
            return "archive"
        if path.suffix.lower() in INDEX_SUFFIXES:
            return "index"
        return "image"
    if path.is_dir():
        from .cifar import find_cifar_folder
        from .stream import is_shard_folder

        if is_shard_folder(path):
            return "shards"
        if find_cifar_folder(path) is not None:
            return "cifar"
        return "folder"
    raise MissingFileError(f"Data '{path}' does not exist. Pass {FORMS}.")


def open_source(data: str | os.PathLike[str], val_split: float = 0.2, seed: int = 42, stream: bool = False,
                subset: int | None = None, listed: bool = False) -> DataSplits | StreamSource:
    """The training and validation images of DATA, listed or streamed.

    Listed data (`DataSplits`: folders, indexes, archives, CIFAR batches) is walked and every image checked once;
    shard folders and Parquet indexes stream (`StreamSource`), and so does a CSV index with `stream=True`. Both
    offer the same protocol: `classes`, `counts()`, `report()`, `skipped`, `split_rows()`, `find_duplicates()`.

    Args:
        data: What the user passed.
        val_split: The fraction of each class held out when DATA has no validation split.
        seed: The seed of that split and of `subset`.
        stream: Stream a CSV/TSV index instead of listing it.
        subset: At most this many training images per class (listed data only).
        listed: Refuse data that can only stream (commands that need every image's path: advise, data info).
    """
    kind = source_kind(data)
    if kind == "image":
        raise DataError(f"'{data}' is one image; training needs many, labelled: pass {FORMS}.")
    if kind == "archive":
        from .archive import extracted_root

        return open_source(extracted_root(data), val_split, seed, stream, subset, listed)
    streams = stream or kind == "shards" or (kind == "index" and str(data).lower().endswith((".parquet", ".pq")))
    if streams:
        if listed:
            raise DataError(f"'{data}' streams (a shard folder or Parquet index, or --stream); this command needs data "
                            "it can list: a folder of class folders or a CSV index.")
        if subset:
            raise SettingError("--subset needs a folder or CSV that can be listed; it does not apply to streamed data "
                               "(shards, Parquet, --stream). Make a smaller index instead.")
        from .stream import open_stream

        return open_stream(data, val_split)
    if kind == "index":
        if "://" in str(data):
            raise DataError(f"The remote index '{data}' can only stream: pass --stream.")
        from .folder import load_csv

        splits = load_csv(data, val_split=val_split, seed=seed)
    elif kind == "cifar":
        from .cifar import cifar_splits, find_cifar_folder

        splits = cifar_splits(find_cifar_folder(Path(data)))
    else:
        from .folder import load_folders

        splits = load_folders(Path(data), val_split=val_split, seed=seed)
    return splits.subset(int(subset), seed) if subset else splits


def load_image_folder(data: str | os.PathLike[str], val_split: float = 0.2, seed: int = 42) -> DataSplits:
    """Resolves listed data (any form of `data.sources` but the streamed ones) into training and validation samples.

    Accepts `DATA/train/<class>/*` with `DATA/validation/<class>/*` (also `val/` or `valid/`; a `test/`
    folder is left for evaluation), a flat `DATA/<class>/*` split by `val_split` (stratified, seeded), a CSV/TSV
    index, an archive or the CIFAR-10 batches (`data.sources.open_source`, which this calls).

    Args:
        data: The data folder.
        val_split: Fraction of each class held out for validation when there is no validation folder.
        seed: Seed of that split.

    Raises:
        FileNotFoundError: `data` does not exist.
        ValueError: No classes, an empty class, one class only, or train/validation classes that differ.

    Example:
        >>> splits = load_image_folder("cats_and_dogs_filtered")  # doctest: +SKIP
        >>> splits.classes  # doctest: +SKIP
        ['cats', 'dogs']
    """
    return open_source(data, val_split=val_split, seed=seed, listed=True)  # type: ignore[return-value]


@dataclass
class LabelledImages:
    """The images `evaluate` scores: samples labelled in the model's class order, unreadable files, and a
    description of where they came from."""

    samples: list[Sample]
    skipped: list[dict[str, str]] = field(default_factory=list)
    source: str = ""


def open_labelled(data: str | os.PathLike[str], labels: list[str],
                  run_split: tuple[str, list[dict[str, str]]] | None = None) -> LabelledImages:
    """The labelled images to evaluate a model on, from every form `train` takes, labelled in the model's order.

    The split evaluated is DATA's test split where it has one (`test/`, rows marked `test`, CIFAR's test batch),
    else its validation split (`validation/`, rows marked `validation`, validation shards), else every image of it
    (a folder of class folders, an index without a split column). The very folder a run was trained on with a
    split made by `val_split` gives that run's validation split (`run_split`: the data the run was trained on and
    the rows of its split.csv), so training images are never scored. A class may have a single image.

    Raises:
        MissingFileError: DATA does not exist.
        SettingError: A class the model does not know, or no images.
    """
    kind = source_kind(data)
    root = Path(str(data))
    if kind == "archive":
        from .archive import extracted_root

        return open_labelled(extracted_root(data), labels, run_split)
    if kind == "image":
        raise SettingError(f"'{data}' is one image without a label; evaluate needs labelled images: {FORMS}. To see "
                           "what the model says of it, use `transferlab predict`.")
    rows: list[tuple[str, str]]
    skipped: list[dict[str, str]] = []
    if kind == "index":
        from .index import labelled_rows

        rows, skipped, chosen = labelled_rows(str(data), preferring=("test", "validation"))
        source = f"{data}" + (f" (rows marked {chosen})" if chosen else "")
    elif kind == "shards":
        from .stream import shard_samples

        rows, chosen = shard_samples(root, preferring=("test", "validation"))
        source = f"{data} ({chosen} shards)"
    elif kind == "cifar":
        from .cifar import cifar_splits, find_cifar_folder

        splits = cifar_splits(find_cifar_folder(root))
        rows = [(splits.classes[s.label], s.path) for s in splits.validation]
        source = f"{data} (CIFAR-10's test batch)"
    else:
        rows, skipped, source = _folder_rows(root, run_split)
    index = {name: i for i, name in enumerate(labels)}
    unknown = sorted({c for c, _ in rows} - set(index))
    if unknown:
        raise SettingError(f"'{data}' has classes the model was not trained on: {unknown}. The model knows "
                           f"{labels}; give data with (a subset of) those classes.")
    if not rows:
        raise SettingError(f"No images found in '{data}' to evaluate.")
    from .folder import Sample

    samples = [Sample(p, index[c]) for c, p in sorted(rows, key=lambda r: (index[r[0]], r[1]))]
    return LabelledImages(samples, skipped, source)


def _folder_rows(root: Path, run_split: tuple[str, list[dict[str, str]]] | None
                 ) -> tuple[list[tuple[str, str]], list, str]:
    """(class, path) rows of a folder to evaluate: its test/ or validation/ folder, the run's own validation split
    when it is the folder the run was split from, else its class folders."""
    from .folder import scan_class_folders

    sub = next((root / n for split in ("test", "validation") for n in names_of(split) if (root / n).is_dir()), None)
    if sub is None and run_split is not None:
        trained_on, split_rows = run_split
        if trained_on and "://" not in str(trained_on) and Path(trained_on).resolve() == root.resolve() and split_rows:
            rows = [(r["label"], r["path"]) for r in split_rows if split_of(r["split"]) == "validation"]
            return rows, [], f"{root} (the run's validation split, from split.csv)"
    folder = sub or root
    images, skipped = scan_class_folders(folder)
    return [(c, p) for c, paths in images.items() for p in paths], skipped, str(folder)


def list_images(inputs: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Every image named by `inputs`, in order (folders sorted): image files; folders (all images below them);
    indexes (their path column); archives; CIFAR-10 batches (and the class-folder paths a student would expect
    inside them: `cifar-10-batches-py/validation/cat` is the test batch's cats); shard folders (their members).

    Raises:
        MissingFileError: An input does not exist (the message says which forms are accepted).
    """
    out: list[str] = []
    for item in inputs:
        try:
            kind = source_kind(item)
        except MissingFileError:
            from .cifar import cifar_subpath

            found = cifar_subpath(Path(item))
            if found is None:
                raise MissingFileError(f"Image or folder '{item}' does not exist. Pass image files, folders of "
                                       "images, a CSV/TSV/Parquet index, a zip/tar archive, a CIFAR-10 folder (with "
                                       "/train/CLASS or /validation/CLASS inside it) or a shard folder.") from None
            out += found
            continue
        out += _images_of(Path(str(item)), str(item), kind)
    return out


def _images_of(path: Path, text: str, kind: str) -> list[str]:
    if kind == "image":
        return [str(path)]
    if kind == "archive":
        from .archive import extracted_root

        root = extracted_root(path)
        return _images_of(root, str(root), source_kind(root))
    if kind == "index":
        from .index import read_index_rows, resolve_row_path

        return [resolve_row_path(text, row.path) for row in read_index_rows(text)]
    if kind == "cifar":
        from .cifar import cifar_splits, find_cifar_folder

        splits = cifar_splits(find_cifar_folder(path))
        return [s.path for s in splits.train] + [s.path for s in splits.validation]
    if kind == "shards":
        from .stream import shard_samples

        return [p for split in ("train", "validation") for _, p in shard_samples(path, preferring=(split,))[0]]
    return sorted(str(f) for f in path.rglob("*") if f.is_file() and is_image_file(f))
