"""Two-phase runs, the feature cache, learning-rate schedules, head options, class weights, kill -9 + resume."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch.callbacks import Callback
from PIL import Image
from typer.testing import CliRunner

from transferlab import TrainConfig, fit
from transferlab.cli import app
from transferlab.data import Preprocessing, eval_transform, load_image_folder, preprocessing_from_model
from transferlab.errors import SettingError
from transferlab.inference.engine import Engine, best_engine
from transferlab.inference.predictor import Predictor
from transferlab.models import build_classifier
from transferlab.training.features import cached_features, extract_features

from .conftest import TINY_MODEL, WhereRun, make_dataset

runner = CliRunner()


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "home"))


def _config(data: Path, out: Path, weights: Path, **kwargs) -> TrainConfig:
    base = dict(data=str(data), out=str(out), model=TINY_MODEL, weights=str(weights), image_size=32, batch_size=8,
                num_workers=0, epochs=2)
    return TrainConfig(**{**base, **kwargs})


def _history(run: Path) -> list[dict[str, str]]:
    with open(run / "history.csv") as f:
        return list(csv.DictReader(f))


def _assert_bundle_answers(run: Path, images: list[Path], expected_head: dict | None = None) -> None:
    """The reloaded predictor's probabilities equal the bundle's weights run directly (a classifier built here, the
    safetensors file loaded by hand, eager float32), and (with `expected_head`) its head is that checkpoint's."""
    import numpy as np
    from safetensors.torch import load_file

    from transferlab.data.images import load_rgb
    from transferlab.inference.portable import preprocess
    from transferlab.models import HeadConfig, build_classifier
    from transferlab.runs.bundle import load_bundle

    bundle = load_bundle(run)
    weights = load_file(run / "model.safetensors")
    head = HeadConfig.from_dict(json.loads(bundle.metadata["head"]))
    model = build_classifier(TINY_MODEL, len(bundle.labels), weights="none", image_size=32, head=head).eval()
    model.load_state_dict(weights)
    x = torch.from_numpy(np.stack([preprocess(load_rgb(p, min_size=bundle.preprocessing.resize_size),
                                              bundle.preprocessing) for p in images]))
    with torch.no_grad():
        direct = torch.softmax(model(x), -1).numpy()
    answered, _, failed = Predictor(run, engine="fp32").predict_proba(images)
    assert not failed and np.abs(answered - direct).max() < 1e-5
    for name, value in (expected_head or {}).items():
        assert torch.equal(weights[f"head.{name}"], value), name


def test_two_phase_runs_both_phases_into_one_history(dataset, tmp_path, tiny_weights):
    out = tmp_path / "run"
    result = fit(_config(dataset, out, tiny_weights, strategy="two-phase", epochs=2, finetune_epochs=2, lr=1e-2,
                         finetune_lr_factor=10, patience=0), quiet=True)
    rows = _history(out)
    assert [(r["epoch"], r["phase"]) for r in rows] == [("1", "1"), ("2", "1"), ("3", "2"), ("4", "2")]
    assert float(rows[0]["lr"]) == pytest.approx(1e-2) and float(rows[2]["lr"]) == pytest.approx(1e-3)
    for name in ("best-phase1.ckpt", "best-phase2.ckpt", "best.ckpt", "last.ckpt"):
        assert (out / name).is_file(), name
    assert json.loads((out / "state.json").read_text()) == {"completed": [1, 2]}
    assert result.metrics["epochs_run"] == 4
    # the bundle, reloaded, answers as the model held in memory at the end of training did (its validation report)
    import numpy as np

    paths = [s.path for s in result.evaluation.samples]
    reloaded, _, failed = Predictor(out).predict_proba(paths)
    assert not failed
    held = result.evaluation.probabilities.numpy()
    assert np.abs(reloaded - held).max() < 2e-3  # the same model; bf16 engines on both sides
    assert (reloaded.argmax(1) == held.argmax(1)).all()


def test_two_phase_second_phase_changes_the_base(dataset, tmp_path, tiny_weights):
    out = tmp_path / "run"
    fit(_config(dataset, out, tiny_weights, strategy="two-phase", epochs=1, finetune_epochs=1, patience=0,
                unfreeze_from="blocks.1"), quiet=True)
    phase2 = torch.load(out / "best-phase2.ckpt", weights_only=True)["state_dict"]
    original = torch.load(tiny_weights, weights_only=True)
    assert not torch.equal(phase2["model.features.conv_head.weight"], original["conv_head.weight"])
    assert torch.equal(phase2["model.features.conv_stem.weight"], original["conv_stem.weight"])  # before K: frozen


