"""Careless and hostile input: nothing deleted that transferlab did not make, nothing started on bad settings."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from transferlab.cli import app

from .conftest import TINY_MODEL, make_dataset

runner = CliRunner()
FAST = ["--model", TINY_MODEL, "--weights", "none", "--epochs", "1", "--image-size", "32", "--num-workers", "0",
        "--quiet"]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_overwrite_never_deletes_the_data_or_a_folder_holding_it(tmp_path):
    data = make_dataset(tmp_path / "data" / "victim", layout="flat", n_train=4, n_val=2)
    (data / "notes.txt").write_text("my notes")
    before = _tree(tmp_path / "data")
    for out in (data, tmp_path / "data"):  # the data itself, and its parent
        result = runner.invoke(app, ["train", str(data), "--out", str(out), "--overwrite", *FAST])
        assert result.exit_code == 2 and "Refusing --overwrite" in result.output and "holds the data" in result.output
        assert _tree(tmp_path / "data") == before


def test_overwrite_refuses_the_current_folder_and_foreign_folders(tmp_path, monkeypatch):
    data = make_dataset(tmp_path / "data", n_train=4, n_val=2)
    work = tmp_path / "work"
    work.mkdir()
    (work / "thesis.tex").write_text("chapter 1")
    monkeypatch.chdir(work)
    result = runner.invoke(app, ["train", str(data), "--out", ".", "--overwrite", *FAST])
    assert result.exit_code == 2 and "the current folder" in result.output
    assert (work / "thesis.tex").read_text() == "chapter 1"
    foreign = tmp_path / "results"
    foreign.mkdir()
    (foreign / "paper.pdf").write_bytes(b"%PDF")
    result = runner.invoke(app, ["train", str(data), "--out", str(foreign), "--overwrite", *FAST])
    assert result.exit_code == 2 and "not a transferlab run folder" in result.output and "Nothing was deleted" in \
        result.output
    assert (foreign / "paper.pdf").read_bytes() == b"%PDF"


def test_overwrite_replaces_run_folders_old_and_new(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=4, n_val=2)
    out = tmp_path / "run"
    assert runner.invoke(app, ["train", str(data), "--out", str(out), *FAST]).exit_code == 0
    marker = json.loads((out / ".transferlab-run").read_text())
    assert "transferlab" in marker
    (out / "history.csv").write_text("stale")
    assert runner.invoke(app, ["train", str(data), "--out", str(out), "--overwrite", *FAST]).exit_code == 0
    assert (out / "history.csv").read_text() != "stale"
    (out / ".transferlab-run").unlink()  # a run from before the marker: only run files inside
    assert runner.invoke(app, ["train", str(data), "--out", str(out), "--overwrite", *FAST]).exit_code == 0


@pytest.mark.parametrize("bad", [["--weights", "/no/such/weights.pth"], ["--model", "resnet5O"],
                                 ["--strategy", "frozen"], ["--lr", "fast"]])
def test_a_failed_start_leaves_no_stub_and_never_deletes(tmp_path, bad):
    """Bad settings fail before the run folder is made (so the corrected command is not blocked by a stub) and
    before an existing run would be replaced."""
    data = make_dataset(tmp_path / "data", n_train=4, n_val=2)
    out = tmp_path / "new"
    args = [a for a in FAST if a not in ("--quiet",)]
    settings = dict(zip(args[::2], args[1::2]))
    settings.update(dict(zip(bad[::2], bad[1::2])))
    flat = [x for kv in settings.items() for x in kv]
    result = runner.invoke(app, ["train", str(data), "--out", str(out), *flat])
    assert result.exit_code == 2, result.output
    assert not out.exists()
    kept = tmp_path / "kept"
    assert runner.invoke(app, ["train", str(data), "--out", str(kept), *FAST]).exit_code == 0
    before = _tree(kept)
    assert runner.invoke(app, ["train", str(data), "--out", str(kept), "--overwrite", *flat]).exit_code == 2
    assert _tree(kept) == before


def test_a_run_folder_inside_a_flat_data_folder_is_no_class(tmp_path):
    data = make_dataset(tmp_path / "data", layout="flat", n_train=6, n_val=2)
    inner = data / "run1"
    assert runner.invoke(app, ["train", str(data), "--out", str(inner), *FAST]).exit_code == 0
    out = tmp_path / "run2"
    result = runner.invoke(app, ["train", str(data), "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "data_report.json").read_text())
    assert set(report["counts"]["train"]) == {"cats", "dogs"}
    assert any(s["path"] == str(inner) and "run folder" in s["reason"] for s in report["skipped"])
    assert os.path.isdir(inner)


def test_a_shared_bundle_cannot_make_predict_load_another_file(tmp_path, tiny_run):
    """model_kwargs in a bundle's metadata reach the architecture: only sizes and regularisation are accepted."""
    import shutil

    from safetensors import safe_open
    from safetensors.torch import save_file

    _, run = tiny_run
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for name in ("labels.json", "preprocessing.json"):
        shutil.copy(run / name, bundle / name)
    with safe_open(str(run / "model.safetensors"), framework="pt") as f:
        metadata, tensors = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}
    metadata["model_kwargs"] = json.dumps({"checkpoint_path": str(tmp_path / "evil.pth")})
    save_file(tensors, str(bundle / "model.safetensors"), metadata=metadata)
    result = runner.invoke(app, ["predict", str(bundle), str(next((run.parent / "data" / "validation" / "cats")
                                                                  .glob("*.png")))])
    assert result.exit_code == 2 and "refusing 'checkpoint_path'" in result.output


