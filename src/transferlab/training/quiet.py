"""Lightning's advertising and warnings about what we do on purpose, silenced inside a block only."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

__all__ = ["quiet_lightning"]


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip:" not in record.getMessage()


@contextlib.contextmanager
def quiet_lightning(everything: bool = False) -> Iterator[None]:
    """Within the block, Lightning's tips and the warnings about things we do on purpose are silenced
    (`everything=True`: every warning and every Lightning log line below CRITICAL). The warning filters and the
    loggers are restored when the block ends, so nothing changes for the rest of the user's program.

    Example:
        >>> with quiet_lightning():  # doctest: +SKIP
        ...     trainer.fit(module)
    """
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    tips = _DropTips()
    rank_zero.addFilter(tips)
    lightning_logger = logging.getLogger("lightning.pytorch")
    level, rank_zero_level = lightning_logger.level, rank_zero.level
    rank_zero.setLevel(logging.WARNING)  # "GPU available: False", "`Trainer.fit` stopped": we print our own lines
    try:
        with warnings.catch_warnings():
            if everything:
                warnings.simplefilter("ignore")
                lightning_logger.setLevel(logging.CRITICAL)
            for pattern in _EXPECTED:
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        rank_zero.removeFilter(tips)
        rank_zero.setLevel(rank_zero_level)
        lightning_logger.setLevel(level)


_EXPECTED = (r".*Checkpoint directory .* exists and is not empty.*", r".*isinstance\(treespec, LeafSpec\).*",
             r".*does not have many workers.*", r".*module\(s\) in eval mode at the start of training.*",
             r".*The number of training batches .* is smaller than the logging interval.*",
             r".*overridden `on_after_batch_transfer` in `LightningModule` but have passed in a.*",
             r".*Your `IterableDataset` has `__len__` defined.*",  # streams know their per-rank length
             r".*Encountered `nan` values in tensor.*")  # a diverging run: FiniteLoss says it in our words
