"""The one reader of image index files: CSV, TSV and Parquet lists of `path,label[,split]`, local or remote.

Listed data (`load_image_folder("labels.csv")`) and streamed data (`--stream`, Parquet) read rows through
`read_index_rows`, so both accept the same files: a header naming the columns in any order (path: path, file,
filename or image; label: label, class or category; optional split), or no header and the columns
path,label[,split]. CSV and TSV are read as UTF-8 (a byte-order mark is allowed); Parquet with pyarrow, one
row group batch at a time; `s3://`, `gs://` and `http(s)://` through fsspec. Rows are streamed, never all
held: memory stays flat for millions of rows.

Example:
    >>> next(read_index_rows("labels.csv"))  # doctest: +SKIP
    IndexRow(line=2, path='cats/1.jpg', label='cat', split=None)
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterator
from typing import Any, NamedTuple

from ..errors import DataError

__all__ = ["IndexRow", "PATH_COLUMNS", "LABEL_COLUMNS", "read_index_rows", "open_binary", "is_parquet",
           "resolve_row_path", "labelled_rows"]

PATH_COLUMNS = ("path", "file", "filename", "image")
LABEL_COLUMNS = ("label", "class", "category")


def _nfc(label: str) -> str:
    """Labels in Unicode NFC, as class folder names are read (`data.folder.class_label`)."""
    return unicodedata.normalize("NFC", label)


class IndexRow(NamedTuple):
    """One row of an index: its line number in the file (1 = the first line), the path as written, the label,
    and the split column's value (None without one)."""

    line: int
    path: str
    label: str
    split: str | None


def open_binary(path: str) -> Any:
    """Opens a local path or an fsspec URL (s3://, gs://, http(s)://) for reading bytes."""
    if "://" in path and not path.startswith("file://"):
        try:
            import fsspec
        except ImportError as e:
            raise DataError(f"Reading '{path}' needs fsspec (and s3fs/gcsfs for cloud storage): "
                             "`pip install 'transferlab[stream]'`.") from e
        return fsspec.open(path, "rb").open()
    return open(path.removeprefix("file://"), "rb")


def is_parquet(index: str) -> bool:
    """True for a .parquet / .pq index."""
    return index.lower().endswith((".parquet", ".pq"))


def _columns(header: list[str]) -> tuple[int, int, int | None] | None:
    """(path, label, split) column positions when `header` names them, else None (no header line)."""
    names = [h.strip().lower() for h in header]
    path = next((names.index(n) for n in PATH_COLUMNS if n in names), None)
    label = next((names.index(n) for n in LABEL_COLUMNS if n in names), None)
    if path is None or label is None:
        return None
    return path, label, names.index("split") if "split" in names else None


def read_index_rows(index: str) -> Iterator[IndexRow]:
    """Streams the rows of a CSV/TSV/Parquet index (see the module docstring); blank lines are skipped.

    Raises:
        DataError: A row with fewer than two columns (the message names the file and line), or a Parquet file
            without path and label columns.
    """
    if is_parquet(index):
        yield from _parquet_rows(index)
        return
    delimiter = "\t" if index.lower().endswith(".tsv") else ","
    with open_binary(index) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        try:
            yield from _csv_rows(index, csv.reader(text, delimiter=delimiter), delimiter)
        except UnicodeDecodeError as e:
            raise DataError(f"Index '{index}' is not UTF-8 text (byte {e.start} of a line: {e.reason}); save it as "
                            "UTF-8 (Excel: 'CSV UTF-8'; Python: encoding='utf-8').") from None


def _csv_rows(index: str, reader: Any, delimiter: str) -> Iterator[IndexRow]:
    cols: tuple[int, int, int | None] = (0, 1, 2)
    for i, row in enumerate(reader):
        if i == 0:
            named = _columns(row)
            if named is not None:
                cols = named
                continue
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) <= max(cols[0], cols[1]):
            sep = "<TAB>" if delimiter == "\t" else delimiter
            raise DataError(f"Index '{index}' line {reader.line_num}: expected path{sep}label, got {row}. Each "
                            f"row names an image and its class, e.g. 'cats/1.jpg{delimiter}cat'.")
        split = row[cols[2]].strip() if cols[2] is not None and len(row) > cols[2] else None
        yield IndexRow(reader.line_num, row[cols[0]].strip(), _nfc(row[cols[1]].strip()), split or None)


def _parquet_rows(index: str) -> Iterator[IndexRow]:
    try:
        import pyarrow.parquet as pq
    except ImportError as e:
        raise DataError(f"Reading the Parquet index '{index}' needs pyarrow: `pip install 'transferlab[stream]'`, "
                         "or write the index as CSV.") from e
    with open_binary(index) as raw:
        table = pq.ParquetFile(raw)
        named = _columns(table.schema_arrow.names)
        if named is None:
            raise DataError(f"Parquet index '{index}' has columns {table.schema_arrow.names}; it needs a path "
                             f"column ({'/'.join(PATH_COLUMNS)}) and a label column ({'/'.join(LABEL_COLUMNS)}).")
        names = table.schema_arrow.names
        wanted = [names[named[0]], names[named[1]]] + ([names[named[2]]] if named[2] is not None else [])
        line = 0
        for batch in table.iter_batches(batch_size=4096, columns=wanted):  # one row group slice at a time
            columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
            splits = columns[2] if len(columns) > 2 else [None] * batch.num_rows
            for path, label, split in zip(columns[0], columns[1], splits):
                line += 1
                yield IndexRow(line, str(path), _nfc(str(label)), str(split) if split else None)


def resolve_row_path(index: str, path: str) -> str:
    """A row's image path as a reader opens it: URLs and absolute paths as written, others relative to the index."""
    import os
    from pathlib import Path

    if "://" in path or os.path.isabs(path):
        return path
    if "://" in index:
        return f"{index.rsplit('/', 1)[0]}/{path}"
    return str((Path(index).parent / path).resolve())


def labelled_rows(index: str, preferring: tuple[str, ...] = ("test", "validation")
                  ) -> tuple[list[tuple[str, str]], list[dict[str, str]], str | None]:
    """(class, path) rows to evaluate from an index: the rows of the first of the `preferring` splits any row is
    marked with, else every row; missing files are skipped and reported. Returns (rows, skipped, the split chosen
    or None for every row).

    Raises:
        DataError: A split value that is not one of `data.splits.SPLIT_NAMES`.
    """
    from pathlib import Path

    from .splits import SPLIT_NAMES, split_of

    by_split: dict[str | None, list[tuple[str, str]]] = {}
    for row in read_index_rows(index):
        split = split_of(row.split) if row.split else None
        if row.split and split is None:
            raise DataError(f"Index '{index}' line {row.line}: unknown split {row.split!r}; use one of "
                            f"{', '.join(SPLIT_NAMES)}.")
        by_split.setdefault(split, []).append((row.label, resolve_row_path(index, row.path)))
    chosen = next((s for s in preferring if by_split.get(s)), None)
    rows = by_split[chosen] if chosen else [r for rs in by_split.values() for r in rs]
    kept, skipped = [], []
    for label, path in rows:
        if "://" in path or Path(path).is_file():
            kept.append((label, path))
        else:
            skipped.append({"path": path, "reason": "file not found"})
    return kept, skipped, chosen