def test_feature_cache_is_reused_and_invalidated(dataset, tmp_path, tiny_weights):
    fit(_config(dataset, tmp_path / "a", tiny_weights), quiet=True)
    cache = Path(os.environ["TRANSFERLAB_HOME"]) / "features"
    first = sorted(p.name for p in cache.iterdir())
    assert len(first) == 2  # train and validation
    fit(_config(dataset, tmp_path / "b", tiny_weights), quiet=True)
    assert sorted(p.name for p in cache.iterdir()) == first  # reused, nothing new
    img = dataset / "train" / "cats" / "img_000.png"
    img.write_bytes((dataset / "train" / "dogs" / "img_000.png").read_bytes())  # same name, new content
    fit(_config(dataset, tmp_path / "c", tiny_weights), quiet=True)
    assert len(list(cache.iterdir())) == 3  # the train features were recomputed
    fit(_config(dataset, tmp_path / "d", tiny_weights, image_size=40), quiet=True)
    assert len(list(cache.iterdir())) == 5  # new preprocessing: new keys for both splits


def test_cached_and_uncached_freeze_agree(dataset, tmp_path, tiny_weights):
    # one full batch per epoch (24 training images, batch 64): the data order cannot matter, so the cached run
    # (the head on features computed once) must follow the uncached one (the frozen base run every step) epoch by
    # epoch, up to the feature engine's rounding (bf16 where the CPU has it)
    a = fit(_config(dataset, tmp_path / "a", tiny_weights, seed=3, epochs=3, lr=1e-2, batch_size=64, patience=0),
            quiet=True)
    b = fit(_config(dataset, tmp_path / "b", tiny_weights, seed=3, epochs=3, lr=1e-2, batch_size=64, patience=0,
                    feature_cache=False), quiet=True)
    cached, uncached = _history(a.run_dir), _history(b.run_dir)
    for key in ("loss", "val_loss"):
        assert [float(r[key]) for r in cached] == pytest.approx([float(r[key]) for r in uncached], abs=5e-4), key
    assert [r["val_accuracy"] for r in cached] == [r["val_accuracy"] for r in uncached]
    assert float(cached[0]["val_loss"]) != pytest.approx(float(cached[-1]["val_loss"]), abs=1e-3)  # it trained
    # checkpoints of a cached run hold the head only; the bundle holds the whole model
    assert all(k.startswith("model.0.") for k in torch.load(a.run_dir / "best.ckpt", weights_only=True)["state_dict"])
    head = {k.removeprefix("model."): v for k, v in
            torch.load(a.run_dir / "best.ckpt", weights_only=True)["state_dict"].items()}
    images = sorted((dataset / "validation").rglob("*.png"))
    _assert_bundle_answers(a.run_dir, images, head)  # the cached run's bundle: its best head on the base
    _assert_bundle_answers(b.run_dir, images)


def test_engine_features_match_eager_fp32(dataset):
    model = build_classifier("efficientnet_lite0", num_classes=2)
    pre = preprocessing_from_model(model, 64)
    samples = load_image_folder(dataset).validation
    fast = extract_features(model.features, samples, eval_transform(pre), engine=best_engine())
    eager = extract_features(model.features, samples, eval_transform(pre),
                             engine=Engine(dtype="float32", channels_last=False, device="cpu"))
    cos = torch.nn.functional.cosine_similarity(fast, eager, dim=1)
    assert fast.shape == eager.shape == (len(samples), 1280)
    assert float(cos.min()) > 0.99


@pytest.mark.parametrize("workers", [0, 1])
def test_extraction_on_a_cpu_runs_the_base_in_other_processes(dataset, tmp_path, workers):
    """With data-loading processes allowed on a CPU, each extraction process decodes its own batches and runs the
    base (single-threaded); the main process only gathers. The rows come back in the samples' order, equal to the
    base run directly on the stacked images; without workers, everything runs here."""
    samples = load_image_folder(dataset).validation + load_image_folder(dataset).train
    pre = Preprocessing(16, (0.5,) * 3, (0.5,) * 3)
    base = WhereRun(torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()), tmp_path / "pids.txt")
    got = extract_features(base, samples, eval_transform(pre), batch_size=4, num_workers=workers,
                           engine=Engine(dtype="float32", channels_last=False, device="cpu"))
    x = torch.stack([eval_transform(pre)(Image.open(s.path).convert("RGB")) for s in samples])
    with torch.no_grad():
        assert torch.allclose(got, base(x), atol=1e-6)
    lines = (tmp_path / "pids.txt").read_text().split()
    assert len(lines) == math.ceil(len(samples) / 4) + 1  # one line per batch, one for the direct run above
    assert lines.count(str(os.getpid())) == (1 if workers else len(lines))


