"""Data sources beyond folders: CSV/TSV lists and archives, with safe extraction."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from transferlab.data import load_image_folder
from transferlab.data.archive import ArchiveError, safe_extract

from .conftest import make_dataset


def test_csv_of_paths_and_labels(tmp_path):
    make_dataset(tmp_path / "imgs", n_train=5, n_val=0, layout="flat")
    lines = ["path,label"] + [f"imgs/{c}/img_{i:03d}.png,{c}" for c in ("cats", "dogs") for i in range(5)]
    lines.append("imgs/cats/missing.png,cats")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    splits = load_image_folder(tmp_path / "labels.csv", val_split=0.4)
    assert splits.classes == ["cats", "dogs"] and splits.layout == "csv+split"
    assert len(splits.train) == 6 and len(splits.validation) == 4
    assert splits.skipped[0]["reason"] == "file not found"
    assert {s.path for s in splits.train + splits.validation} == {str((tmp_path / line.split(",")[0]).resolve())
                                                                  for line in lines[1:-1]}


def test_tsv_with_a_split_column(tmp_path):
    make_dataset(tmp_path / "imgs", n_train=3, n_val=0, layout="flat")
    rows = [f"imgs/{c}/img_{i:03d}.png\t{c}\t{'validation' if i == 0 else 'train'}"
            for c in ("cats", "dogs") for i in range(3)]
    (tmp_path / "l.tsv").write_text("path\tlabel\tsplit\n" + "\n".join(rows))
    splits = load_image_folder(tmp_path / "l.tsv")
    assert splits.layout == "csv" and len(splits.validation) == 2


def test_zip_as_data_is_extracted_once(tmp_path):
    src = make_dataset(tmp_path / "cats_and_dogs_filtered", n_train=3, n_val=2)
    archive = tmp_path / "cats_and_dogs_filtered.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in src.rglob("*.png"):
            zf.write(f, f.relative_to(tmp_path))
    a = load_image_folder(archive)
    b = load_image_folder(archive)
    assert a.classes == ["cats", "dogs"] and a.layout == "train/validation"
    assert a.root == b.root and ".transferlab-extracted" in a.root


def _zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize(("name", "message"), [("../evil.txt", "outside"), ("/etc/evil", "absolute"),
                                               ("a/../../evil", "outside")])
def test_zip_slip_is_refused(tmp_path, name, message):
    archive = _zip(tmp_path / "bad.zip", {name: b"x"})
    with pytest.raises(ArchiveError, match=message):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not Path("/etc/evil").exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*"))  # nothing extracted at all


def test_zip_bomb_is_refused(tmp_path):
    archive = _zip(tmp_path / "bomb.zip", {"zeros.bin": b"\0" * 20_000_000})
    with pytest.raises(ArchiveError, match="zip bomb"):
        safe_extract(archive, tmp_path / "out")
    with pytest.raises(ArchiveError, match="over the limit"):
        safe_extract(archive, tmp_path / "out", max_bytes=1000, max_ratio=1e9)


def _tar(path, build):
    with tarfile.open(path, "w:gz") as tf:
        build(tf)
    return path


def test_tar_links_outside_are_refused(tmp_path):
    def add_link(tf):
        info = tarfile.TarInfo("data/link")
        info.type, info.linkname = tarfile.SYMTYPE, "../../etc/passwd"
        tf.addfile(info)

    with pytest.raises(ArchiveError, match="outside"):
        safe_extract(_tar(tmp_path / "a.tar.gz", add_link), tmp_path / "out")

    def add_abs(tf):
        info = tarfile.TarInfo("data/link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)

    with pytest.raises(ArchiveError, match="absolute"):
        safe_extract(_tar(tmp_path / "b.tar.gz", add_abs), tmp_path / "out")

    def add_file(tf):
        data = b"hello"
        info = tarfile.TarInfo("data/ok.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("data/inside")
        link.type, link.linkname = tarfile.SYMTYPE, "ok.txt"
        tf.addfile(link)

    out = safe_extract(_tar(tmp_path / "c.tar.gz", add_file), tmp_path / "good")
    assert (out / "data" / "inside").read_text() == "hello"


def _fake_cifar(folder, per_batch: int = 6):
    import pickle

    import numpy as np

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"cat", b"dog"], b"num_cases_per_batch": per_batch}, f, protocol=2)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = [i % 2 for i in range(per_batch)]
        data = np.stack([np.full(3072, 40 if y == 0 else 220, dtype=np.uint8) for y in labels])
        data = np.clip(data + rng.integers(0, 20, data.shape), 0, 255).astype(np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data,
                         b"filenames": [b"x.png"] * per_batch}, f, protocol=2)
    return folder


def test_cifar_python_batches_are_read_in_place(tmp_path):
    from transferlab import TrainConfig, fit
    from transferlab.data import load_rgb

    folder = _fake_cifar(tmp_path / "cifar-10-batches-py")
    splits = load_image_folder(folder)
    assert splits.classes == ["cat", "dog"] and len(splits.train) == 30 and len(splits.validation) == 6
    image = load_rgb(splits.train[0].path)
    assert image.size == (32, 32) and image.mode == "RGB"
    result = fit(TrainConfig(data=str(folder), out=str(tmp_path / "run"), model="test_efficientnet", weights="none",
                             image_size=32, epochs=1, num_workers=0), quiet=True)
    assert result.metrics["epochs_run"] == 1


def test_cifar_batches_never_unpickle_objects(tmp_path):
    import pickle

    from transferlab.data.cifar import _unpickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="only numpy arrays"):
        _unpickle(path)


def test_listed_and_streamed_csv_read_the_same_rows_and_headers(tmp_path):
    """One index reader: a `class,file` CSV (named columns, another order, a byte-order mark) lists without
    --stream exactly the images a stream reads, and a malformed row names its line in both."""
    from transferlab.data.index import read_index_rows
    from transferlab.data.stream import IndexDataset, scan_index

    make_dataset(tmp_path / "imgs", n_train=4, n_val=0, layout="flat")
    rows = [f"{c},imgs/{c}/img_{i:03d}.png" for c in ("cats", "dogs") for i in range(4)]
    index = tmp_path / "labels.csv"
    index.write_text("\ufeffclass,file\n" + "\n".join(rows) + "\n", encoding="utf-8")
    listed = load_image_folder(index, val_split=0.25)
    assert listed.classes == ["cats", "dogs"] and len(listed.train) + len(listed.validation) == 8
    summary = scan_index(index, val_split=0.25)
    assert sorted(summary.classes) == ["cats", "dogs"]
    streamed = IndexDataset(index, classes=listed.classes)
    listed_paths = {Path(s.path).resolve() for s in listed.train + listed.validation}
    assert {Path(streamed._resolve(r.path)).resolve() for r in read_index_rows(str(index))} == listed_paths
    index.write_text("path,label\nimgs/cats/img_000.png,cats\nonly-one-column\n", encoding="utf-8")
    for read in (lambda: load_image_folder(index), lambda: scan_index(index)):
        with pytest.raises(ValueError, match="line 3"):
            read()


def test_commands_that_take_images_accept_every_data_form_train_accepts(tmp_path, tiny_run, tiny_weights):
    """predict and classify read a CIFAR-10 folder as `data get` leaves it (and its train/CLASS,
    validation/CLASS paths), a CSV index and a zip archive, besides files and folders."""
    import json
    import zipfile

    from typer.testing import CliRunner

    from transferlab.cli import app
    from transferlab.data.sources import list_images

    runner = CliRunner()
    data = tmp_path / "data"
    _fake_cifar(data / "cifar-10-batches-py", per_batch=4)
    assert len(list_images([data])) == 24  # 5 train batches + the test batch, 4 images each
    cats = list_images([data / "cifar-10-batches-py" / "validation" / "cat"])
    assert len(cats) == 2 and all(p.startswith("cifar://") and p.endswith(("#0", "#2")) for p in cats)
    assert len(list_images([data / "train" / "dog"])) == 10  # also from the folder the archive was extracted into
    with pytest.raises(FileNotFoundError, match="no class 'horse'"):
        list_images([data / "cifar-10-batches-py" / "validation" / "horse"])
    root, run = tiny_run
    images = sorted((root / "validation" / "cats").glob("*.png"))[:3]
    (tmp_path / "index.csv").write_text("path,label\n" + "".join(f"{p},cats\n" for p in images))
    with zipfile.ZipFile(tmp_path / "photos.zip", "w") as archive:
        for p in images:
            archive.write(p, f"photos/{p.name}")
    for source, count in ((data / "cifar-10-batches-py" / "validation" / "cat", 2), (tmp_path / "index.csv", 3),
                          (tmp_path / "photos.zip", 3)):
        predicted = runner.invoke(app, ["predict", str(run), str(source), "--json"])
        assert predicted.exit_code == 0, predicted.output
        assert len([r for r in json.loads(predicted.stdout) if "top" in r]) == count, source
    classified = runner.invoke(app, ["classify", str(data / "cifar-10-batches-py" / "validation" / "cat"),
                                     "--top-k", "1", "--json", "--model", "test_efficientnet", "--weights",
                                     str(tiny_weights)])
    assert classified.exit_code == 0, classified.output  # timm's test model has 1000 (ImageNet) outputs
    results = json.loads(classified.stdout)
    assert [r["path"] for r in results] == cats and all(len(r["top"]) == 1 and r["top"][0]["wnid"] for r in results)


def test_a_tar_link_chain_and_a_zip_that_lies_about_sizes_are_refused_cleanly(tmp_path):
    """Links that escape only through another link (Python's own filter catches them) and a zip whose headers
    understate a member's size: an ArchiveError naming the archive, nothing outside written, no traceback."""
    import io
    import struct
    import tarfile
    import zipfile

    from typer.testing import CliRunner

    from transferlab.cli import app

    chain = tmp_path / "chain.tar"
    with tarfile.open(chain, "w") as tf:
        for name, target in (("data/l1", "."), ("data/l2", "l1/../..")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
        info = tarfile.TarInfo("data/l2/escaped.txt")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    lie = tmp_path / "lie.zip"
    with zipfile.ZipFile(lie, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data/cats/a.txt", b"A" * 100_000)
        zf.writestr("data/dogs/b.txt", b"B" * 10)
    raw = bytearray(lie.read_bytes())
    struct.pack_into("<I", raw, raw.find(b"PK\x01\x02") + 24, 10)  # central directory: 10 bytes
    struct.pack_into("<I", raw, raw.find(b"PK\x03\x04") + 22, 10)  # local header: 10 bytes
    lie.write_bytes(bytes(raw))
    runner = CliRunner()
    for archive, message in ((chain, "outside the destination"), (lie, "misstates its members' sizes")):
        result = runner.invoke(app, ["train", str(archive), "--out", str(tmp_path / "run"), "-q"])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert message in " ".join(result.output.split())
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path.parent / "escaped.txt").exists()


def test_evaluate_reads_every_form_train_reads_and_scores_its_evaluation_split(tmp_path, tiny_run):
    """evaluate takes the forms train takes, and scores the same images as the plain folder holding them: an index's
    rows marked test (a class of one image included; train rows never), an archive, a shard folder's validation
    shards; and a CIFAR batches folder's test batch."""
    import shutil
    import zipfile

    from transferlab.data.shards import write_shards
    from transferlab.evaluation.metrics import evaluate

    root, run = tiny_run
    by_folder = evaluate(run, root / "test", num_workers=0)  # 15 images, one of them broken
    reference = by_folder.metrics
    # an index: train and validation rows are not evaluated; test rows are, whatever their count per class
    tests = sorted((root / "test").rglob("*.png"))
    rows = [f"{p},{p.parent.name},test" for p in tests]
    rows += [f"{p},{p.parent.name},train" for p in sorted((root / "train").rglob("*.png"))]
    rows += [f"{p},{p.parent.name},validation" for p in sorted((root / "validation").rglob("*.png"))]
    (tmp_path / "index.csv").write_text("path,label,split\n" + "\n".join(rows) + "\n")
    by_index = evaluate(run, tmp_path / "index.csv", num_workers=0)
    assert by_index.metrics["confusion_matrix"] == reference["confusion_matrix"]
    assert sorted(s.path for s in by_index.samples) == sorted(str(p) for p in tests)
    one = tests[0]
    (tmp_path / "one.csv").write_text(f"path,label,split\n{one},{one.parent.name},test\n")
    assert evaluate(run, tmp_path / "one.csv", num_workers=0).metrics["images"] == 1
    # an archive of a data folder: its test/ folder
    with zipfile.ZipFile(tmp_path / "data.zip", "w") as archive:
        for p in root.rglob("*"):
            if p.is_file():
                archive.write(p, Path("data") / p.relative_to(root))
    by_zip = evaluate(run, tmp_path / "data.zip", num_workers=0)
    assert by_zip.metrics["confusion_matrix"] == reference["confusion_matrix"]
    assert len(by_zip.skipped) == len(by_folder.skipped) == 1  # the broken file, named
    # a shard folder: its validation shards are the validation folder's images
    shards = tmp_path / "shards"
    for split in ("train", "validation"):
        write_shards(root, shards, shard_size=5, split=split)
    by_shards = evaluate(run, shards, num_workers=0)
    by_validation = evaluate(run, root / "validation", num_workers=0)
    assert by_shards.metrics["images"] == by_validation.metrics["images"] == 12
    assert by_shards.metrics["confusion_matrix"] == by_validation.metrics["confusion_matrix"]
    assert by_shards.probabilities.numpy() == pytest.approx(by_validation.probabilities.numpy(), abs=1e-6)
    # CIFAR batches: the test batch, the same images `predict` reads from its validation/ path
    from transferlab import TrainConfig, fit
    from transferlab.inference.loading import load_predictor

    cifar = _fake_cifar(tmp_path / "c" / "cifar-10-batches-py")
    shutil.rmtree(tmp_path / "cr", ignore_errors=True)
    fit(TrainConfig(data=str(cifar), out=str(tmp_path / "cr"), model="test_efficientnet", weights="none",
                    image_size=32, epochs=1, num_workers=0), quiet=True)
    by_cifar = evaluate(tmp_path / "cr", tmp_path / "c", num_workers=0)
    assert by_cifar.metrics["images"] == 6 and "test batch" in by_cifar.source
    from transferlab.data.sources import list_images

    paths = list_images([cifar / "validation"])
    direct, _, _ = load_predictor(tmp_path / "cr").predict_proba(paths)
    assert sorted(by_cifar.probabilities.argmax(1).tolist()) == sorted(direct.argmax(1).tolist())
