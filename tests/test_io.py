"""Atomic writes: a failure while writing leaves the previous file intact."""

from __future__ import annotations

import pytest
import torch

from transferlab._io import atomic_path, write_json
from transferlab.training.callbacks.checkpoint_io import AtomicCheckpointIO


def test_failed_write_keeps_the_old_file(tmp_path):
    path = write_json(tmp_path / "metrics.json", {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("{half")
            raise RuntimeError("crash while writing")
    assert path.read_text().strip().startswith("{\n  \"a\": 1")
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_checkpoint_io_is_atomic(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "best.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(2)}}, path)
    assert torch.equal(torch.load(path, weights_only=True)["state_dict"]["w"], torch.ones(2))

    def crash(self, checkpoint, filepath, storage_options=None):
        open(filepath, "wb").write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr("lightning.fabric.plugins.io.torch_io.TorchCheckpointIO.save_checkpoint", crash)
    with pytest.raises(OSError):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(2)}}, path)
    assert torch.equal(torch.load(path, weights_only=True)["state_dict"]["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["best.ckpt"]