@pytest.mark.parametrize(("setting", "message"), [({"lr": float("inf")}, "'lr' setting must be a finite"),
                                                  ({"weight_decay": -1.0}, "'weight_decay' setting must be at le"),
                                                  ({"warmup_epochs": -2}, "'warmup_epochs' setting must be at le"),
                                                  ({"model_kwargs": {"evil": 1}}, "refusing 'evil'")])
def test_settings_out_of_range_are_refused_before_anything_starts(tmp_path, setting, message):
    from transferlab import TrainConfig, fit
    from transferlab.errors import SettingError

    data = make_dataset(tmp_path / "data", n_train=4, n_val=2)
    with pytest.raises(SettingError, match=message):
        fit(TrainConfig(data=str(data), out=str(tmp_path / "run"), model=TINY_MODEL, weights="none", **setting),
            quiet=True)
    assert not (tmp_path / "run").exists()


def test_resume_refuses_a_checkpoint_that_is_not_weights_whatever_the_environment(tmp_path):
    """A replaced last.ckpt that would run code when unpickled is refused, even with the commonly suggested
    TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 set."""
    import pickle
    import subprocess
    import sys

    data = make_dataset(tmp_path / "data", n_train=4, n_val=2)
    out = tmp_path / "run"
    assert runner.invoke(app, ["train", str(data), "--out", str(out), *FAST]).exit_code == 0
    witness = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {witness}",))

    (out / "last.ckpt").write_bytes(pickle.dumps({"state_dict": Evil()}))
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
    proc = subprocess.run([sys.executable, "-m", "transferlab", "train", "--resume", str(out), "--epochs", "2"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert not witness.exists()
    assert proc.returncode == 2 and "Refusing to load" in proc.stderr, proc.stderr[-2000:]


def test_json_files_stay_valid_json_with_non_finite_numbers(tmp_path):
    from transferlab._io import write_json

    write_json(tmp_path / "m.json", {"loss": float("nan"), "rows": [float("inf"), 1.5]})
    assert json.loads((tmp_path / "m.json").read_text()) == {"loss": None, "rows": [None, 1.5]}


def test_a_run_that_diverges_at_once_keeps_no_model(tmp_path):
    """At lr 1e30 the first epoch already ends in NaN: no epoch is finite, so nothing becomes the bundle (a NaN model
    that `predict` would answer "cats (nan)" with is worse than none)."""
    data = make_dataset(tmp_path / "data", n_train=8, n_val=2)
    out = tmp_path / "run"
    args = ["train", str(data), "--model", TINY_MODEL, "--weights", "none", "--strategy", "full", "--optimizer", "sgd",
            "--lr", "1e30", "--epochs", "5", "--image-size", "32", "--num-workers", "0", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "the training loss became nan" in result.output and "too high" in result.output
    assert "No model was kept" in result.output
    metrics = json.loads((out / "metrics.json").read_text())  # valid JSON: no NaN in it
    assert metrics["diverged"] is True and metrics["epochs_run"] < 5
    assert not (out / "model.safetensors").exists() and not (out / "best.ckpt").exists()


def test_a_run_that_diverges_later_keeps_its_best_finite_epoch(tmp_path):
    """Weights poisoned with inf as epoch 2 starts: the loss turns NaN, training stops, and the bundle is epoch 1's
    model, every weight finite."""
    import lightning as L
    import torch
    from safetensors.torch import load_file

    from transferlab import TrainConfig, fit
    from transferlab.errors import TrainingDiverged

    class Poison(L.Callback):
        def on_train_epoch_start(self, trainer, module):
            if trainer.current_epoch == 1:
                with torch.no_grad():
                    next(module.parameters()).fill_(float("inf"))

    data = make_dataset(tmp_path / "data", n_train=8, n_val=2)
    out = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match="best finite checkpoint is kept"):
        fit(TrainConfig(data=str(data), out=str(out), model=TINY_MODEL, weights="none", strategy="full", epochs=4,
                        image_size=32, num_workers=0, lr=1e-3), quiet=True, callbacks=[Poison()])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["diverged"] is True and metrics["best_epoch"] == 1
    weights = load_file(out / "model.safetensors")
    assert all(bool(torch.isfinite(t).all()) for t in weights.values() if t.is_floating_point())


@pytest.mark.parametrize("where", ["xmp", "exif-after-64k"])
def test_orientation_is_honoured_wherever_the_file_keeps_it(tmp_path, where):
    """An orientation stored only in XMP, or in an EXIF block behind 64 KiB of other segments, turns the image as
    Pillow's exif_transpose does, on the fast decoding path too."""
    import io

    from PIL import Image, ImageOps

    from transferlab.data.images import load_rgb

    image = Image.new("RGB", (64, 32), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 32, 32))  # blue left half: the rotation is visible in the pixels
    buf = io.BytesIO()
    if where == "xmp":
        xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
               b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF>'
               b"</x:xmpmeta>")
        image.save(buf, "JPEG", xmp=xmp)
        data = buf.getvalue()
    else:
        exif = Image.Exif()
        exif[0x0112] = 6
        image.save(buf, "JPEG", exif=exif.tobytes())
        data = buf.getvalue()
        filler = b"\xff\xe2" + (65533).to_bytes(2, "big") + b"\x00" * 65531  # an APP2 segment of 64 KiB first
        data = data[:2] + filler + data[2:]
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    expected = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    for min_size in (None, 16):  # full size, and the reduced-scale decode the loaders use
        got = load_rgb(path, min_size=min_size)
        assert got.size[1] == 2 * got.size[0]  # 64x32 turned upright: portrait
    got = load_rgb(path)
    assert got.size == expected.size
    diff = sum(abs(a - b) for a, b in zip(got.getpixel((5, 5)), expected.getpixel((5, 5))))
    assert diff < 30  # same corner colour: turned the same way