def test_extraction_processes_finish_after_this_process_used_many_threads(dataset):
    """A forked process that starts its own team of OpenMP threads after the parent used one hangs (GNU libgomp):
    the extraction processes must stay single-threaded. Run in a child with a deadline, after a forward pass on 4
    threads; the rows equal those of extraction in one process."""
    code = f"""
import torch
from transferlab.data import Preprocessing, preprocessing_from_model, eval_transform, load_image_folder
from transferlab.inference.engine import Engine
from transferlab.models import build_classifier
from transferlab.training.features import extract_features
torch.set_num_threads(4)
model = build_classifier("efficientnet_lite0", num_classes=2)
with torch.no_grad():
    model(torch.randn(8, 3, 64, 64))
splits = load_image_folder({str(dataset)!r})
samples = splits.train + splits.validation
engine = Engine(dtype="float32", channels_last=True, device="cpu", fold_bn=True)
pre = preprocessing_from_model(model, 64)
there = extract_features(model.features, samples, eval_transform(pre), 4, 1, engine)
here = extract_features(model.features, samples, eval_transform(pre), 4, 0, engine)
print(len(samples), float((there - here).abs().max()))
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the child and its hung extraction processes
        pytest.fail("extraction hung: a forked extraction process started its own team of threads")
    assert proc.returncode == 0, err[-2000:]
    count, gap = out.split()[-2:]
    assert int(count) == 32 and float(gap) < 1e-4


@pytest.mark.parametrize("name", ["efficientnet_lite0", "test_resnet"])
@pytest.mark.parametrize("workers", [0, 1])
def test_batch_norm_folding_keeps_the_features(dataset, name, workers):
    """Extraction folds each BatchNorm into the convolution before it: in fp32 the features equal those of the
    unfolded eager model (a second path: the model as built, no engine), and every BatchNorm that follows a
    convolution (a sibling registered right after it) is gone from the copy while the original keeps its own."""
    from transferlab.inference.engine import fold_batch_norm

    model = build_classifier(name, num_classes=2, weights="none" if name == "test_resnet" else None)
    pre = preprocessing_from_model(model, 64)
    samples = load_image_folder(dataset).validation
    folded = extract_features(model.features, samples, eval_transform(pre), batch_size=3, num_workers=workers,
                              engine=Engine(dtype="float32", channels_last=True, device="cpu", fold_bn=True))
    x = torch.stack([eval_transform(pre)(Image.open(s.path).convert("RGB")) for s in samples])
    with torch.no_grad():
        plain = model.features.eval()(x)
    assert torch.allclose(folded, plain, rtol=1e-4, atol=1e-4 * float(plain.abs().max()))
    norms = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.features.modules())
    assert fold_batch_norm(model.features, check=x) is not model.features  # the check keeps a right fold
    left = sum(isinstance(m, torch.nn.BatchNorm2d) for m in fold_batch_norm(model.features).modules())
    # every norm of Lite0 follows a convolution; test_resnet's deep stem ends in a BatchNorm after a Sequential
    assert norms > 0 and left == (0 if name == "efficientnet_lite0" else 1)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.features.modules()) == norms


@pytest.mark.parametrize("workers", [0, 1])
def test_batch_norm_folding_falls_back_when_the_norm_comes_first(dataset, workers):
    """A BatchNorm registered after a convolution but applied before it cannot be folded: the first batch's check
    sees the difference and the base runs unfolded, so the features are still right."""

    class NormThenConv(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = torch.nn.Conv2d(3, 3, 3), torch.nn.BatchNorm2d(3)
            with torch.no_grad():
                self.bn.running_mean.uniform_(-1, 1)
                self.bn.running_var.uniform_(0.5, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(self.bn(x)).mean((2, 3))

    base = NormThenConv().eval()
    pre = Preprocessing(16, (0.5,) * 3, (0.5,) * 3)
    samples = load_image_folder(dataset).validation
    got = extract_features(base, samples, eval_transform(pre), batch_size=3, num_workers=workers,
                           engine=Engine(dtype="float32", channels_last=False, device="cpu", fold_bn=True))
    x = torch.stack([eval_transform(pre)(Image.open(s.path).convert("RGB")) for s in samples])
    with torch.no_grad():
        assert torch.allclose(got, base(x), atol=1e-5)


def test_cached_features_function_reports_hits(dataset, tmp_path):
    model = build_classifier(TINY_MODEL, num_classes=2, weights="none")
    pre = preprocessing_from_model(model, 32)
    samples = load_image_folder(dataset).train
    args = (model.features, samples, eval_transform(pre), pre.to_dict(), tmp_path / "cache")
    feats, hit = cached_features(*args)
    again, hit2 = cached_features(*args)
    assert (hit, hit2) == (False, True) and torch.equal(feats, again)


@pytest.mark.parametrize("schedule", ["step", "exponential", "cosine", "onecycle"])
def test_lr_schedules_change_the_rate(dataset, tmp_path, tiny_weights, schedule):
    out = tmp_path / "run"
    fit(_config(dataset, out, tiny_weights, epochs=4, lr=1e-2, lr_schedule=schedule, patience=0,
                warmup_epochs=0), quiet=True)
    lrs = [float(r["lr"]) for r in _history(out)]
    if schedule != "onecycle":  # history.csv: the rate each epoch trained with, the first one's is lr
        assert lrs[0] == pytest.approx(1e-2)
    if schedule == "cosine":  # torch's CosineAnnealingLR over 4 epochs, worked out: lr * (1 + cos(pi e / 4)) / 2
        assert lrs == pytest.approx([1e-2 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)])
    elif schedule == "step":  # step_size = 4 // 3 = 1, gamma 0.1
        assert lrs == pytest.approx([1e-2 * 0.1**e for e in range(4)])
    elif schedule == "exponential":
        assert lrs == pytest.approx([1e-2 * 0.9**e for e in range(4)])
    else:  # one-cycle starts at max_lr / 25 (torch's div_factor), rises, then falls
        assert lrs[0] == pytest.approx(1e-2 / 25) and max(lrs) > lrs[0] and lrs[-1] < max(lrs)
    assert yaml.safe_load((out / "config.yaml").read_text())["lr_schedule"] == schedule


def test_plateau_schedule_cuts_the_rate_as_torch_would(dataset, tmp_path, tiny_weights):
    """At a rate too small to change the predictions, val_accuracy stays flat: the rate must fall exactly when
    torch's own ReduceLROnPlateau (factor 0.2, patience 2, mode max), fed the same val_accuracy series, cuts it."""
    import torch

    out = tmp_path / "run"
    fit(_config(dataset, out, tiny_weights, epochs=6, lr=1e-6, lr_schedule="plateau", patience=0), quiet=True)
    rows = _history(out)
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1e-6)
    reference = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.2, patience=2)
    expected = []
    for row in rows:
        expected.append(optimizer.param_groups[0]["lr"])
        reference.step(float(row["val_accuracy"]))
    assert [float(r["lr"]) for r in rows] == pytest.approx(expected, rel=1e-6)
    assert expected[-1] < expected[0]  # the plateau was reached: the comparison is not vacuous


