"""Evaluation, the pictures, report.html (in real headless Chromium), compare and test-time augmentation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from transferlab.cli import app

from .browser import browser_page, chromium_or_skip
from .conftest import TINY_MODEL, WhereRun, make_dataset, make_images

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tiny_run):
    """The shared 3-class run (conftest.tiny_run): data root with a test/ folder, and the run folder."""
    return tiny_run


def test_metrics_match_scikit_learn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    from transferlab.evaluation.metrics import compute_metrics

    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(60, 3, generator=g) * 2, dim=1)
    y = torch.randint(0, 3, (60,), generator=g)
    m = compute_metrics(probs, y, ["a", "b", "c"], top_k=2)
    pred = probs.argmax(1).numpy()
    assert m["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(y, pred), abs=1e-4)
    assert m["top2_accuracy"] == pytest.approx(sklearn_metrics.top_k_accuracy_score(y, probs.numpy(), k=2), abs=1e-4)
    p, r, f, s = sklearn_metrics.precision_recall_fscore_support(y, pred, zero_division=0)
    for i, name in enumerate("abc"):
        assert m["per_class"][name]["precision"] == pytest.approx(p[i], abs=1e-4)
        assert m["per_class"][name]["recall"] == pytest.approx(r[i], abs=1e-4)
        assert m["per_class"][name]["f1"] == pytest.approx(f[i], abs=1e-4)
        assert m["per_class"][name]["support"] == s[i]
    assert m["macro_avg"]["f1"] == pytest.approx(sklearn_metrics.f1_score(y, pred, average="macro"), abs=1e-4)
    assert m["weighted_avg"]["f1"] == pytest.approx(sklearn_metrics.f1_score(y, pred, average="weighted"), abs=1e-4)
    assert m["confusion_matrix"] == sklearn_metrics.confusion_matrix(y, pred).tolist()
    assert m["loss"] == pytest.approx(sklearn_metrics.log_loss(y, probs.numpy()), abs=1e-4)
    two = compute_metrics(probs[:, :2] / probs[:, :2].sum(1, keepdim=True), (y > 0).long(), ["neg", "pos"])
    auc = sklearn_metrics.roc_auc_score((y > 0).numpy(), (probs[:, 1] / probs[:, :2].sum(1)).numpy())
    assert two["roc_auc"] == pytest.approx(auc, abs=1e-4) and two["roc_curve"]["positive"] == "pos"
    perfect = compute_metrics(torch.eye(3)[[0, 1, 2, 0]], torch.tensor([0, 1, 2, 0]), ["a", "b", "c"])
    assert perfect["expected_calibration_error"] == pytest.approx(0.0, abs=1e-6) and perfect["accuracy"] == 1.0


def test_training_writes_report_with_validation_evaluation(trained):
    _, run = trained
    for name in ("report.html", "eval_metrics.json", "confusion_matrix.png", "misclassified.png", "per_class.png"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "eval_metrics.json").read_text())
    assert metrics["images"] == 12 and "validation split" in metrics["source"]
    history_best = json.loads((run / "metrics.json").read_text())["best_val_accuracy"]
    assert metrics["accuracy"] == pytest.approx(history_best, abs=1e-4)  # the same model, the same images


def test_evaluate_command_on_the_test_folder(trained, tmp_path):
    root, run = trained
    out = tmp_path / "eval"
    result = runner.invoke(app, ["evaluate", str(run), str(root), "--out", str(out), "--json", "--tta", "flip"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["images"] == 15 and len(data["confusion_matrix"]) == 3 and set(data["per_class"]) == {
        "birds", "cats", "dogs"}
    assert data["skipped"][0]["path"].endswith("broken.jpg")  # listed, not fatal
    assert data["tta"]["images"] == 15 and "accuracy" in data["tta"]  # reported separately
    saved = json.loads((out / "eval_metrics.json").read_text())
    assert {"accuracy", "per_class", "confusion_matrix", "expected_calibration_error"} <= set(saved)
    assert saved["tta"]["kind"] == "flip" and "test" in saved["source"]
    for name in ("confusion_matrix.png", "misclassified.png", "per_class.png", "report.html"):
        assert (out / name).stat().st_size > 1000, name


def test_tta_flip_averages_the_mirror_image(trained):
    from transferlab.data.images import load_rgb
    from transferlab.inference.predictor import Predictor, probabilities

    root, run = trained
    predictor = Predictor(run, engine="fp32")
    path = root.parent / "half_and_half.png"  # red left, blue right: its mirror image is another picture
    pixels = np.zeros((24, 24, 3), np.uint8)
    pixels[:, :12] = (220, 60, 40)
    pixels[:, 12:] = (40, 80, 220)
    Image.fromarray(pixels).save(path)
    x = predictor.transform(load_rgb(path))[None]
    with torch.no_grad():
        plain, mirrored = probabilities(predictor.model(x)), probabilities(predictor.model(x.flip(-1)))
    assert (plain - mirrored).abs().max() > 1e-3  # the flip changes the answer: the test can tell TTA from none
    expected = (plain + mirrored)[0] / 2
    got = {t["label"]: t["probability"] for t in predictor.predict([path], top_k=3, tta="flip")[0]["top"]}
    assert [got[label] for label in predictor.labels] == pytest.approx(expected.tolist(), abs=1e-5)
    result = runner.invoke(app, ["predict", str(run), str(path), "--tta", "flip", "--json"])
    assert result.exit_code == 0, result.output


def test_tta_ten_crop_averages_torchvisions_five_crops_and_their_mirror_images(trained, tmp_path):
    """ten-crop, worked out here with torchvision (Resize to the resize size, FiveCrop, each crop mirrored) and
    the model called directly, is what `predict` and `evaluate` report; a model that does not crop is refused."""
    import shutil

    from torchvision.transforms import InterpolationMode, v2

    from transferlab.inference.predictor import Predictor, probabilities

    root, run = trained
    predictor = Predictor(run, engine="fp32")
    pre = predictor.bundle.preprocessing
    assert pre.resize_size > pre.image_size  # the model crops, so the corner crops are other pictures
    path = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (30, 45, 3), dtype=np.uint8)).save(path)
    modes = {"bicubic": InterpolationMode.BICUBIC, "bilinear": InterpolationMode.BILINEAR}
    resized = v2.Resize(pre.resize_size, interpolation=modes[pre.interpolation])(predictor.decode(path))
    crops = [v2.functional.pil_to_tensor(c) for c in v2.FiveCrop(pre.image_size)(resized)]
    x = torch.stack(crops + [c.flip(-1) for c in crops]).float() / 255
    x = (x - torch.tensor(pre.mean)[:, None, None]) / torch.tensor(pre.std)[:, None, None]
    with torch.no_grad():
        views = probabilities(predictor.model(x))
    expected = views.mean(0)
    centre_and_mirror = views[[4, 9]].mean(0)
    assert (expected - centre_and_mirror).abs().max() > 1e-4  # the corners count: ten-crop is not flip
    got = {t["label"]: t["probability"] for t in predictor.predict([path], top_k=3, tta="ten-crop")[0]["top"]}
    assert [got[label] for label in predictor.labels] == pytest.approx(expected.tolist(), abs=1e-5)
    plain = predictor.predict_proba([path], tta="ten-crop")[0][0]
    assert plain.tolist() == pytest.approx(views[4].tolist(), abs=1e-5)  # the plain answer is the centre crop

    result = runner.invoke(app, ["evaluate", str(run), str(root), "--out", str(tmp_path / "e"), "--json", "--tta",
                                 "ten-crop", "-q"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["tta"]["kind"] == "ten-crop" and data["tta"]["images"] == data["images"] == 15
    flat = tmp_path / "no-crop"
    shutil.copytree(run, flat)
    saved = json.loads((flat / "preprocessing.json").read_text())
    (flat / "preprocessing.json").write_text(json.dumps({**saved, "crop_pct": 1.0}))
    refused = runner.invoke(app, ["predict", str(flat), str(path), "--tta", "ten-crop"])
    assert refused.exit_code == 2 and "Use tta='flip'" in refused.output


@pytest.mark.parametrize("tta", ["none", "ten-crop"])
def test_prediction_in_loading_processes_matches_prediction_here(trained, tmp_path, tta):
    """With loading processes on a CPU the model runs inside them (one single-threaded process per thread), not
    here; the probabilities, their order and the unreadable file's report are those of the model run here."""
    from transferlab.inference.predictor import Predictor

    root, run = trained
    paths = sorted(str(p) for p in (root / "test").rglob("*") if p.is_file())
    predictor = Predictor(run, engine="fp32")
    predictor.model = WhereRun(predictor.model, tmp_path / "pids.txt")
    here = predictor.predict_proba(paths, tta=tta, batch_size=4, num_workers=0)
    assert set((tmp_path / "pids.txt").read_text().split()) == {str(os.getpid())}
    (tmp_path / "pids.txt").unlink()
    there = predictor.predict_proba(paths, tta=tta, batch_size=4, num_workers=1)
    assert str(os.getpid()) not in (tmp_path / "pids.txt").read_text().split()
    assert len(here[2]) == 1 and here[2] == there[2]  # the broken file, at the same index, with the same reason
    reason = next(iter(here[2].values()))
    assert "not an image Pillow can identify" in reason and "0x" not in reason  # no in-memory object's address
    assert np.allclose(here[0], there[0], atol=1e-6) and here[0].sum(1).max() == pytest.approx(1.0)
    if tta == "none":
        assert here[1] is None and there[1] is None
    else:
        assert np.allclose(here[1], there[1], atol=1e-6)