def test_train_warns_about_leakage_and_conflicting_labels(tmp_path):
    """What `data info` detects, `train` says too: on the console, in data_report.json and in report.html."""
    import shutil

    data = make_dataset(tmp_path / "data", n_train=6, n_val=2)
    shutil.copy(data / "train" / "cats" / "img_000.png", data / "validation" / "cats" / "leaked.png")
    shutil.copy(data / "train" / "dogs" / "img_001.png", data / "train" / "cats" / "mislabelled.png")
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(data), "--out", str(out), *[a for a in FAST if a != "--quiet"]])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "1 image(s) appear in both train and validation" in flat
    assert "1 identical image(s) carry different labels" in flat and "mislabelled.png (cats)" in flat
    report = json.loads((out / "data_report.json").read_text())
    assert len(report["warnings"]) == 2 and len(report["duplicates"]) == 2
    page = (out / "report.html").read_text()
    assert "appear in both train and validation" in page and "carry different labels" in page


@pytest.mark.parametrize(("text", "expected"), [
    ("lr: 1e-4", {"lr": 1e-4}),                       # YAML 1.1 reads 1e-4 as text
    ('image_size: "64"', {"image_size": 64}),
    ('batch_size: "8"', {"batch_size": 8}),
    ('val_split: "0.2"', {"val_split": 0.2}),
    ("epochs: 2.0", {"epochs": 2}),
    ('feature_cache: "no"', {"feature_cache": False}),
    ("head_hidden: 256", {"head_hidden": [256]}),
    ("unfreeze_from: 143", {"unfreeze_from": "143"}),
    ('devices: "2"', {"devices": 2}),
    ("logger: tensorboard", {"logger": ["tensorboard"]}),
])
def test_config_values_are_converted_where_unambiguous(tmp_path, text, expected):
    from transferlab import TrainConfig

    path = tmp_path / "c.yaml"
    path.write_text(f"model: {TINY_MODEL}\n{text}\n")
    config = TrainConfig.from_yaml(path)
    for key, value in expected.items():
        assert getattr(config, key) == value and type(getattr(config, key)) is type(value)