def test_warmup_ramps_up(dataset, tmp_path, tiny_weights):
    out = tmp_path / "run"
    fit(_config(dataset, out, tiny_weights, epochs=4, lr=1e-2, warmup_epochs=2, lr_schedule="cosine", patience=0),
        quiet=True)
    lrs = [float(r["lr"]) for r in _history(out)]
    assert lrs[0] < lrs[1] and lrs[1] <= 1e-2


def test_head_options_are_trained_saved_and_reloaded(dataset, tmp_path, tiny_weights):
    out = tmp_path / "run"
    fit(_config(dataset, out, tiny_weights, head_hidden=[16], head_dropout=0.5, head_batch_norm=True,
                label_smoothing=0.1, class_weight="balanced"), quiet=True)
    predictor = Predictor(out)
    head = predictor.bundle.model.head
    assert [type(m).__name__ for m in head] == ["Dropout", "Linear", "ReLU", "BatchNorm1d", "Dropout", "Linear"]
    assert head[1].out_features == 16
    _assert_bundle_answers(out, sorted((dataset / "validation").rglob("*.png")))


def test_class_weights_balanced(tmp_path):
    from transferlab.training.module import class_weights

    data = make_dataset(tmp_path / "d", n_train=4, n_val=2)
    for i in range(4, 12):
        (data / "train" / "cats" / f"x{i}.png").write_bytes((data / "train" / "cats" / "img_000.png").read_bytes())
    weights = class_weights(load_image_folder(data), "balanced")
    assert weights.tolist() == pytest.approx([16 / (2 * 12), 16 / (2 * 4)])


