"""Streaming large data: a 1,000,000-row index with flat memory, and tar shards split over workers."""

from __future__ import annotations

import tracemalloc

import pytest
from typer.testing import CliRunner

from transferlab.cli import app
from transferlab.data.stream import IndexDataset, ShardDataset, scan_index_labels

from .conftest import make_dataset


def test_million_row_index_streams_with_flat_memory(tmp_path):
    index = tmp_path / "index.csv"
    with index.open("w") as f:
        f.write("path,label\n")
        for i in range(1_000_000):
            f.write(f"s3://bucket/images/{i:07d}.jpg,class{i % 7}\n")
    assert index.stat().st_size > 30_000_000
    last = []

    def fake_reader(path: str) -> int:  # no file or network is touched
        last[:] = [path]
        return 0

    tracemalloc.start()
    labels = scan_index_labels(index)
    dataset = IndexDataset(index, classes=labels, reader=fake_reader)
    count, label_sum = 0, 0
    for _, label in dataset:
        count += 1
        label_sum += label
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert labels == [f"class{k}" for k in range(7)] and last == ["s3://bucket/images/0999999.jpg"]
    assert count == 1_000_000 and label_sum == sum(i % 7 for i in range(1_000_000))
    assert peak < 4 * 2**20, f"peak {peak / 2**20:.1f} MiB"  # a list of the rows alone would take > 100 MiB


def test_index_rows_are_dealt_to_workers_once(tmp_path):
    from torch.utils.data import DataLoader

    index = tmp_path / "index.csv"
    index.write_text("path,label\n" + "".join(f"img{i}.png,{'ab'[i % 2]}\n" for i in range(50)))
    dataset = IndexDataset(index, reader=lambda p: p)
    loader = DataLoader(dataset, batch_size=None, num_workers=2)
    paths = sorted(p for p, _ in loader)
    assert paths == sorted(f"{tmp_path}/img{i}.png" for i in range(50))  # relative to the index, each once
    with pytest.raises(ValueError, match="not one of the classes"):
        list(IndexDataset(index, classes=["a"], reader=lambda p: p))


def test_shard_command_and_reading_back(tmp_path):
    from torch.utils.data import DataLoader

    data = make_dataset(tmp_path / "d", classes=("cats", "dogs", "birds"), n_train=7, n_val=2)
    out = tmp_path / "shards"
    result = CliRunner().invoke(app, ["data", "shard", str(data), "--out", str(out), "--shard-size", "5", "--json"])
    assert result.exit_code == 0, result.output
    shards = sorted(out.glob("train-*.tar"))
    assert len(shards) == 5  # 21 images, 5 per shard
    dataset = ShardDataset(shards)
    assert dataset.classes == ["birds", "cats", "dogs"]
    items = list(DataLoader(dataset, batch_size=None, num_workers=2, collate_fn=lambda x: x))
    assert len(items) == 21
    assert sorted(label for _, label in items) == sorted([0] * 7 + [1] * 7 + [2] * 7)
    assert all(image.size == (24, 24) for image, _ in items)