@pytest.mark.parametrize(("text", "message"), [
    ("epochs: 1.7", r"line 2 \(epochs\).*whole number, e.g. `epochs: 10`; got 1.7"),
    ("patience: null", r"line 2 \(patience\).*cannot be empty.*`patience: 5`"),
    ("epochs: true", r"line 2 \(epochs\).*whole number"),
    ("seed: abc", r"line 2 \(seed\).*whole number.*got 'abc'"),
    ("warmup_epochs: -2", r"line 2 \(warmup_epochs\).*at least 0"),
    ("weight_decay: -1", r"line 2 \(weight_decay\).*at least 0"),
    ("val_split: 1.5", r"line 2 \(val_split\).*less than 1"),
    ("model_kwargs: {evil: 1}", r"line 2 \(model_kwargs\).*refusing 'evil'"),
    ("head_hidden: [a]", r"line 2 \(head_hidden\).*a list"),
    ("epoch: 3", r"line 2 \(epoch\).*Did you mean 'epochs'"),
    ("epochs: [1", r"line 3, column 1 is not valid YAML"),
    ("x: !!python/object/apply:os.system [touch pwned]", r"line 2: could not determine a constructor.*plain values"),
])
def test_config_file_errors_name_the_file_line_and_key_without_traceback(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(f"model: {TINY_MODEL}\n{text}\n")
    data = make_dataset(tmp_path / "data", n_train=2, n_val=1)
    result = runner.invoke(app, ["train", str(data), "--config", str(path), "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    flat = "".join(result.output.split("\n"))  # rich wraps long messages; the words run on
    flat = " ".join(flat.split())
    assert "Config file" in flat and "c.yaml" in flat
    assert re.search(message, flat), flat
    assert not (tmp_path / "run").exists() and not Path("pwned").exists()


def test_a_config_file_that_is_not_utf8_is_named(tmp_path):
    from transferlab import TrainConfig
    from transferlab.errors import SettingError

    path = tmp_path / "c.yaml"
    path.write_text("epochs: 3\n", encoding="utf-16")
    with pytest.raises(SettingError, match="not UTF-8"):
        TrainConfig.from_yaml(path)


def _copy_run(run: Path, to: Path) -> Path:
    import shutil

    shutil.copytree(run, to)
    return to


@pytest.mark.parametrize(("damage", "message"), [
    (lambda b: (b / "model.safetensors").write_bytes((b / "model.safetensors").read_bytes()[:1000]),
     "cannot be read as safetensors"),
    (lambda b: (b / "labels.json").write_text(""), "labels.json' is not valid JSON"),
    (lambda b: (b / "labels.json").write_text("[]"), "list of class names"),
    (lambda b: (b / "labels.json").write_text('{"cats": 0}'), "list of class names"),
    (lambda b: (b / "preprocessing.json").write_text('{"image_size": "x"}'), "image_size must be a whole number"),
    (lambda b: (b / "preprocessing.json").write_text('{"image_size": 32, "mean": [0.5], "std": [1, 1, 1]}'),
     "mean must be 3 finite numbers"),
    (lambda b: (b / "labels.json").write_text('["a", "b", "c", "d"]'), "do not fit labels.json"),
])
def test_a_damaged_or_mismatched_bundle_is_named_not_a_traceback(tmp_path, tiny_run, damage, message):
    root, run = tiny_run
    bundle = _copy_run(run, tmp_path / "bundle")
    damage(bundle)
    image = next((root / "validation" / "cats").glob("*.png"))
    for command in (["predict", str(bundle), str(image)], ["evaluate", str(bundle), str(root / "test")]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert message in " ".join(result.output.split())


@pytest.mark.parametrize(("args", "message"), [
    (["train", "{data}", "--rescale", "1/0", *FAST], "not a number or a fraction"),
    (["train", "{data}", "--accelerator", "gpu", *FAST], "PyTorch sees none"),
    (["evaluate", "{run}", "{data}/test", "--top-k", "0"], "--top-k"),
    (["predict", "{run}", "{data}/test", "--top-k", "0"], "--top-k"),
    (["serve", "{run}", "--port", "99999"], "'port' setting of serve must be at most 65535"),
])
def test_bad_options_get_a_message_and_exit_2(tmp_path, tiny_run, args, message):
    import torch

    if "gpu" in args and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    root, run = tiny_run
    command = [a.format(data=root, run=run) for a in args] + (["--out", str(tmp_path / "x")] if args[0] == "train"
                                                              else [])
    result = runner.invoke(app, command)
    assert result.exit_code == 2 and "Traceback" not in result.output and message in result.output, result.output
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(("text", "encoding", "message"), [
    ("", "utf-8", "lists no readable images"),
    ("path,label\n", "utf-8", "lists no readable images"),
    ("path,label\n{img},café\n", "latin-1", "not UTF-8"),
])
def test_index_files_that_list_nothing_or_are_not_utf8_are_named(tmp_path, text, encoding, message):
    data = make_dataset(tmp_path / "data", n_train=2, n_val=1)
    index = tmp_path / "labels.csv"
    index.write_text(text.format(img=next((data / "train" / "cats").glob("*.png"))), encoding=encoding)
    result = runner.invoke(app, ["train", str(index), "--out", str(tmp_path / "run"), *FAST])
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output
    assert "class folders" not in result.output  # the message speaks of the index, not of folders


def test_label_path_column_order_is_read_by_its_header(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=3, n_val=1)
    index = tmp_path / "labels.csv"
    rows = [f"{c},{p}" for c in ("cats", "dogs") for p in sorted((data / "train" / c).glob("*.png"))]
    index.write_text("label,path\n" + "\n".join(rows) + "\n")
    result = runner.invoke(app, ["train", str(index), "--out", str(tmp_path / "run"), "--val-split", "0.34", *FAST])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "labels.json").read_text()) == ["cats", "dogs"]


def test_resume_from_a_truncated_checkpoint_is_named(tmp_path, tiny_run):
    _, run = tiny_run
    copy = _copy_run(run, tmp_path / "run")
    for name in ("last.ckpt", "last-phase1.ckpt"):
        if (copy / name).is_file():
            (copy / name).write_bytes((copy / name).read_bytes()[:500])
    result = runner.invoke(app, ["train", "--resume", str(copy), "--epochs", "5", "-q"])
    assert result.exit_code == 2 and "damaged" in result.output and "Traceback" not in result.output, result.output


def test_evaluating_one_class_reports_no_roc_auc(tmp_path, tiny_run):
    import shutil

    root, run = tiny_run
    shutil.copytree(root / "test" / "dogs", tmp_path / "one" / "dogs")
    result = runner.invoke(app, ["evaluate", str(run), str(tmp_path / "one"), "--out", str(tmp_path / "eval")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "eval" / "eval_metrics.json").read_text())
    assert "roc_auc" not in metrics and "ROC AUC" not in result.output


def test_weights_that_are_not_safetensors_are_named(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=4, n_val=2)
    fake = tmp_path / "weights.safetensors"
    fake.write_bytes(b"\x80\x04PICKLE" * 10)  # a renamed pickle, not safetensors
    args = [a for a in FAST if a not in ("--weights", "none")]
    result = runner.invoke(app, ["train", str(data), "--out", str(tmp_path / "run"), *args, "--weights", str(fake)])
    assert result.exit_code == 2 and "not a readable .safetensors file" in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "run").exists()


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("10", 600), ("1.5h", 5400), ("168h", 604800),
                                               ("169h", None), ("0s", None), ("9" * 400, None), ("1e9", None)])