def test_layers_command_and_the_course_layer_143():
    """The course's Keras `base_model.layers[143:]` on ResNet50 starts at conv5_block1_1_conv, the first layer of
    the conv5 stage. In transferlab's layer list that layer is timm's `layer4.0.conv1`, index 127; both
    `unfreeze-from=127` and `unfreeze-from=layer4` select it (docs/finetuning.md)."""
    result = runner.invoke(app, ["layers", "resnet50", "--json", "--strategy", "unfreeze-from=layer4"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    first = next(r for r in doc["layers"] if r["name"].startswith("layer4"))
    assert (first["index"], first["name"], first["type"]) == (127, "layer4.0.conv1", "Conv2d")
    assert first["output_shape"] == [512, 14, 14]
    assert all(r["trainable"] in (False, None) for r in doc["layers"][:127])
    # counted independently on torchvision's ResNet50: its last stage, plus the new 2-class head on 2048 features
    import torchvision

    reference = torchvision.models.resnet50()
    stage4 = sum(p.numel() for p in reference.layer4.parameters())
    base = sum(p.numel() for p in reference.parameters()) - sum(p.numel() for p in reference.fc.parameters())
    assert stage4 == 14_964_736 and base == 23_508_032
    assert doc["trainable"] == stage4 + 2048 * 2 + 2 and doc["total"] == base + 2048 * 2 + 2
    table = runner.invoke(app, ["layers", "course_cnn"])
    assert table.exit_code == 0 and "3,453,121" in table.output


@pytest.mark.heavy
def test_kill_9_mid_run_then_resume_finishes(tmp_path, tiny_weights):
    data = make_dataset(tmp_path / "data", n_train=40, n_val=8)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "transferlab", "train", str(data), "--model", TINY_MODEL, "--weights", "none",
           "--strategy", "full", "--epochs", "500", "--patience", "0", "--image-size", "32", "--batch-size", "4",
           "--num-workers", "0", "--out", str(out), "--quiet", "--lr-schedule", "cosine"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (out / "last.ckpt").is_file():
            time.sleep(0.05)
        time.sleep(0.3)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    done = len(_history(out))
    assert 1 <= done < 500
    ckpt = torch.load(out / "last.ckpt", weights_only=True)
    assert ckpt["optimizer_states"] and ckpt["lr_schedulers"]
    result = runner.invoke(app, ["train", "--resume", str(out), "--epochs", str(done + 2), "--quiet"])
    assert result.exit_code == 0, result.output
    rows = _history(out)
    assert [int(r["epoch"]) for r in rows] == list(range(1, done + 3))
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == done + 2


def test_augmented_feature_copies(dataset, tmp_path, tiny_weights):
    out = tmp_path / "run"
    fit(_config(dataset, out, tiny_weights, augment="flip", feature_cache_copies=2, epochs=3), quiet=True)
    cache = Path(os.environ["TRANSFERLAB_HOME"]) / "features"
    assert len(list(cache.iterdir())) == 3  # two augmented train copies + validation
    assert len(_history(out)) == 3
    # with augmentation and no copies the base runs every epoch: nothing new is cached
    fit(_config(dataset, tmp_path / "b", tiny_weights, augment="flip", epochs=1), quiet=True)
    assert len(list(cache.iterdir())) == 3


def test_feature_copies_dataset_switches_copy_per_epoch():
    from transferlab.training.loaders import FeatureCopies

    ds = FeatureCopies([torch.zeros(3, 2), torch.ones(3, 2)], torch.tensor([0, 1, 0]))
    assert float(ds[1][0].sum()) == 0
    ds.epoch = 1
    assert float(ds[1][0].sum()) == 2
    ds.epoch = 2
    assert float(ds[1][0].sum()) == 0


@pytest.mark.parametrize("name", [TINY_MODEL, "test_resnet"])
def test_boundary_split_reproduces_the_full_forward(name):
    from transferlab.training.boundary import BoundaryNet, Prefix, boundary_stage
    from transferlab.training.strategies import apply_strategy

    model = apply_strategy(build_classifier(name, num_classes=3, weights="none"), "unfreeze-last=1").eval()
    k = boundary_stage(model.features)
    assert k is not None and k > 0
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(BoundaryNet(model.features, model.head, k)(Prefix(model.features, k)(x)), model(x),
                              atol=1e-5)
    assert boundary_stage(apply_strategy(model, "full").features) is None


def test_partial_fine_tuning_trains_on_boundary_activations(dataset, tmp_path, tiny_weights):
    out = tmp_path / "run"
    fit(_config(dataset, out, tiny_weights, strategy="unfreeze-last=1", epochs=2, lr=1e-2, batch_size=64,
                patience=0), quiet=True)
    cache = Path(os.environ["TRANSFERLAB_HOME"]) / "features"
    assert len(list(cache.iterdir())) == 2  # train and validation activations at the boundary
    state = torch.load(out / "best.ckpt", weights_only=True)["state_dict"]
    original = torch.load(tiny_weights, weights_only=True)
    assert torch.equal(state["model.features.conv_stem.weight"], original["conv_stem.weight"])  # frozen prefix
    assert not torch.equal(state["model.features.conv_head.weight"], original["conv_head.weight"])  # trained
    slow = fit(_config(dataset, tmp_path / "slow", tiny_weights, strategy="unfreeze-last=1", epochs=2, lr=1e-2,
                       batch_size=64, patience=0, feature_cache=False), quiet=True)
    # one full batch per epoch: the suffix trained on cached boundary activations follows the whole model run
    # every step, epoch by epoch, up to the cache's bf16 storage
    fast_rows, slow_rows = _history(out), _history(slow.run_dir)
    for key in ("loss", "val_loss"):
        assert [float(r[key]) for r in fast_rows] == pytest.approx([float(r[key]) for r in slow_rows], abs=5e-3), key
    _assert_bundle_answers(out, sorted((dataset / "validation").rglob("*.png")))


def test_augmented_boundary_copies_hold_each_image_or_its_mirror(dataset, tmp_path, tiny_weights):
    """With augmentation and --feature-cache-copies, partial fine-tuning caches that many augmented copies of the
    boundary activations (as `freeze` does for features): with 'flip', every cached row is the frozen prefix's
    output for the image or for its mirror image, computed here the plain way, and the copies differ."""
    from safetensors.torch import load_file

    from transferlab.training.boundary import Prefix, boundary_stage
    from transferlab.training.strategies import apply_strategy

    result = fit(_config(dataset, tmp_path / "run", tiny_weights, strategy="unfreeze-last=1", augment="flip",
                         feature_cache_copies=2, epochs=3, patience=0), quiet=True)
    assert len(_history(result.run_dir)) == 3
    files = sorted((Path(os.environ["TRANSFERLAB_HOME"]) / "features").iterdir())
    tensors = [load_file(str(f))["features"].float() for f in files]
    train = [t for t in tensors if len(t) == 24]  # 2 x 12 training images; the validation file has 8 rows
    assert len(files) == 3 and len(train) == 2
    model = apply_strategy(build_classifier(TINY_MODEL, num_classes=2, weights=str(tiny_weights)), "unfreeze-last=1")
    prefix = Prefix(model.features.eval(), boundary_stage(model.features))
    pre = preprocessing_from_model(model, 32)
    samples = load_image_folder(dataset).train
    x = torch.stack([eval_transform(pre)(Image.open(s.path).convert("RGB")) for s in samples])
    with torch.no_grad():
        plain, mirrored = prefix(x), prefix(x.flip(-1))
    flipped = 0
    for copy in train:
        near_plain = (copy - plain).abs().flatten(1).amax(1) <= 0.05 * plain.abs().flatten(1).amax(1)
        near_mirror = (copy - mirrored).abs().flatten(1).amax(1) <= 0.05 * mirrored.abs().flatten(1).amax(1)
        assert bool((near_plain | near_mirror).all())
        flipped += int((near_mirror & ~near_plain).sum())
    assert flipped > 0 and not torch.equal(train[0], train[1])


@pytest.mark.parametrize("mix", [{"mixup": 0.4}, {"cutmix": 1.0}, {"mixup": 0.2, "cutmix": 1.0}])
def test_mixup_and_cutmix_train_with_soft_labels(dataset, tmp_path, tiny_weights, mix):
    from transferlab.data import Preprocessing
    from transferlab.data.transforms import BatchTransform

    transform = BatchTransform(Preprocessing(8, (0.5,) * 3, (0.5,) * 3), "none", 2, mix.get("mixup", 0.0),
                               mix.get("cutmix", 0.0))
    x, y = transform(torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8), torch.tensor([0, 1]))
    assert y.shape == (2, 2) and torch.allclose(y.sum(dim=1), torch.ones(2))
    out = tmp_path / "run"
    fit(_config(dataset, out, tiny_weights, epochs=1, **mix), quiet=True)
    assert not (Path(os.environ["TRANSFERLAB_HOME"]) / "features").exists()  # mixed images: no feature cache
    assert len(_history(out)) == 1


@pytest.mark.parametrize("shape", [(6, 5, 3, 3), (6, 7)])
def test_mixing_cached_tensors_is_mixup_worked_out_by_hand(shape):
    """MixUp of cached activations ([N, C, H, W]) or features ([N, D]): each row is lam * its own tensor +
    (1 - lam) * the previous row's (torchvision's pairing), and the soft label holds lam on its own class."""
    from transferlab.data.transforms import BatchTransform

    torch.manual_seed(0)
    x, y = torch.randn(shape).bfloat16(), torch.tensor([0, 1, 2, 0, 1, 2])  # the boundary cache stores bf16
    mixed, soft = BatchTransform(Preprocessing(8, (0.5,) * 3, (0.5,) * 3), "none", 3, 0.4).mix_tensors(x, y)
    lam = float(soft[0, 0])
    assert 0 < lam < 1 and mixed.dtype == torch.float32 and mixed.shape == x.shape
    expected = lam * x.float() + (1 - lam) * x.float().roll(1, 0)
    assert torch.allclose(mixed, expected, atol=1e-6)
    assert torch.allclose(soft, lam * torch.eye(3)[y] + (1 - lam) * torch.eye(3)[y.roll(1, 0)])


def test_soft_labels_are_smoothed_like_hard_ones():
    """With label_smoothing, a one-hot soft label (a MixUp batch with lam = 1) gives PyTorch's own smoothed
    cross-entropy of the hard label; without smoothing at validation."""
    from transferlab.training.module import TransferModule

    module = TransferModule(torch.nn.Identity(), 4, TrainConfig(label_smoothing=0.2), lr=1e-3)
    logits, y = torch.randn(5, 4), torch.tensor([0, 3, 1, 1, 2])
    loss, _ = module._loss_and_preds(logits, torch.eye(4)[y], train=True)
    assert loss.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, y, label_smoothing=0.2).item())
    plain, _ = module._loss_and_preds(logits, torch.eye(4)[y], train=False)
    assert plain.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item())


