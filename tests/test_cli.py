"""End to end through the command line: train -> run folder -> predict, and the errors users meet."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from transferlab import TrainConfig
from transferlab.cli import app
from transferlab.models import build_classifier

from .conftest import TINY_MODEL, make_dataset

runner = CliRunner()
FAST = ["--image-size", "32", "--num-workers", "0", "--batch-size", "8", "--quiet"]


def train(*args: str) -> object:
    return runner.invoke(app, ["train", *map(str, args), *FAST])


def test_train_writes_a_complete_run_folder(dataset, tmp_path, tiny_weights):
    out = tmp_path / "run"
    result = train(dataset, "--model", TINY_MODEL, "--weights", tiny_weights, "--epochs", "2", "--out", out)
    assert result.exit_code == 0, result.output
    for name in ("config.yaml", "best.ckpt", "last.ckpt", "model.safetensors", "labels.json", "preprocessing.json",
                 "history.csv", "history.png", "metrics.json", "data_report.json", "split.csv"):
        assert (out / name).is_file(), name
    assert not list(out.glob(".*.tmp")), "temporary files left behind"
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["strategy"] == "freeze" and config["image_size"] == 32 and config["lr"] == 1e-3
    assert config["classes"] == ["cats", "dogs"]
    assert config["preprocessing"]["mean"] == [0.485, 0.456, 0.406]  # the model's own pretrained config
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"best_epoch", "best_val_accuracy", "best_val_loss", "wall_seconds"} <= set(metrics)
    assert metrics["epochs_run"] == 2
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["epoch", "phase", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"]
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert all(r[k] != "" for r in rows for k in rows[0])
    best = max(rows, key=lambda r: float(r["val_accuracy"]))
    assert float(best["val_accuracy"]) == pytest.approx(metrics["best_val_accuracy"])
    report = json.loads((out / "data_report.json").read_text())
    assert report["counts"]["train"] == {"cats": 12, "dogs": 12}
    ckpt = torch.load(out / "best.ckpt", map_location="cpu", weights_only=True)
    assert any(k.startswith("model.") for k in ckpt["state_dict"])
    assert json.loads((out / "labels.json").read_text()) == ["cats", "dogs"]
    import re

    page = (out / "report.html").read_text()
    assert re.search(r"time per epoch \(median\)</td><td>\d+\.\d s<", page), "durations as a person reads them"
    assert not re.search(r"\d\.\d{4} s", page)


def test_json_output_is_one_document(dataset, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(dataset), "--model", TINY_MODEL, "--weights", "none", "--epochs", "1",
                                 "--out", str(out), "--json", *FAST[:-1]])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["run_dir"] == str(out) and doc["epochs_run"] == 1


def test_training_learns_separable_data(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=24, n_val=8)
    out = tmp_path / "run"
    result = train(data, "--model", TINY_MODEL, "--weights", "none", "--epochs", "4", "--lr", "0.01",
                   "--out", out, "--seed", "0")
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["best_val_accuracy"] >= 0.9


def test_same_seed_same_metrics(dataset, tmp_path):
    metrics = []
    for name in ("a", "b"):
        result = train(dataset, "--model", TINY_MODEL, "--weights", "none", "--epochs", "2", "--out",
                       tmp_path / name, "--seed", "7")
        assert result.exit_code == 0, result.output
        metrics.append(json.loads((tmp_path / name / "metrics.json").read_text()))
    for key in ("best_val_loss", "best_val_accuracy", "best_epoch"):
        assert metrics[0][key] == pytest.approx(metrics[1][key], abs=1e-5)


def test_existing_out_is_refused_then_overwritten(dataset, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    args = [dataset, "--model", TINY_MODEL, "--weights", "none", "--epochs", "1", "--out", out]
    result = train(*args)
    assert result.exit_code == 2
    assert "already exists" in result.output and "--overwrite" in result.output
    assert (out / "keep.txt").read_text() == "precious"
    refused = train(*args, "--overwrite")  # not a run folder: --overwrite deletes nothing it did not make
    assert refused.exit_code == 2 and "not a transferlab run folder" in refused.output
    assert (out / "keep.txt").read_text() == "precious"
    (out / "keep.txt").unlink()
    assert train(*args).exit_code == 0  # an empty folder is used as it is
    assert train(*args, "--overwrite").exit_code == 0  # a run folder is replaced


def test_resume_continues_from_the_last_epoch(dataset, tmp_path):
    out = tmp_path / "run"
    assert train(dataset, "--model", TINY_MODEL, "--weights", "none", "--epochs", "1", "--out", out).exit_code == 0
    result = runner.invoke(app, ["train", "--resume", str(out), "--epochs", "3", "--quiet"])
    assert result.exit_code == 0, result.output
    with open(out / "history.csv") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2", "3"]
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == 3
    assert yaml.safe_load((out / "config.yaml").read_text())["epochs"] == 3  # the extended plan is recorded


def test_flat_folder_with_val_split_writes_the_split(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=8, n_val=2, layout="flat")
    out = tmp_path / "run"
    result = train(data, "--model", TINY_MODEL, "--weights", "none", "--epochs", "1", "--val-split", "0.3",
                   "--out", out)
    assert result.exit_code == 0, result.output
    with open(out / "split.csv") as f:
        rows = list(csv.DictReader(f))
    assert sum(r["split"] == "validation" for r in rows) == 6  # round(10 * 0.3) = 3 per class
    assert {r["label"] for r in rows} == {"cats", "dogs"}


def test_skipped_files_are_reported(dataset, tmp_path):
    (dataset / "train" / "cats" / "broken.jpg").write_bytes(b"garbage")
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(dataset), "--model", TINY_MODEL, "--weights", "none", "--epochs", "1",
                                 "--out", str(out), *FAST[:-1]])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Skipped 1 file" in text and "broken.jpg" in text
    report = json.loads((out / "data_report.json").read_text())
    assert report["skipped"][0]["path"].endswith("broken.jpg")


def test_course_cnn_binary_head_trains_and_predicts(dataset, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(dataset), "--model", "course_cnn", "--epochs", "1", "--out", str(out),
                                 "--image-size", "48", "--num-workers", "0", "--quiet"])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((out / "config.yaml").read_text())["strategy"] == "full"
    result = runner.invoke(app, ["predict", str(out), str(dataset / "validation"), "--json", "--top-k", "2"])
    assert result.exit_code == 0, result.output
    preds = json.loads(result.stdout)
    assert len(preds) == 8
    assert sum(t["probability"] for t in preds[0]["top"]) == pytest.approx(1.0, abs=1e-5)


def test_predict_on_a_copied_bundle_with_csv_and_bad_files(dataset, tmp_path, tiny_weights):
    out = tmp_path / "run"
    assert train(dataset, "--model", TINY_MODEL, "--weights", tiny_weights, "--epochs", "1", "--out",
                 out).exit_code == 0
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for name in ("model.safetensors", "labels.json", "preprocessing.json"):
        shutil.copy(out / name, bundle / name)
    images = tmp_path / "new"
    images.mkdir()
    shutil.copy(dataset / "validation" / "cats" / "img_000.png", images / "a.png")
    (images / "b.png").write_bytes(b"not a png")
    csv_path = tmp_path / "preds.csv"
    result = runner.invoke(app, ["predict", str(bundle), str(images), "--top-k", "5", "--output", str(csv_path),
                                 "--json"])
    assert result.exit_code == 0, result.output
    preds = json.loads(result.stdout)
    assert [Path(p["path"]).name for p in preds] == ["a.png", "b.png"]
    assert len(preds[0]["top"]) == 2  # top-k capped at the number of classes
    # the ranking and probabilities of the run's own model on that file (the API of the copied bundle's source)
    from transferlab.inference.predictor import Predictor

    probs, _, _ = Predictor(out).predict_proba([images / "a.png"])
    ranked = sorted(zip(["cats", "dogs"], probs[0]), key=lambda pair: -pair[1])
    assert [(t["label"], t["probability"]) for t in preds[0]["top"]] == [(c, pytest.approx(p, abs=1e-6))
                                                                          for c, p in ranked]
    assert sum(t["probability"] for t in preds[0]["top"]) == pytest.approx(1.0, abs=1e-5)
    assert "cannot read image" in preds[1]["error"]
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["label_1"] == ranked[0][0] and rows[1]["error"]
    table = runner.invoke(app, ["predict", str(out), str(images / "a.png")])
    assert table.exit_code == 0 and "a.png" in table.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "/no/such/folder", "--model", TINY_MODEL], "does not exist"),
        (["train", "{data}", "--model", TINY_MODEL, "--strategy", "frozen"], "Did you mean 'freeze'"),
        (["train", "{data}", "--model", TINY_MODEL, "--weights", "none", "--strategy", "freeze"], "--strategy full"),
        (["train", "{data}", "--model", "resnet5O"], "Unknown model"),
        (["train", "{data}", "--monitor", "val_acc"], "Did you mean 'val_accuracy'"),
        (["predict", "{tmp}", "x.png"], "holds no model bundle"),
    ],
)
def test_clear_errors(dataset, tmp_path, args, message):
    args = [a.format(data=dataset, tmp=tmp_path) for a in args]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "r")] if args[0] == "train" else args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def test_models_lists_the_registry():
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0
    rows = {m["name"]: m for m in json.loads(result.stdout)}
    assert {"course_cnn", "efficientnet_lite0", "resnet50", "vgg16", "efficientnet_b7", "vit_b16"} <= set(rows)
    assert rows["resnet50"]["keras"] == "ResNet50" and rows["course_cnn"]["parameters"] == 3_453_121


def test_config_file_sets_defaults_and_flags_override(dataset, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"model": TINY_MODEL, "weights": "none", "epochs": 3, "lr": 0.005}))
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(dataset), "--config", str(cfg), "--epochs", "1", "--out", str(out),
                                 *FAST])
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["epochs"] == 1 and saved["lr"] == 0.005 and saved["model"] == TINY_MODEL
    bad = tmp_path / "bad.yaml"
    bad.write_text("epoch: 3\n")
    result = runner.invoke(app, ["train", str(dataset), "--config", str(bad)])
    assert result.exit_code == 2 and "Did you mean 'epochs'" in " ".join(result.output.split())


def test_resume_without_epochs_keeps_the_planned_epochs(dataset, tmp_path):
    out = tmp_path / "run"
    assert train(dataset, "--model", TINY_MODEL, "--weights", "none", "--epochs", "2", "--out", out).exit_code == 0
    result = runner.invoke(app, ["train", "--resume", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == 2
    assert yaml.safe_load((out / "config.yaml").read_text())["epochs"] == 2


def test_resume_of_a_missing_run_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "Cannot resume" in result.output


def test_subset_and_time_budget_flags(dataset, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(dataset), "--subset", "3", "--max-minutes", "5", "--epochs", "1",
                                 "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "data_report.json").read_text())
    assert report["counts"]["train"] == {"cats": 3, "dogs": 3} and report["num_validation"] == 2
    assert yaml.safe_load((out / "config.yaml").read_text())["max_minutes"] == 5


def test_max_minutes_stops_training_when_the_budget_is_spent(dataset, tmp_path, monkeypatch):
    """A budget of 0.001 minutes (60 ms) ends a 50-epoch run long before its epochs, with the best checkpoint and a
    bundle (Lightning's max_time; the budget is checked between steps)."""
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(dataset), "--model", TINY_MODEL, "--weights", "none", "--epochs", "50",
                                 "--max-minutes", "0.001", "--no-feature-cache", "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] < 50 and metrics["stopped_early"]
    assert (out / "best.ckpt").is_file() and (out / "model.safetensors").is_file()


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "transferlab", *map(str, args)]