def test_a_budget_is_a_time_from_seconds_to_a_week(text, seconds):
    from transferlab.errors import SettingError
    from transferlab.workflows.budget import parse_budget

    if seconds is None:
        with pytest.raises(SettingError, match="from a few seconds to a week") as caught:
            parse_budget(text)
        assert len(str(caught.value)) < 300  # a 400-digit value is not repeated whole
    else:
        assert parse_budget(text) == seconds


@pytest.mark.parametrize(("argument", "given"), [("callbacks", ["early_stopping"]), ("callbacks", object()),
                                                 ("logger", 3)])
def test_callbacks_and_loggers_that_are_not_lightning_objects_are_refused_first(tmp_path, argument, given):
    from transferlab import TrainConfig, fit
    from transferlab.errors import SettingError

    data = make_dataset(tmp_path / "data", n_train=4, n_val=2)
    with pytest.raises(SettingError, match=f"'{argument}' argument of fit takes lightning"):
        fit(TrainConfig(data=str(data), out=str(tmp_path / "run"), model=TINY_MODEL, weights="none"),
            quiet=True, **{argument: given})
    assert not (tmp_path / "run").exists()


def test_an_image_size_beyond_4096_is_refused(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=4, n_val=2)
    args = [a for a in FAST if a not in ("--image-size", "32")]
    result = runner.invoke(app, ["train", str(data), "--out", str(tmp_path / "run"), *args, "--image-size", "100000"])
    assert result.exit_code == 2 and "image_size" in result.output and "4096" in result.output, result.output