class _Batches(Callback):
    """The (inputs, labels) of every training and validation batch as the model receives them."""

    def __init__(self) -> None:
        self.train: list = []
        self.val: list = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):  # noqa: ANN001 - Lightning's hook
        self.train.append((batch[0].detach().clone(), batch[1].detach().clone()))

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):  # noqa: ANN001
        self.val.append((batch[0].detach().clone(), batch[1].detach().clone()))


def test_mixup_on_cached_boundary_activations(dataset, tmp_path, tiny_weights):
    """mix_on='cached': partial fine-tuning keeps its boundary cache with MixUp; each training batch is a mixture
    of two cached rows (found again in the cache file) with soft labels; validation batches are cached rows,
    unmixed, with hard labels. With mix_on='images' (the default) the same settings mix images and make no cache."""
    from safetensors.torch import load_file

    batches = _Batches()
    fit(_config(dataset, tmp_path / "run", tiny_weights, strategy="unfreeze-last=1", mixup=0.4, mix_on="cached",
                epochs=1, patience=0, batch_size=4), quiet=True, callbacks=[batches])
    files = sorted((Path(os.environ["TRANSFERLAB_HOME"]) / "features").iterdir())
    cached = [load_file(str(f))["features"].float() for f in files]
    train = next(t for t in cached if len(t) == 24).flatten(1)  # 24 training images, 8 validation ones
    assert len(files) == 2 and batches.train and batches.val
    mixtures = 0
    for x, soft in batches.train:
        assert soft.dim() == 2 and torch.allclose(soft.sum(1), torch.ones(len(soft)))
        # one lam per batch: a row mixing two classes has soft label {lam, 1 - lam}
        weights = soft.max(1).values
        if bool((weights == 1).all()):
            continue  # every row mixed two images of one class: lam is not in the labels
        lam = float(weights[weights < 1].max())
        assert 0.5 <= lam < 1
        # every row is lam * a cached row + (1 - lam) * another one: some (ordered) pair of the cache gives it
        for row in x.flatten(1):
            pairs = (row - lam * train[:, None] - (1 - lam) * train[None]).abs().amax(-1)
            assert bool((pairs <= 1e-3 * train.abs().max()).any())
        mixtures += int(lam < 0.99)
    assert mixtures > 0
    validation = next(t for t in cached if len(t) == 8).flatten(1)
    for x, y in batches.val:
        assert y.dim() == 1
        assert all(((validation - row).abs().amax(1) == 0).any() for row in x.flatten(1).float())
    shutil.rmtree(Path(os.environ["TRANSFERLAB_HOME"]) / "features")
    fit(_config(dataset, tmp_path / "images", tiny_weights, strategy="unfreeze-last=1", mixup=0.4, epochs=1,
                patience=0), quiet=True)
    assert not (Path(os.environ["TRANSFERLAB_HOME"]) / "features").exists()