def test_evaluating_the_training_folder_uses_only_its_validation_split(tmp_path, tiny_weights):
    from transferlab import TrainConfig, fit
    from transferlab.evaluation.metrics import evaluate

    flat = make_dataset(tmp_path / "flat", n_train=8, n_val=2, layout="flat")
    run = tmp_path / "run"
    fit(TrainConfig(data=str(flat), out=str(run), model=TINY_MODEL, weights=str(tiny_weights), epochs=1,
                    image_size=32, num_workers=0), quiet=True)
    result = evaluate(run, flat)
    assert "split.csv" in result.source and len(result.samples) == 4  # 20% of 20, never the training images


def test_evaluate_refuses_unknown_classes(trained, tmp_path):
    _, run = trained
    other = make_dataset(tmp_path / "other", classes=("cats", "birds"), n_train=2, n_val=1)
    (other / "validation" / "horses").mkdir()
    make_images(other / "validation" / "horses", (9, 9, 9), 1, seed=5)
    result = runner.invoke(app, ["evaluate", str(run), str(other / "validation")])
    assert result.exit_code == 2 and "horses" in result.output


def test_compare_overlays_runs(trained, tmp_path, tiny_weights):
    from transferlab import TrainConfig, fit

    root, run = trained
    second = tmp_path / "dropout"
    fit(TrainConfig(data=str(root), out=str(second), model=TINY_MODEL, weights=str(tiny_weights), epochs=2,
                    head_dropout=0.5, image_size=32, num_workers=0), quiet=True)
    out = tmp_path / "cmp"
    result = runner.invoke(app, ["compare", str(run), str(second), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["run"] for r in rows] == ["run", "dropout"] and rows[0]["epochs"] == 3 and rows[1]["epochs"] == 2
    assert (out / "compare.png").stat().st_size > 1000
    table = (out / "compare.md").read_text()
    assert "| run |" in table and "| dropout |" in table


def test_displays_are_usable_from_python(trained):
    import matplotlib.pyplot as plt

    from transferlab.evaluation.displays import ConfusionMatrixDisplay, MisclassifiedDisplay
    from transferlab.evaluation.metrics import evaluate

    root, run = trained
    result = evaluate(run, root / "test")
    fig, ax = plt.subplots()
    disp = ConfusionMatrixDisplay.from_result(result).plot(ax=ax)
    assert disp.ax_ is ax and disp.matrix.sum() == 15
    assert MisclassifiedDisplay.from_result(result).plot().figure_ is not None  # with or without mistakes


def test_misclassified_display_picks_the_mistakes_by_loss(tmp_path):
    """Six images with hand-set probabilities, three of them wrong: the display lists exactly those three, highest
    loss -log p(true) first (worked out by hand), and draws them."""
    import math

    import torch

    from transferlab.data.folder import Sample
    from transferlab.evaluation.displays import MisclassifiedDisplay
    from transferlab.evaluation.metrics import EvalResult

    paths = make_images(tmp_path / "imgs", (120, 40, 40), 6, seed=0)
    truth = [0, 0, 1, 1, 2, 2]
    probs = torch.tensor([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1],    # right; wrong, p(true) 0.2
                          [0.1, 0.8, 0.1], [0.6, 0.3, 0.1],      # right; wrong, p(true) 0.3
                          [0.05, 0.9, 0.05], [0.1, 0.1, 0.8]])  # wrong, p(true) 0.05; right
    result = EvalResult(["a", "b", "c"], [Sample(str(p), t) for p, t in zip(paths, truth)], probs, {})
    display = MisclassifiedDisplay.from_result(result, count=9)
    assert [(i["true"], i["predicted"]) for i in display.items] == [("c", "b"), ("a", "b"), ("b", "a")]
    assert [i["loss"] for i in display.items] == pytest.approx([-math.log(0.05), -math.log(0.2), -math.log(0.3)])
    assert [i["confidence"] for i in display.items] == pytest.approx([0.9, 0.7, 0.6])
    assert len(MisclassifiedDisplay.from_result(result, count=2).items) == 2
    display.plot().save(tmp_path / "mistakes.png")
    assert (tmp_path / "mistakes.png").stat().st_size > 1000