def test_a_bundle_with_non_finite_weights_is_refused(tmp_path, tiny_run):
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    _, run = tiny_run
    copy = _copy_run(run, tmp_path / "run")
    with safe_open(str(copy / "model.safetensors"), framework="pt") as f:
        metadata, tensors = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}
    name = next(k for k, v in tensors.items() if v.is_floating_point())
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_file(tensors, str(copy / "model.safetensors"), metadata=metadata)
    image = next((run.parent / "data" / "validation" / "cats").glob("*.png"))
    result = runner.invoke(app, ["predict", str(copy), str(image), "--engine", "pytorch"])
    assert result.exit_code == 2 and "not numbers" in result.output and "diverged" in result.output, result.output


def test_resume_after_config_yaml_was_edited_to_another_model_is_named(tmp_path, tiny_run):
    import yaml

    _, run = tiny_run
    copy = _copy_run(run, tmp_path / "run")
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config["head_hidden"] = [7]  # the checkpoint's head has no hidden layer
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["train", "--resume", str(copy), "--epochs", "5", "-q"])
    assert result.exit_code == 2 and "config.yaml" in result.output and "edited" in result.output, result.output
    assert "Traceback" not in result.output


def test_an_internal_error_names_the_command_typed_and_no_invented_address(tmp_path, monkeypatch):
    import transferlab.data.info

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(transferlab.data.info, "data_info", broken)
    data = make_dataset(tmp_path / "data", n_train=4, n_val=2)
    result = runner.invoke(app, ["data", "info", str(data)])
    assert result.exit_code == 1 and "Internal error in `transferlab data info`" in result.output, result.output
    assert "http" not in result.output.split("Internal error")[1]


