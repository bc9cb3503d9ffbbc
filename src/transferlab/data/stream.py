"""Data sets that do not fit a folder walk: streamed indexes and WebDataset-style tar shards.

Over 400 lines: the index stream, the shard writer and reader, and the balanced dealing of rows and shards to
DDP ranks and workers that both streams share belong together; split, each part would import the others.

- `IndexDataset`: rows of a CSV/TSV or Parquet index (`path,label[,split]`, paths relative to the index or
  absolute, local or `s3://`, `gs://`, `http(s)://` through fsspec) are read a few at a time, never all at
  once: memory stays flat for millions of rows. Rows are dealt round-robin to DataLoader workers and DDP ranks.
- `ShardDataset` reads what `data.shards.write_shards` (`transferlab data shard DATA --out shards/`) packs: images
  in tar files of `KEY.EXT` + `KEY.cls` members (the WebDataset layout, readable by webdataset too) with
  `classes.json`; reading streams each tar sequentially, shards dealt to workers and ranks.
- `open_stream`: what `transferlab train` uses when DATA is a shard folder, a Parquet index, or a CSV index
  with `--stream`: both splits as streams, with their class counts from one pass over the index.

Training streams are *balanced*: every reader (rank x worker) yields the same number of images per epoch
(the split's size divided by the readers, rounded down to whole batches with several workers), repeating
images of its own share when it runs short, as DistributedSampler pads. Unequal shares would leave one DDP
rank waiting for the others' gradients for ever. Validation streams yield every image exactly once, spread
over the readers (they have no length: each worker ends its own last batch, so the count of batches is not
known in advance, and validation needs no step in lock-step).

Example:
    >>> ds = IndexDataset("index.csv", classes=["cat", "dog"], transform=eval_transform(pre))  # doctest: +SKIP
    >>> loader = DataLoader(ds, batch_size=64, num_workers=8)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tarfile
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch.utils.data import IterableDataset, get_worker_info

from .._io import distributed_world
from ..errors import DataError, MissingFileError
from .index import is_parquet, open_binary, read_index_rows
from .splits import SPLIT_NAMES, split_of

__all__ = ["IndexDataset", "ShardDataset", "StreamSource", "scan_index", "scan_index_labels",
           "open_binary", "open_stream", "is_stream_source", "is_shard_folder", "shard_samples", "read_image",
           "identity"]

ROW_SHUFFLE_BUFFER = 8192  # rows (paths and labels: cheap) shuffled together in an index stream
SAMPLE_SHUFFLE_BUFFER = 256  # encoded images shuffled together in a shard stream


def _split_info() -> tuple[int, int]:
    """(this reader's index, number of readers) over DDP ranks x DataLoader workers."""
    rank, world = distributed_world()
    worker = get_worker_info()
    wid, nworkers = (worker.id, worker.num_workers) if worker else (0, 1)
    return rank * nworkers + wid, world * nworkers


def _split_of(path: str, split: str | None, val_split: float) -> str:
    """The row's split: its `split` column (the names of `data.splits`; test rows are left for `evaluate`), else a
    stable hash of its path (no listing needed)."""
    if split is not None:
        canonical = split_of(split)
        if canonical is None:
            raise DataError(f"Unknown split {split!r} for '{path}'; use one of {', '.join(SPLIT_NAMES)}.")
        return canonical
    h = int.from_bytes(hashlib.blake2b(path.encode(), digest_size=8).digest(), "big") / 2**64
    return "validation" if h < val_split else "train"


@dataclass
class IndexSummary:
    """One streaming pass over an index: class names, images per class and split, whether a split column exists."""

    classes: list[str]
    counts: dict[str, Counter] = field(default_factory=dict)
    has_split: bool = False


def scan_index(index: str | os.PathLike[str], val_split: float = 0.2) -> IndexSummary:
    """Classes and per-split counts of an index in one streaming pass (memory: one counter per class)."""
    counts = {"train": Counter(), "validation": Counter(), "test": Counter()}
    has_split = False
    for _, path, label, split in read_index_rows(str(index)):
        has_split = has_split or split is not None
        counts[_split_of(path, split, val_split)][label] += 1
    classes = sorted(set(counts["train"]) | set(counts["validation"]))
    return IndexSummary(classes, counts, has_split)


def scan_index_labels(index: str | os.PathLike[str]) -> list[str]:
    """The sorted class names of an index, in one streaming pass (memory: one entry per class)."""
    return sorted({row.label for row in read_index_rows(str(index))})


class _Stream(IterableDataset):
    """Dealing to readers, per-epoch shuffling and balanced shares, for the index and shard streams."""

    def __init__(self, shuffle: bool, seed: int, total: int | None, balanced: bool,
                 batch_size: int | None, skipped_log: str | None = None) -> None:
        self.shuffle, self.seed, self.total, self.balanced, self.batch_size = shuffle, seed, total, balanced, batch_size
        self.skipped_log = skipped_log
        self.epoch = 0
        self.num_workers = 0  # set by whoever builds the DataLoader, so that len() knows the readers per rank

    def set_epoch(self, epoch: int) -> None:
        """A new shuffle each epoch (call before iterating; DataLoader workers copy the dataset then)."""
        self.epoch = int(epoch)

    def quota(self, readers: int) -> int | None:
        """Images each reader yields in a balanced stream: the split / readers (with several workers per rank,
        rounded down to whole batches)."""
        if not self.balanced or self.total is None:
            return None
        share = self.total // readers
        if self.batch_size and self.num_workers > 1 and share >= self.batch_size:
            share -= share % self.batch_size  # each worker makes its own last batch: keep len(loader) exact
        if self.batch_size and share > 1 and share % self.batch_size == 1:
            share -= 1  # no last batch of one image (BatchNorm cannot train on it)
        return share

    def __len__(self) -> int:
        """Images this DDP rank reads per epoch: known for a balanced stream of known size (else TypeError,
        which DataLoader and Lightning read as 'no length')."""
        if self.total is None or not self.balanced:
            raise TypeError("This stream has no length: pass total= and balanced=True.")
        _, world = distributed_world()
        workers = max(1, self.num_workers)
        return self.quota(world * workers) * workers

    def _skip(self, path: str, error: Exception, rounds: int) -> None:
        """Warns once about an unreadable image and appends it to `skipped_log` (one JSON line: appends of a line
        are atomic, so every reader process can write it)."""
        if rounds:
            return
        warnings.warn(f"Skipping '{path}': {error}", stacklevel=3)
        if self.skipped_log:
            with open(self.skipped_log, "a", encoding="utf-8") as log:
                log.write(json.dumps({"path": path, "reason": str(error)[:300]}) + "\n")

    def _rng(self, me: int, rounds: int) -> random.Random:
        """This reader's shuffle for this epoch (and each extra round of a balanced share)."""
        return random.Random(f"{self.seed}:{self.epoch}:{me}" + (f":{rounds}" if rounds else ""))

    def _items(self, me: int, readers: int, rng: random.Random, rounds: int) -> Iterator[tuple[Any, int]]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[tuple[Any, int]]:
        me, readers = _split_info()
        quota = self.quota(readers)
        produced, rounds = 0, 0
        while True:
            before = produced
            for item in self._items(me, readers, self._rng(me, rounds), rounds):
                yield item
                produced += 1
                if quota is not None and produced >= quota:
                    return
            if quota is None or produced >= quota:
                return
            if produced == before:
                raise RuntimeError(f"Reader {me} of {readers} found no readable image in its share of the stream "
                                   "(all its files failed?): the other DDP ranks would wait for ever. Check the "
                                   "data, or use fewer workers/devices than shards.")
            rounds += 1  # short of the balanced share: go round this reader's share again


def _shuffled(items: Iterator[Any], size: int, rng: random.Random) -> Iterator[Any]:
    """A shuffle buffer: keeps `size` items and yields a random one as each new item arrives."""
    buffer: list[Any] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        j = rng.randrange(size)
        buffer[j], item = item, buffer[j]
        yield item
    rng.shuffle(buffer)
    yield from buffer


class IndexDataset(_Stream):
    """Streams `(image, label)` from a CSV/TSV or Parquet index without loading the index.

    Args:
        index: The index file (local path or fsspec URL).
        classes: Class names (label order); None scans the index once for them.
        transform: Applied to each image (e.g. `eval_transform(pre)`).
        reader: Turns a path into an image (default: decode with Pillow, EXIF rotation applied).
        on_error: 'skip' (warn once per file) or 'raise'.
        split: Stream only 'train' or 'validation' rows (the index's split column, else a stable hash of the
            path with `val_split`); None streams every row.
        val_split: Fraction of rows without a split column that go to validation.
        shuffle: Shuffle rows (a buffer of 8192 rows, a new order each epoch: see `set_epoch`).
        seed: Seed of the shuffle.
        total: Rows in this split (from `scan_index`): gives the stream a length, and with `balanced` an equal
            share per reader.
        balanced: Every reader yields the same number of images (training under DDP); see the module doc.
        batch_size: Shares are rounded down to whole batches of this size.
        min_size: Decode large JPEGs at a reduced scale that keeps both sides >= this (default reader only).
    """

    def __init__(self, index: str | os.PathLike[str], classes: list[str] | None = None,
                 transform: Callable | None = None, reader: Callable[[str], Any] | None = None,
                 on_error: str = "skip", split: str | None = None, val_split: float = 0.2, shuffle: bool = False,
                 seed: int = 0, total: int | None = None, balanced: bool = False, batch_size: int | None = None,
                 min_size: int | None = None, skipped_log: str | None = None) -> None:
        super().__init__(shuffle, seed, total, balanced, batch_size, skipped_log)
        self.index = str(index)
        self.classes = list(classes) if classes is not None else scan_index_labels(self.index)
        self.class_index = {c: i for i, c in enumerate(self.classes)}
        self.transform = transform
        self.reader = reader or _Reader(min_size)
        self.on_error = on_error
        self.split, self.val_split = split, val_split
        self.base = self.index.rsplit("/", 1)[0] if "://" in self.index else str(Path(self.index).parent)

    def _resolve(self, path: str) -> str:
        if "://" in path or os.path.isabs(path):
            return path
        return f"{self.base}/{path}"

    def _my_rows(self, me: int, readers: int) -> Iterator[tuple[int, str, str]]:
        n = 0
        for i, (_, path, label, split) in enumerate(read_index_rows(self.index)):
            if self.split is not None and _split_of(path, split, self.val_split) != self.split:
                continue
            n += 1
            if (n - 1) % readers == me:
                yield i, path, label

    def _items(self, me: int, readers: int, rng: random.Random, rounds: int) -> Iterator[tuple[Any, int]]:
        rows = self._my_rows(me, readers)
        if self.shuffle:
            rows = _shuffled(rows, ROW_SHUFFLE_BUFFER, rng)
        for i, path, label in rows:
            if label not in self.class_index:
                raise DataError(f"Index '{self.index}' row {i + 1}: label {label!r} is not one of the classes "
                                 f"{self.classes[:10]}...; pass the full class list.")
            try:
                image = self.reader(self._resolve(path))
            except Exception as e:  # noqa: BLE001 - a bad file must not stop a long stream
                if self.on_error == "raise":
                    raise
                self._skip(self._resolve(path), e, rounds)
                continue
            yield (self.transform(image) if self.transform else image), self.class_index[label]


class _Reader:
    """The default reader: a local file or fsspec URL decoded with `load_rgb` (EXIF, modes, reduced-scale JPEG)."""

    def __init__(self, min_size: int | None = None) -> None:
        self.min_size = min_size

    def __call__(self, path: str) -> Any:
        from .images import load_rgb

        if "://" in path and not path.startswith("file://"):
            with open_binary(path) as f:
                return load_rgb(f.read(), min_size=self.min_size)
        return load_rgb(path.removeprefix("file://"), min_size=self.min_size)


class ShardDataset(_Stream):
    """Streams `(image, label)` from WebDataset-style tar shards (local paths or fsspec URLs).

    With at least as many shards as readers, each reader reads whole shards (`shards[me::readers]`); with
    fewer, readers share a shard and take alternate images of it. Arguments as `IndexDataset`.

    Example:
        >>> shards = sorted(Path("shards").glob("train-*.tar"))  # doctest: +SKIP
        >>> ds = ShardDataset(shards, transform=eval_transform(pre))  # doctest: +SKIP
    """

    def __init__(self, shards: list[str | os.PathLike[str]], transform: Callable | None = None,
                 classes: list[str] | None = None, shuffle: bool = False, seed: int = 0, total: int | None = None,
                 balanced: bool = False, batch_size: int | None = None, min_size: int | None = None,
                 skipped_log: str | None = None) -> None:
        super().__init__(shuffle, seed, total, balanced, batch_size, skipped_log)
        self.shards = [str(s) for s in shards]
        if not self.shards:
            raise DataError("No shard files given; make them with `transferlab data shard DATA --out shards/`.")
        if classes is None:
            with open_binary(f"{_folder_of(self.shards[0])}/classes.json") as f:
                classes = json.loads(f.read())
        self.classes = list(classes)
        self.transform = transform
        self.min_size = min_size

    def _assignment(self, me: int, readers: int, rng: random.Random) -> tuple[list[str], int, int]:
        """(my shards, my offset among the readers sharing them, how many share them)."""
        n = len(self.shards)
        if n >= readers:
            mine = self.shards[me::readers]
            if self.shuffle:
                rng.shuffle(mine)
            return mine, 0, 1
        shard = me % n
        return [self.shards[shard]], me // n, len(range(shard, readers, n))

    def _samples(self, shards: list[str], offset: int, stride: int) -> Iterator[tuple[str, bytes, int]]:
        for shard in shards:
            pending: dict[str, dict[str, bytes]] = {}
            position = 0
            with open_binary(shard) as raw, tarfile.open(fileobj=raw, mode="r|*") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    key, _, ext = member.name.rpartition(".")
                    data = tar.extractfile(member).read()
                    entry = pending.setdefault(key, {})
                    entry["cls" if ext == "cls" else "image"] = data
                    if "cls" in entry and "image" in entry:
                        del pending[key]
                        position += 1
                        if (position - 1) % stride == offset:
                            yield f"{shard}#{key}", entry["image"], int(entry["cls"])

    def _items(self, me: int, readers: int, rng: random.Random, rounds: int) -> Iterator[tuple[Any, int]]:
        from .images import load_rgb

        samples = self._samples(*self._assignment(me, readers, rng))
        if self.shuffle:
            samples = _shuffled(samples, SAMPLE_SHUFFLE_BUFFER, rng)
        for name, data, label in samples:
            try:
                image = load_rgb(data, min_size=self.min_size)
            except Exception as e:  # noqa: BLE001 - a bad member must not stop a long stream
                self._skip(name, e, rounds)
                continue
            yield (self.transform(image) if self.transform else image), label


def _folder_of(path: str) -> str:
    return path.rsplit("/", 1)[0] if "://" in path else str(Path(path).parent)


def is_shard_folder(folder: str | os.PathLike[str]) -> bool:
    """True for a folder of shards made by `transferlab data shard` (classes.json and SPLIT-NNNNNN.tar files)."""
    folder = Path(folder)
    return folder.is_dir() and (folder / "classes.json").is_file() and any(folder.glob("*-[0-9]*.tar"))


def is_stream_source(data: str | os.PathLike[str]) -> bool:
    """True for a shard folder or a Parquet index: data that only streams."""
    return is_parquet(str(data)) or is_shard_folder(str(data))


MEMBER_SCHEME = "tar://"  # one image of a shard: tar://SHARD.tar#KEY.EXT (`data.images.VIRTUAL_SCHEMES`)


def shard_samples(folder: str | os.PathLike[str], preferring: tuple[str, ...] = ("validation",)
                  ) -> tuple[list[tuple[str, str]], str]:
    """(class, `tar://` path) of every image in the first of the `preferring` splits that has shards in `folder`,
    and that split's name (reads the tar headers and labels, not the images)."""
    folder = Path(folder)
    classes = json.loads((folder / "classes.json").read_text(encoding="utf-8"))
    for split in preferring:
        files = sorted(folder.glob(f"{split}-*.tar"))
        if files:
            rows = []
            for shard in files:
                labels, names = {}, {}
                with tarfile.open(shard, mode="r") as tar:
                    for member in tar.getmembers():
                        if not member.isfile():
                            continue
                        key, _, ext = member.name.rpartition(".")
                        if ext == "cls":
                            labels[key] = int(tar.extractfile(member).read())
                        else:
                            names[key] = member.name
                rows += [(classes[labels[k]], f"{MEMBER_SCHEME}{shard.resolve()}#{names[k]}") for k in sorted(names)
                         if k in labels]
            return rows, split
    raise DataError(f"'{folder}' has no {' or '.join(preferring)} shards; make them with `transferlab data shard DATA "
                    f"--out {folder} --split {preferring[-1]}`.")


def _member(path: str) -> tuple[str, str]:
    shard, _, name = path[len(MEMBER_SCHEME):].rpartition("#")
    return shard, name


def read_image(path: str) -> bytes:
    """The encoded bytes of a shard member `tar://SHARD#NAME` (what `data.images.load_rgb` decodes)."""
    shard, name = _member(path)
    with tarfile.open(shard, mode="r") as tar:
        member = tar.extractfile(name)
        if member is None:
            raise OSError(f"'{name}' is not a file in the shard '{shard}'")
        return member.read()


def identity(path: str) -> str:
    """The content identity of a shard member for caches: the shard's size and modification time, and the name."""
    shard, name = _member(path)
    st = os.stat(shard)
    return f"{shard}:{st.st_size}:{st.st_mtime_ns}#{name}"


@dataclass
class StreamSource:
    """Both splits of streamed data, with what training needs to know before reading an image.

    Attributes:
        root: The shard folder or index.
        layout: 'stream (shards)' or 'stream (index)'.
        classes: Class names.
        class_counts: {'train': {class: images}, 'validation': {...}}.
    """

    root: str
    layout: str
    classes: list[str]
    class_counts: dict[str, dict[str, int]]
    val_split: float = 0.2
    shards: dict[str, list[str]] = field(default_factory=dict)
    skipped_log: str | None = None  # a file the readers append unreadable images to, as they meet them
    streamed = True  # the protocol `data.sources.open_source` returns (see `DataSplits`)

    @property
    def skipped(self) -> list[dict[str, str]]:
        """The images the readers could not decode so far (each once), from `skipped_log`."""
        if not self.skipped_log or not Path(self.skipped_log).is_file():
            return []
        seen: dict[str, dict[str, str]] = {}
        for line in Path(self.skipped_log).read_text(encoding="utf-8").splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue  # a line cut by a crash
            seen.setdefault(str(item.get("path")), {"path": str(item.get("path")), "reason": str(item.get("reason"))})
        return list(seen.values())

    def log_skipped_to(self, path: str) -> None:
        """Where the readers append the images they cannot decode (the run folder's log)."""
        self.skipped_log = path

    def split_rows(self) -> None:
        """A stream's split is its index or shards: there is no list of files to record (see `DataSplits`)."""
        return None

    def validation_samples(self) -> None:
        """Streamed validation images are not a list (see `DataSplits.validation_samples`)."""
        return None

    def find_duplicates(self) -> dict[str, Any]:
        """Duplicates are looked for in listed data only (a stream is read once per epoch, not held)."""
        return {"groups": [], "warnings": []}

    def size(self, split: str) -> int:
        return sum(self.class_counts[split].values())

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per class and split (as `DataSplits.counts`)."""
        return self.class_counts

    def dataset(self, split: str, transform: Callable, seed: int = 0, batch_size: int | None = None,
                min_size: int | None = None) -> _Stream:
        """The split's stream: shuffled and balanced for 'train', every image once for 'validation'."""
        train = split == "train"
        common = dict(transform=transform, classes=self.classes, shuffle=train, seed=seed, total=self.size(split),
                      balanced=train, batch_size=batch_size, min_size=min_size, skipped_log=self.skipped_log)
        if self.layout == "stream (shards)":
            return ShardDataset(self.shards[split], **common)
        return IndexDataset(self.root, split=split, val_split=self.val_split, **common)

    def report(self) -> dict[str, Any]:
        return {"root": self.root, "layout": self.layout, "classes": self.classes, "counts": self.class_counts,
                "images": {s: self.size(s) for s in ("train", "validation")}, "skipped": self.skipped,
                "skipped_note": "streamed: the unreadable images met so far (each epoch reads them again)"}


def open_stream(data: str | os.PathLike[str], val_split: float = 0.2) -> StreamSource:
    """Opens a shard folder (both splits packed by `transferlab data shard`) or an index (`path,label[,split]`,
    CSV/TSV/Parquet; rows without a split go to validation by a stable hash of their path, `val_split` of them).

    Example:
        >>> source = open_stream("shards/")  # doctest: +SKIP
        >>> source.size("train"), source.classes[:2]  # doctest: +SKIP
        (50000, ['airplane', 'automobile'])
    """
    text = str(data)
    folder = Path(text)
    if folder.is_dir():
        return _open_shards(folder)
    if not text.lower().endswith((".csv", ".tsv", ".parquet", ".pq")):
        raise DataError(f"Cannot stream '{text}': pass a shard folder (made by `transferlab data shard`) or an "
                         "index file (.csv, .tsv or .parquet with path and label columns).")
    if "://" not in text and not folder.is_file():
        raise MissingFileError(f"The index '{text}' does not exist.")
    summary = scan_index(text, val_split)
    for split in ("train", "validation"):
        if not summary.counts[split]:
            raise DataError(f"The index '{text}' has no {split} rows; add a split column (train/validation) or "
                             "more rows.")
    counts = {k: {c: v.get(c, 0) for c in summary.classes} for k, v in summary.counts.items() if k != "test"}
    return StreamSource(text, "stream (index)", summary.classes, counts, val_split)


def _open_shards(folder: Path) -> StreamSource:
    if not (folder / "classes.json").is_file():
        raise DataError(f"'{folder}' has no classes.json: make shards with `transferlab data shard DATA --out "
                         f"{folder} --split train` (and --split validation).")
    classes = json.loads((folder / "classes.json").read_text(encoding="utf-8"))
    shards, counts = {}, {}
    for split in ("train", "validation"):
        files = sorted(str(p) for p in folder.glob(f"{split}-*.tar"))
        if not files:
            raise DataError(f"'{folder}' has no {split} shards ({split}-NNNNNN.tar); make them with "
                             f"`transferlab data shard DATA --out {folder} --split {split}`.")
        summary_path = folder / f"{split}-shards.json"
        summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
        if "per_class" in summary:
            per_class = summary["per_class"]
        else:  # shards made elsewhere: count the members once (reads headers and labels only)
            per_class = _count_shards(files, classes)
        shards[split], counts[split] = files, {c: int(per_class.get(c, 0)) for c in classes}
    return StreamSource(str(folder), "stream (shards)", classes, counts, shards=shards)


def _count_shards(files: list[str], classes: list[str]) -> dict[str, int]:
    counts: Counter = Counter()
    for shard in files:
        with open_binary(shard) as raw, tarfile.open(fileobj=raw, mode="r|*") as tar:
            for member in tar:
                if member.isfile() and member.name.endswith(".cls"):
                    counts[classes[int(tar.extractfile(member).read())]] += 1
    return dict(counts)
