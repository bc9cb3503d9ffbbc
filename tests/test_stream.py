"""Streaming large data: an index of 300,000 rows with flat memory, and tar shards split over workers."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from transferlab.cli import app
from transferlab.data.stream import IndexDataset, ShardDataset, scan_index_labels

from .conftest import TINY_MODEL, make_dataset

runner = CliRunner()


def test_a_large_index_streams_with_flat_memory(tmp_path):
    """300,000 rows (10 MB): memory stays flat as the rows stream (a million rows took 32 s of the suite with
    tracemalloc on; the peak does not depend on the count)."""
    rows = 300_000
    index = tmp_path / "index.csv"
    with index.open("w") as f:
        f.write("path,label\n")
        for i in range(rows):
            f.write(f"s3://bucket/images/{i:07d}.jpg,class{i % 7}\n")
    assert index.stat().st_size > 10_000_000
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
    assert labels == [f"class{k}" for k in range(7)] and last == [f"s3://bucket/images/{rows - 1:07d}.jpg"]
    assert count == rows and label_sum == sum(i % 7 for i in range(rows))
    assert peak < 4 * 2**20, f"peak {peak / 2**20:.1f} MiB"  # a list of the rows alone would take > 30 MiB


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


def _shard_folder(tmp_path):
    data = make_dataset(tmp_path / "d", classes=("cats", "dogs", "birds"), n_train=8, n_val=3)
    out = tmp_path / "shards"
    for split in ("train", "validation"):
        result = runner.invoke(app, ["data", "shard", str(data), "--out", str(out), "--shard-size", "5",
                                     "--split", split])
        assert result.exit_code == 0, result.output
    return data, out


def test_balanced_stream_gives_every_reader_the_same_share_and_validation_each_image_once(tmp_path):
    from torch.utils.data import DataLoader

    from transferlab.data.stream import open_stream

    _, shards = _shard_folder(tmp_path)
    source = open_stream(shards)
    assert source.size("train") == 24 and source.size("validation") == 9
    assert len(source.shards["train"]) == 5  # 5 + 5 + 5 + 5 + 4: two readers get unequal shard totals
    train = source.dataset("train", transform=lambda im: im.size, batch_size=4)
    train.num_workers = 2
    # quota = 24 // 2 = 12 per worker (whole batches of 4), although the 5 shards hold 15 and 9 images for
    # the two workers: the second goes round its share again, so neither waits for the other under DDP
    batches = list(DataLoader(train, batch_size=4, num_workers=2))
    assert [len(labels) for _, labels in batches] == [4] * 6 and len(train) == 24
    order = [int(v) for _, labels in batches for v in labels]
    train.set_epoch(1)
    again = [int(v) for _, labels in DataLoader(train, batch_size=4, num_workers=2) for v in labels]
    assert len(again) == 24 and again != order  # a new shuffle each epoch
    val = source.dataset("validation", transform=lambda im: im.size)
    val.num_workers = 2
    labels = sorted(label for _, label in DataLoader(val, batch_size=None, num_workers=2))
    assert labels == [0, 0, 0, 1, 1, 1, 2, 2, 2]  # each validation image once
    with pytest.raises(TypeError):  # workers end their own last batches: no batch count to promise
        len(val)


def test_index_split_column_and_hash_split(tmp_path):
    from transferlab.data.stream import open_stream

    index = tmp_path / "index.csv"
    index.write_text("path,label,split\n" + "".join(
        f"img{i}.png,{'ab'[i % 2]},{'validation' if i < 4 else 'train'}\n" for i in range(20)))
    source = open_stream(index)
    assert source.counts() == {"train": {"a": 8, "b": 8}, "validation": {"a": 2, "b": 2}}
    unsplit = tmp_path / "unsplit.csv"
    unsplit.write_text("path,label\n" + "".join(f"img{i}.png,{'ab'[i % 2]}\n" for i in range(2000)))
    first, second = open_stream(unsplit, val_split=0.25), open_stream(unsplit, val_split=0.25)
    assert first.counts() == second.counts()  # the hash split is stable
    assert 400 < first.size("validation") < 600  # ~ a quarter
    rows = {p for p, _ in IndexDataset(unsplit, split="validation", val_split=0.25, reader=lambda p: p)}
    assert len(rows) == first.size("validation")
    assert not rows & {p for p, _ in IndexDataset(unsplit, split="train", val_split=0.25, reader=lambda p: p)}


def test_parquet_index_streams(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    paths = [f"images/{i:05d}.jpg" for i in range(10_000)]
    table = pa.table({"path": paths, "label": [f"c{i % 3}" for i in range(10_000)]})
    pq.write_table(table, tmp_path / "index.parquet", row_group_size=1000)
    source = __import__("transferlab.data.stream", fromlist=["open_stream"]).open_stream(tmp_path / "index.parquet")
    assert source.classes == ["c0", "c1", "c2"] and source.size("train") + source.size("validation") == 10_000
    got = [p for p, _ in IndexDataset(tmp_path / "index.parquet", reader=lambda p: p)]
    assert got == [f"{tmp_path}/{p}" for p in paths]


def _fit(data, out, weights, **kwargs):
    from transferlab import TrainConfig, fit

    settings = dict(data=str(data), out=str(out), model=TINY_MODEL, weights=str(weights), image_size=32,
                    batch_size=4, num_workers=0, epochs=1, lr=1e-12)
    config = TrainConfig(**{**settings, **kwargs})
    return fit(config, quiet=True)


def test_train_from_shards_and_streamed_index_matches_the_listed_data(tmp_path, tiny_weights, monkeypatch):
    import json

    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "home"))
    data, shards = _shard_folder(tmp_path)
    listed = _fit(data, tmp_path / "listed", tiny_weights, strategy="full")
    # two workers: each ends its own last validation batch, and every image must still be counted once
    streamed = _fit(shards, tmp_path / "streamed", tiny_weights, strategy="full", num_workers=2)
    # lr ~ 0: the same weights validate the same 9 images, so the metrics agree
    assert streamed.metrics["best_val_accuracy"] == pytest.approx(listed.metrics["best_val_accuracy"], abs=1e-6)
    assert streamed.metrics["best_val_loss"] == pytest.approx(listed.metrics["best_val_loss"], abs=0.02)
    report = json.loads((tmp_path / "streamed" / "data_report.json").read_text())
    assert report["layout"] == "stream (shards)" and report["images"] == {"train": 24, "validation": 9}
    assert (tmp_path / "streamed" / "model.safetensors").is_file()
    # a CSV index with a split column, streamed, against the same CSV listed
    index = tmp_path / "index.csv"
    split = {"train": "train", "validation": "validation"}
    rows = [f"{p.relative_to(tmp_path)},{p.parent.name},{split[p.parent.parent.name]}"
            for p in sorted(data.rglob("*.png"))]
    index.write_text("path,label,split\n" + "\n".join(rows) + "\n")
    by_list = _fit(index, tmp_path / "csv-listed", tiny_weights, strategy="full")
    by_stream = _fit(index, tmp_path / "csv-streamed", tiny_weights, strategy="full", stream=True)
    assert by_stream.metrics["best_val_accuracy"] == pytest.approx(by_list.metrics["best_val_accuracy"], abs=1e-6)
    with pytest.raises(ValueError, match="subset"):
        _fit(index, tmp_path / "bad", tiny_weights, stream=True, subset=2)


def test_stream_sources_refuse_incomplete_input_with_the_fix(tmp_path):
    from transferlab.data.stream import open_stream

    data = make_dataset(tmp_path / "d", classes=("cats", "dogs"), n_train=3, n_val=2)
    shards = tmp_path / "shards"
    assert runner.invoke(app, ["data", "shard", str(data), "--out", str(shards)]).exit_code == 0
    with pytest.raises(ValueError, match="--split validation"):  # only train shards were made
        open_stream(shards)
    other = make_dataset(tmp_path / "other", classes=("birds", "cats"), n_train=2, n_val=1)
    mixed = runner.invoke(app, ["data", "shard", str(other), "--out", str(shards), "--split", "validation"])
    assert mixed.exit_code != 0 and "another --out folder" in mixed.output
    index = tmp_path / "index.csv"
    index.write_text("path,label,split\na.jpg,cat,train\nb.jpg,dog,train\n")
    with pytest.raises(ValueError, match="no validation rows"):
        open_stream(index)
    index.write_text("path,label,split\na.jpg,cat,train\nb.jpg,dog,holdout\n")
    with pytest.raises(ValueError, match="Unknown split 'holdout'"):
        open_stream(index)
    with pytest.raises(ValueError, match="shard folder .* or an index file"):
        open_stream(tmp_path / "labels.txt")


def test_one_split_vocabulary_listed_or_streamed_and_skipped_images_reported(tmp_path, tiny_weights):
    """`split=training`, `val` and `test` mean the same listed or streamed (test rows are left for evaluate), and a
    streamed run's data_report.json names the images its readers could not decode."""
    import json

    data = make_dataset(tmp_path / "d", n_train=6, n_val=2)
    spelling = {"train": "training", "validation": "val"}
    rows = [f"{p.relative_to(tmp_path)},{p.parent.name},{spelling[p.parent.parent.name]}"
            for p in sorted(data.rglob("*.png"))]
    (data / "broken.png").write_bytes(b"not an image")
    rows.append(f"{(data / 'broken.png').relative_to(tmp_path)},cats,training")
    rows.append(f"{sorted(data.rglob('*.png'))[0].relative_to(tmp_path)},dogs,test")  # never trained on
    index = tmp_path / "index.csv"
    index.write_text("path,label,split\n" + "\n".join(rows) + "\n")
    listed = _fit(index, tmp_path / "listed", tiny_weights, strategy="full")
    streamed = _fit(index, tmp_path / "streamed", tiny_weights, strategy="full", stream=True)
    for result, cats in ((listed, 6), (streamed, 7)):  # a stream counts the index's rows: it reads images later
        report = json.loads((result.run_dir / "data_report.json").read_text())
        counts = report["counts"]
        assert counts["train"] == {"cats": cats, "dogs": 6} and counts["validation"] == {"cats": 2, "dogs": 2}
        assert [Path(s["path"]).name for s in report["skipped"]] == ["broken.png"], report["skipped"]
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label,split\nd/train/cats/img_000.png,cats,holdout\n")
    for stream in (False, True):
        with pytest.raises(ValueError, match="unknown split 'holdout'|Unknown split 'holdout'"):
            _fit(bad, tmp_path / f"bad{stream}", tiny_weights, stream=stream)