def test_cutmix_cannot_mix_cached_features(dataset, tmp_path, tiny_weights):
    for strategy in ("freeze", "two-phase"):
        with pytest.raises(SettingError, match="cutmix=1 with mix_on='cached'.*Use mixup instead"):
            fit(_config(dataset, tmp_path / "run", tiny_weights, cutmix=1.0, mix_on="cached", strategy=strategy,
                        epochs=1), quiet=True)
        assert not (tmp_path / "run").exists()  # refused before the run folder was made: the same --out works next
    with pytest.raises(SettingError, match="'mix_on'.*'images', 'cached'"):
        TrainConfig(mix_on="features").validate()


def test_compile_trains_and_saves_plain_weights(dataset, tmp_path, tiny_weights):
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("torch.compile on the CPU needs a C compiler")
    out = tmp_path / "compiled"
    result = fit(_config(dataset, out, tiny_weights, strategy="full", epochs=1, compile=True, feature_cache=False),
                 quiet=True)
    assert result.metrics["epochs_run"] == 1
    assert result.metrics["final"]["loss"] is not None and math.isfinite(result.metrics["final"]["loss"])
    state = torch.load(out / "best.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert state and not any("_orig_mod" in k for k in state)  # checkpoints hold the module, not the wrapper
    predictor = Predictor(out)
    probs, _, failed = predictor.predict_proba([next((dataset / "validation" / "cats").iterdir())])
    assert probs.shape == (1, 2) and not failed and float(probs.sum()) == pytest.approx(1.0, abs=1e-3)


def test_progress_bar_counts_epochs_like_keras():
    from types import SimpleNamespace

    from transferlab.training.callbacks.progress import KerasProgressBar

    bar = KerasProgressBar()
    bar._trainer = SimpleNamespace(max_epochs=10)
    assert bar._get_train_description(0).strip() == "Epoch 1/10"  # Lightning's own bar says 'Epoch 0/9'
    two = KerasProgressBar(phase=2)
    two._trainer = SimpleNamespace(max_epochs=5)
    assert two._get_train_description(4).strip() == "Phase 2, epoch 5/5"


def _train_until(out: Path, data: Path, weights: Path, rows: int, sig: int) -> tuple[int, str]:
    """Starts a long CLI training whose val_accuracy plateaus from epoch 1 (a frozen base, its batch norm in eval
    mode, and a head at lr 1e-6), waits for `rows` history rows, sends `sig`; returns the exit code and output."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "transferlab", "train", str(data), "--model", TINY_MODEL, "--weights", str(weights),
           "--strategy", "freeze", "--no-feature-cache", "--epochs", "500", "--patience", "0", "--image-size", "32",
           "--batch-size", "4",
           "--num-workers", "0", "--lr", "1e-6", "--out", str(out), "--no-decoded-cache"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(_history(out) if (out / "history.csv").is_file() else []) < rows:
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before the signal"
        proc.send_signal(sig)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, output


@pytest.mark.heavy
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["ctrl-c", "sigterm", "kill-9"])
def test_interrupt_after_a_plateau_then_resume_continues_at_the_next_epoch(tmp_path, tiny_weights, sig):
    """The best epoch is 1 and never improves; last.ckpt must still be the latest epoch, so that `--resume`
    continues after it: the history rows written before the interruption are kept exactly, none is repeated.
    Ctrl+C also leaves a usable bundle (the best so far) and prints the command that resumes."""
    data = make_dataset(tmp_path / "data", n_train=40, n_val=8)
    out = tmp_path / "run"
    code, output = _train_until(out, data, tiny_weights, 4, sig)
    before = _history(out)
    assert len(before) >= 4 and len({r["val_accuracy"] for r in before}) == 1  # a plateau: epoch 1 stays the best
    last = torch.load(out / "last.ckpt", weights_only=True)
    # the last state is the latest epoch's, not the best one's (a kill -9 may land between an epoch's history row
    # and its checkpoint: that one epoch is then trained again)
    assert len(before) - (last["epoch"] + 1) <= 1
    if sig in (signal.SIGINT, signal.SIGTERM):  # schedulers and `timeout` send SIGTERM: the same clean stop
        assert code == 130 and f"transferlab train --resume {out}" in output, output
        assert json.loads((out / "metrics.json").read_text())["interrupted"] is True
        predicted = runner.invoke(app, ["predict", str(out), str(data / "validation"), "--json"])
        assert predicted.exit_code == 0 and len(json.loads(predicted.stdout)) == 16
    else:
        assert code == -signal.SIGKILL
    done = int(last["epoch"]) + 1
    result = runner.invoke(app, ["train", "--resume", str(out), "--epochs", str(done + 2), "--quiet"])
    assert result.exit_code == 0, result.output
    after = _history(out)
    assert [int(r["epoch"]) for r in after] == list(range(1, done + 3))
    assert after[:done] == before[:done]  # nothing rewritten


def test_resume_with_more_epochs_extends_the_fine_tuning_phase_of_a_finished_two_phase_run(tmp_path, tiny_weights):
    """`--resume RUN --epochs N` on a finished two-phase run trains phase 2 up to N epochs (it used to do nothing,
    silently); a maximum that adds no epoch is refused with the number to pass."""
    data = make_dataset(tmp_path / "data", n_train=6, n_val=2)
    out = tmp_path / "run"
    first = runner.invoke(app, ["train", str(data), "--model", TINY_MODEL, "--weights", str(tiny_weights),
                                "--strategy", "two-phase", "--epochs", "1", "--finetune-epochs", "1", "--patience",
                                "0", "--image-size", "32", "--num-workers", "0", "--out", str(out), "--quiet"])
    assert first.exit_code == 0, first.output
    more = runner.invoke(app, ["train", "--resume", str(out), "--epochs", "3", "--quiet"])
    assert more.exit_code == 0, more.output
    rows = list(csv.DictReader(open(out / "history.csv")))
    assert [(int(r["epoch"]), int(r["phase"])) for r in rows] == [(1, 1), (2, 2), (3, 2), (4, 2)]
    none = runner.invoke(app, ["train", "--resume", str(out), "--epochs", "2"])
    assert none.exit_code == 2 and "already trained 3 epochs in phase 2" in " ".join(none.output.split())


@pytest.mark.parametrize("strategy", ["freeze", "unfreeze-last=1"])
def test_caches_over_the_limit_are_not_made_and_the_run_says_so(tmp_path, tiny_weights, monkeypatch, strategy):
    """With --cache-limit-gb below what a cache would take, the feature (or boundary) and decoded-image caches are
    not made: the run says which, how large it would be and what it does instead, and trains to the same kind of
    result from the images."""
    home = tmp_path / "home"
    monkeypatch.setenv("TRANSFERLAB_HOME", str(home))
    data = make_dataset(tmp_path / "data", n_train=6, n_val=2)
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(data), "--model", TINY_MODEL, "--weights", str(tiny_weights),
                                 "--strategy", strategy, "--epochs", "1", "--image-size", "32", "--num-workers", "0",
                                 "--cache-limit-gb", "1e-7", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    kind = "feature" if strategy == "freeze" else "boundary-activation"
    assert re.search(rf"The {kind} cache of \d+ images would take [\d.]+ GB, over cache_limit_gb = 1e-07", text)
    # the limit bounds both splits together: 12 training + 4 validation images
    assert "decoded-image cache of 16 images" in text and "decoded every epoch instead" in text
    assert not [p for p in home.rglob("*") if p.is_file()]  # nothing cached on disk (features, activations, images)
    assert (out / "model.safetensors").is_file() and (out / "metrics.json").is_file()


def test_the_same_settings_train_the_same_with_a_cold_or_a_warm_feature_cache(tmp_path, tiny_weights, monkeypatch):
    """The first run computes the features (its loader's workers draw seeds), the second reads them from the
    cache: the training data order, and so every number of the history, must be the same."""
    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "home"))
    data = make_dataset(tmp_path / "data", n_train=10, n_val=4)
    histories = []
    for name in ("cold", "warm"):
        result = runner.invoke(app, ["train", str(data), "--model", TINY_MODEL, "--weights", str(tiny_weights),
                                     "--epochs", "2", "--batch-size", "4", "--lr", "0.05", "--image-size", "32",
                                     "--num-workers", "2", "--out", str(tmp_path / name), "--quiet"])
        assert result.exit_code == 0, result.output
        with open(tmp_path / name / "history.csv", newline="") as f:
            histories.append([{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)])
    assert list((tmp_path / "home").rglob("*.safetensors"))  # the second run did read a cache
    assert histories[0] == histories[1]
