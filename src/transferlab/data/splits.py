"""The one vocabulary of split names, for folders (`DATA/val/`) and index columns (`split=training`) alike.

Example:
    >>> split_of("Val"), split_of("training"), split_of("test"), split_of("holdout")
    ('validation', 'train', 'test', None)
"""

from __future__ import annotations

__all__ = ["SPLIT_NAMES", "split_of", "names_of", "SPLITS"]

SPLITS = ("train", "validation", "test")  # train and validation train the model; test is left for `evaluate`
SPLIT_NAMES = {"train": "train", "training": "train", "validation": "validation", "val": "validation",
               "valid": "validation", "test": "test", "testing": "test"}


def split_of(name: str | None) -> str | None:
    """The split a folder name or an index's split value means ('train', 'validation' or 'test'), or None."""
    return SPLIT_NAMES.get(str(name).strip().lower()) if name is not None else None


def names_of(split: str) -> tuple[str, ...]:
    """Every spelling of a split, the canonical name first: names_of('validation') = ('validation', 'val', 'valid').
    """
    return (split, *(name for name, canonical in SPLIT_NAMES.items() if canonical == split and name != split))