def test_piped_training_prints_one_line_per_epoch_and_announces_early_stopping(tmp_path, tiny_weights):
    """Output to a pipe (a log file, nohup, CI): one plain line per epoch with the same numbers as history.csv,
    the improving epochs marked, early stopping announced, and none of Lightning's own lines."""
    data = make_dataset(tmp_path / "data", n_train=20, n_val=6)
    out = tmp_path / "run"
    proc = subprocess.run(_cli("train", data, "--model", TINY_MODEL, "--weights", tiny_weights, "--epochs", "12",
                               "--patience", "2", "--lr", "1e-6", "--out", out, "--image-size", "32",
                               "--num-workers", "0"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("Epoch ")]
    with open(out / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(lines) == len(rows) == 3  # the plateau from epoch 1 stops after patience 2
    for line, row in zip(lines, rows):
        assert line.startswith(f"Epoch {row['epoch']}/12  loss {float(row['loss']):.3f}  ")
        assert f"val_accuracy {float(row['val_accuracy']):.3f}" in line and "lr 1e-6" in line
    # "(best)": a higher val_accuracy, or the same at a lower val_loss (worked out here from history.csv)
    best, marked = None, []
    for row in rows:
        key = (float(row["val_accuracy"]), -float(row["val_loss"]))
        marked.append(best is None or key > best)
        best = key if marked[-1] else best
    assert [line.endswith("(best)") for line in lines] == marked and marked[0]
    kept = max(rows, key=lambda r: (float(r["val_accuracy"]), -float(r["val_loss"])))["epoch"]
    assert f"Early stopping: no val_accuracy improvement for 2 epochs; best epoch {kept} restored." in proc.stderr
    noise = proc.stdout + proc.stderr
    assert "GPU available" not in noise and "TPU available" not in noise and "Tip:" not in noise
    assert "it/s" not in noise and "\r" not in noise  # no progress bar drawn into a pipe


def test_epoch_lines_reach_a_pipe_while_training_runs(tmp_path, tiny_weights):
    """Each line is flushed as its epoch ends: the first one is readable long before the run ends."""
    data = make_dataset(tmp_path / "data", n_train=20, n_val=6)
    env = {**os.environ, "PYTHONUNBUFFERED": "0"}  # no help from the interpreter: the tool must flush
    proc = subprocess.Popen(_cli("train", data, "--model", TINY_MODEL, "--weights", tiny_weights, "--epochs", "500",
                                 "--patience", "0", "--no-feature-cache", "--out", tmp_path / "run", "--image-size",
                                 "32", "--num-workers", "0"), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True, env=env)
    try:
        for line in proc.stderr:
            if line.startswith("Epoch 1/500"):
                break
        assert proc.poll() is None  # still training: the line was not held back until the end
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("recipe", sorted((Path(__file__).resolve().parents[1] / "src" / "transferlab" / "recipes"
                                           ).glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_recipe_is_a_valid_config_whose_layers_exist(recipe):
    """The examples' YAML recipes load as `train --config` loads them, and their strategy selects layers of their
    model: a renamed setting or layer would otherwise surface only when a student runs the recipe."""
    from transferlab.training.strategies import apply_strategy

    config = TrainConfig.from_yaml(recipe)
    model = build_classifier(config.model, num_classes=10, weights="none", **config.model_kwargs)
    if config.strategy:
        apply_strategy(model, config.strategy)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        assert 0 < trainable <= sum(p.numel() for p in model.parameters())


def test_ex3c_unfreezes_what_unfreeze_last_2_unfreezes_on_lite0():
    """ex3c's `unfreeze-from=blocks.5` (the course's "from a late layer") is the measured `unfreeze-last=2` of
    docs/benchmarks.md: the same parameters train, counted on the named modules, not through the strategy code."""
    from transferlab.training.strategies import apply_strategy

    config = TrainConfig.from_yaml("ex3c_cifar_unfreeze")  # a recipe, by name
    names = []
    for strategy in (config.strategy, "unfreeze-last=2"):
        model = apply_strategy(build_classifier("efficientnet_lite0", num_classes=10, weights="none"), strategy)
        names.append({n for n, p in model.named_parameters() if p.requires_grad})
    assert names[0] == names[1]
    expected = {n for n, _ in build_classifier("efficientnet_lite0", num_classes=10, weights="none").named_parameters()
                if n.startswith(("features.blocks.5.", "features.blocks.6.", "features.conv_head.", "features.bn2.",
                                 "head."))}
    assert names[0] == expected


def test_a_recipe_is_used_by_name_from_any_folder(tmp_path, monkeypatch):
    """`--config ex1_course_cnn` from a folder with no examples/ (a pip or Colab student): the shipped recipe; an
    unknown name lists the recipes."""
    monkeypatch.chdir(tmp_path)
    config = TrainConfig.from_yaml("ex1_course_cnn")
    assert (config.model, config.image_size, config.augment, config.lr) == ("course_cnn", 150, "course", 1e-4)
    assert TrainConfig.from_yaml("ex1_course_cnn.yaml") == config
    bad = runner.invoke(app, ["train", str(tmp_path), "--config", "ex1_course_cn"])
    text = " ".join(bad.output.split())
    assert bad.exit_code == 2 and "no recipe has that name" in text and "ex1_course_cnn" in text