@pytest.mark.heavy
def test_report_renders_in_headless_chromium(trained, tmp_path):
    chromium = chromium_or_skip()
    root, run = trained
    runner.invoke(app, ["evaluate", str(run), str(root), "--quiet"])  # the report with the test-set evaluation
    report = Path(run) / "report.html"
    with browser_page(chromium) as (page, errors):
        page.goto(report.as_uri())
        images = page.eval_on_selector_all("img", "els => els.map(e => [e.alt, e.complete, e.naturalWidth])")
        text = page.inner_text("body")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert errors == []
    alts = {alt for alt, _, _ in images}
    assert {"training history", "confusion matrix", "misclassified images", "per-class accuracy"} <= alts
    assert all(done and width > 100 for _, done, width in images), images
    assert "Evaluation" in text and "Settings" in text and "Environment" in text
    assert (tmp_path / "report.png").stat().st_size > 10_000


@pytest.mark.parametrize("strategy", ["freeze", "full"])
def test_the_post_fit_report_reuses_cached_features_and_agrees_with_evaluate(tmp_path, tiny_weights, monkeypatch,
                                                                            strategy):
    """With a frozen base the report scores the validation features the head was trained on (no second pass over
    the images); its accuracy is the history's best val_accuracy and a fresh `evaluate` from the image files."""
    import transferlab
    from transferlab.inference.predictor import Predictor

    data = make_dataset(tmp_path / "data", n_train=12, n_val=6)
    passes = []
    original = Predictor.predict_proba
    monkeypatch.setattr(Predictor, "predict_proba",
                        lambda self, *a, **k: passes.append(len(a[0])) or original(self, *a, **k))
    result = transferlab.train(data, model=TINY_MODEL, weights=str(tiny_weights), strategy=strategy, epochs=3,
                               lr=0.01, image_size=32, num_workers=0, patience=0, precision="32-true",
                               out=tmp_path / "run", quiet=True)
    assert passes == ([] if strategy == "freeze" else [12])  # freeze: no image decoded again for the report
    report = json.loads((tmp_path / "run" / "eval_metrics.json").read_text())
    assert report["images"] == 12
    if strategy == "freeze":
        assert report["accuracy"] == pytest.approx(result.metrics["best_val_accuracy"], abs=1e-6)
    fresh = transferlab.evaluate(tmp_path / "run", data / "validation")
    assert fresh.metrics["confusion_matrix"] == report["confusion_matrix"]