def test_a_huge_value_in_an_error_is_cut_not_printed_whole(capsys):
    import typer

    from transferlab.cli._common import user_errors
    from transferlab.errors import SettingError

    @user_errors
    def command():
        raise SettingError("Unknown value '" + "x" * 20_000 + "'. Pass a short one.")

    with pytest.raises(typer.Exit):
        command()
    err = capsys.readouterr().err
    assert 1000 < len(err) < 2200 and "[...]" in err and "Pass a short one." in err


@pytest.mark.parametrize(("text", "message"), [
    ("a: &x [1, 2]\nb: [*x, *x, *x]\n", "line 1: anchors and aliases"),
    ("train:\n", "'train:' must hold a mapping"),
    ("train: [1, 2]\n", "'train:' must hold a mapping"),
    ("epochs: 1\n" + "#" * 1_100_000 + "\n", "characters; a settings file has at most"),
])
def test_config_files_with_aliases_huge_or_without_settings_are_named(tmp_path, text, message):
    config = tmp_path / "c.yaml"
    config.write_text(text)
    result = runner.invoke(app, ["train", str(tmp_path), "--config", str(config)])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, result.output


def test_augment_refuses_a_config_that_is_not_yaml_settings(tmp_path):
    from PIL import Image

    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    for text in ("[1, 2]\n", "a: &x 1\nb: *x\n", "{unclosed"):
        config = tmp_path / "c.yaml"
        config.write_text(text)
        result = runner.invoke(app, ["augment", str(tmp_path / "a.png"), "--config", str(config), "--out",
                                     str(tmp_path / "g.png")])
        assert result.exit_code in (0, 2) and "Traceback" not in result.output and "Internal" not in result.output, \
            result.output


def test_a_full_disk_mid_run_is_named_and_the_run_can_be_resumed(tmp_path, monkeypatch):
    import errno

    from transferlab.runs.folder import RunFolder

    data = make_dataset(tmp_path / "data", n_train=4, n_val=2)
    out = tmp_path / "run"
    real = RunFolder.write_history

    def full(self, rows):
        if len(rows) >= 2:  # the disk fills up at the second epoch
            raise OSError(errno.ENOSPC, "No space left on device", str(self.file("history.csv")))
        return real(self, rows)

    monkeypatch.setattr(RunFolder, "write_history", full)
    args = [a if a != "1" else "3" for a in FAST]  # three epochs
    result = runner.invoke(app, ["train", str(data), "--out", str(out), *args])
    assert result.exit_code == 2 and "The disk is full" in result.output and "--resume" in result.output, \
        result.output
    assert "Traceback" not in result.output
    monkeypatch.setattr(RunFolder, "write_history", real)  # space freed: the lock was released, resume goes on
    result = runner.invoke(app, ["train", "--resume", str(out), "--epochs", "3", "-q"])
    assert result.exit_code == 0, result.output
    assert len((out / "history.csv").read_text().strip().splitlines()) == 1 + 3


def test_a_read_only_output_folder_is_named_and_nothing_is_left(tmp_path, monkeypatch):
    import errno

    import transferlab.runs.folder as folder

    def read_only(path, data):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    real = folder.write_json
    monkeypatch.setattr(folder, "write_json", read_only)
    data = make_dataset(tmp_path / "data", n_train=4, n_val=2)
    result = runner.invoke(app, ["train", str(data), "--out", str(tmp_path / "run"), *FAST])
    assert result.exit_code == 2 and "read-only file system" in result.output and "Traceback" not in result.output, \
        result.output
    monkeypatch.setattr(folder, "write_json", real)  # writable again: the same command runs, no --overwrite needed
    result = runner.invoke(app, ["train", str(data), "--out", str(tmp_path / "run"), *FAST])
    assert result.exit_code == 0, result.output
