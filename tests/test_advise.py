"""`advise`: the measurements, the rule, and `train --strategy auto --lr auto`."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from typer.testing import CliRunner

from transferlab.cli import app
from transferlab.training.advise import choose_strategy, knn_accuracy, linear_probe_accuracy

from .conftest import TINY_MODEL, make_dataset

runner = CliRunner()


def _blobs(separation: float, n: int = 60, dim: int = 16, classes: int = 3):
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(classes, dim, generator=g) * separation
    labels = torch.arange(classes).repeat_interleave(n)
    return centres[labels] + torch.randn(len(labels), dim, generator=g), labels


def test_separability_measures_tell_easy_from_hard():
    easy, y = _blobs(5.0)
    hard, _ = _blobs(0.0)
    assert knn_accuracy(easy, y) > 0.95 and linear_probe_accuracy(easy, y) > 0.95
    assert knn_accuracy(hard, y) < 0.6 and linear_probe_accuracy(hard, y) < 0.6  # chance is 1/3


@pytest.mark.parametrize(("pretrained", "per_class", "probe", "gpu", "expected"), [
    (False, 5000, 0.99, True, "full"),
    (False, 5000, 0.99, False, "full"),
    (True, 300, 0.70, False, "freeze"),     # on a CPU the frozen base wins under a budget (docs/results.md)
    (True, 5000, 0.70, False, "freeze"),
    (True, 150, 0.95, True, "freeze"),
    (True, 50, 0.85, True, "freeze"),       # tiny data: a lower bar for "close to ImageNet"
    (True, 300, 0.70, True, "unfreeze-last=2"),
    (True, 5000, 0.95, True, "freeze"),
    (True, 5000, 0.70, True, "two-phase"),
])
def test_the_rule(pretrained, per_class, probe, gpu, expected):
    strategy, reasons = choose_strategy(pretrained, per_class, probe, gpu)
    assert strategy == expected and reasons


def test_advise_command_measures_and_recommends(tmp_path, tiny_weights):
    data = make_dataset(tmp_path / "d", classes=("cats", "dogs", "birds"), n_train=12, n_val=3)
    result = runner.invoke(app, ["advise", str(data), "--model", TINY_MODEL, "--weights", str(tiny_weights), "--json"])
    assert result.exit_code == 0, result.output
    advice = json.loads(result.stdout)
    m = advice["measurements"]
    assert m["classes"] == 3 and m["images_per_class_median"] == 12 and m["median_short_side"] == 24
    # three colours: separable by any features, far above chance (1/3); a random base's ImageNet outputs are flat
    assert m["linear_probe_accuracy"] == 1.0 and m["knn_accuracy"] == 1.0 and m["chance_accuracy"] == 0.3333
    assert m["imagenet_entropy"] == pytest.approx(1.0, abs=0.02)
    assert 1e-4 <= advice["lr"] <= 1e-2
    gpu = torch.cuda.is_available()
    assert advice["strategy"] == choose_strategy(True, 12, m["linear_probe_accuracy"], gpu)[0]
    if not gpu:
        assert advice["strategy"] == "freeze"  # the CPU rule
    assert advice["command"].startswith(f"transferlab train {data}") and f"--strategy {advice['strategy']}" in \
        advice["command"]
    assert any("images per class" in r for r in advice["reasons"])
    text = runner.invoke(app, ["advise", str(data), "--model", TINY_MODEL, "--weights", str(tiny_weights)])
    assert text.exit_code == 0 and "Command:" in text.output


def test_no_pretrained_weights_means_from_scratch(tmp_path):
    data = make_dataset(tmp_path / "d", n_train=6, n_val=2)
    result = runner.invoke(app, ["advise", str(data), "--model", "course_cnn", "--json"])
    assert result.exit_code == 0, result.output
    advice = json.loads(result.stdout)
    assert advice["strategy"] == "full" and "linear_probe_accuracy" not in advice["measurements"]
    # 6 images per class: a small set, so light augmentation, said with the reason and put in the command
    assert advice["augment"] == "light" and "--augment light" in advice["command"]
    assert any("light augmentation" in r for r in advice["reasons"])


def test_train_with_auto_strategy_and_lr_records_the_advice(tmp_path, tiny_weights):
    data = make_dataset(tmp_path / "d", n_train=10, n_val=3)
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(data), "--model", TINY_MODEL, "--weights", str(tiny_weights),
                                 "--strategy", "auto", "--lr", "auto", "--epochs", "1", "--image-size", "32",
                                 "--num-workers", "0", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["advice"]["strategy"] == config["strategy"] and config["lr"] == config["advice"]["lr"]
    assert "linear_probe_accuracy" in config["advice"]["measurements"]
    assert config["epochs"] == 1  # the user's --epochs wins over the advice's
    bad = runner.invoke(app, ["train", str(data), "--lr", "fast"])
    assert bad.exit_code == 2 and "'auto'" in bad.output


def test_auto_strategy_trains_the_epochs_and_augmentation_the_advice_says(tmp_path, tiny_weights, monkeypatch):
    """Without --epochs (or --augment), `--strategy auto` trains what the advice printed, not the defaults."""
    from transferlab.training import fit as fit_module
    from transferlab.training.advise import Advice
    from transferlab.training.config import TrainConfig

    advised = Advice("unfreeze-last=2", 3e-4, 3, "light", 32, TINY_MODEL)
    monkeypatch.setattr("transferlab.training.advise.advise", lambda *a, **k: advised)
    config = fit_module.resolve_config(TrainConfig(data=str(tmp_path), model=TINY_MODEL, weights=str(tiny_weights),
                                                   strategy="auto", lr="auto"))
    assert (config.strategy, config.lr, config.epochs, config.augment) == ("unfreeze-last=2", 3e-4, 3, "light")
    own = fit_module.resolve_config(TrainConfig(data=str(tmp_path), model=TINY_MODEL, weights=str(tiny_weights),
                                                strategy="auto", epochs=7, augment="flip"))
    assert (own.epochs, own.augment) == (7, "flip")


def test_learning_rate_pick_is_not_the_too_low_steepest_point():
    from transferlab.training.advise import pick_lr

    lrs = [10 ** (-6 + i * 0.1) for i in range(50)]
    losses = [2.0 - 0.02 * i if i < 40 else 1.2 + 0.5 * (i - 40) for i in range(50)]  # lowest near lr = 1e-2
    assert pick_lr(lrs, losses, steepest=1e-5) == pytest.approx(10 ** -2.5, rel=0.3)  # a third of the minimum
    assert pick_lr(lrs, losses, steepest=8e-3) == 8e-3
    assert pick_lr(lrs[:3], losses[:3], steepest=2e-4) == 2e-4  # too short a curve: the finder's own pick


def test_knn_and_probe_accuracy_agree_with_scikit_learn():
    """The two separability measurements against scikit-learn on the same features: leave-one-out 5-NN with
    cosine distance, and cross-validated logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import LeaveOneOut, StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    g = torch.Generator().manual_seed(0)
    labels = torch.arange(3).repeat_interleave(20)
    features = torch.randn(60, 16, generator=g) + 1.2 * torch.nn.functional.one_hot(labels, 16).float()
    knn = cross_val_score(KNeighborsClassifier(5, metric="cosine", algorithm="brute"), features.numpy(),
                          labels.numpy(), cv=LeaveOneOut()).mean()
    assert knn_accuracy(features, labels) == pytest.approx(knn, abs=0.05)  # ties may break differently
    probe = cross_val_score(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)), features.numpy(),
                            labels.numpy(), cv=StratifiedKFold(5, shuffle=True, random_state=0)).mean()
    assert linear_probe_accuracy(features, labels) == pytest.approx(probe, abs=0.1)
    assert 0.5 < knn < 1.0  # neither trivial nor hopeless: the comparison means something


def test_budget_spellings():
    from transferlab.errors import SettingError
    from transferlab.workflows.budget import parse_budget

    assert [parse_budget(t) for t in ("10m", "90s", "1.5h", "2", 3)] == [600, 90, 5400, 120, 180]
    for bad in ("ten minutes", "-5m", "0", "5d"):
        with pytest.raises(SettingError, match="--budget"):
            parse_budget(bad)


def test_budget_forecast_simulates_the_budgeted_run_as_worked_out_by_hand():
    from transferlab.workflows.budget import _predict

    # the probe: 100 training images in 10 batches of 10, 1 s a step, 2 s more per epoch, 1 s to validate 50 images
    phase = {"epochs": 3, "batches": 10, "step": 1.0, "overhead": 2.0, "val": 1.0, "val_accuracy": [0.5, 0.7, 0.6]}
    probe = {"wall": 40.0, "setup": 5.0, "report": 1.0, "batch_size": 10, "phases": [phase]}
    # on 400 + 100 images an epoch is 2 s + 40 steps + 2 s of validation = 44 s. Within 300 s: six whole epochs
    # (264 s), then the seventh starts at 266 s and stops after the batch that ends past 300 s: 34 more steps,
    # then its validation -> 274 steps, 302 s; 274 steps are 27 probe epochs: all three count (best 0.7)
    row = _predict("full", probe, 300, ratio=0.5, fixed=2.0, n_t=100, n_v=50, big_t=400, big_v=100)
    assert row.fits and row.epochs == 7 and row.probe["steps"] == [274]
    assert row.seconds == pytest.approx(2 + 3 * 500 / 150 + 302 + 1 * 100 / 50)  # set-up, training, report
    assert row.accuracy == pytest.approx(0.85)  # the probe's best (error 0.3) with half its error
    # 12 s: 10 steps of the first epoch, the probe's first epoch only (0.5); 25 s: 23 steps, two probe epochs
    short = _predict("full", probe, 12, ratio=0.5, fixed=2.0, n_t=100, n_v=50, big_t=400, big_v=100)
    assert (short.epochs, short.probe["steps"], short.accuracy) == (1, [10], pytest.approx(0.75))
    assert _predict("full", probe, 25, ratio=0.5, fixed=2.0, n_t=100, n_v=50, big_t=400,
                    big_v=100).accuracy == pytest.approx(0.85)
    frozen = {"epochs": 5, "batches": 10, "step": 0.01, "overhead": 0.1, "val": 0.05, "val_accuracy": [0.6] * 5}
    tuned = {"epochs": 5, "batches": 10, "step": 1.0, "overhead": 1.0, "val": 1.0,
             "val_accuracy": [0.8, 0.9, 0.95, 0.96, 0.97]}
    two = {"wall": 20.0, "setup": 5.0, "report": 0.5, "batch_size": 10, "phases": [frozen, tuned]}
    # 50 s per phase: phase 1 runs all 8 epochs (0.6 s each); phase 2: 43 s for epoch 1, then 6 steps of epoch 2
    # (44 s + 6 > 50) -> 46 steps = 4 probe epochs, best 0.96
    row = _predict("two-phase", two, 100, ratio=1.0, fixed=2.0, n_t=100, n_v=50, big_t=400, big_v=100)
    assert (row.epochs, row.finetune_epochs, row.probe["steps"]) == (8, 2, [320, 46])
    assert row.accuracy == pytest.approx(0.96)


def test_learning_curve_error_ratio_reads_a_power_law(monkeypatch):
    import transferlab.training.advise as advise_module
    from transferlab.workflows.budget import _learning_curve_error_ratio

    # a linear probe whose error is 6.4 / (training images), the curve's points at 4/5 of each subset (5-fold):
    # 16, 32 and 64 images for subsets of 20, 40 and 80 -> errors 0.4, 0.2, 0.1
    monkeypatch.setattr(advise_module, "linear_probe_accuracy", lambda f, y: 1 - 6.4 / (len(y) * 4 / 5))
    ratio, curve = _learning_curve_error_ratio(torch.zeros(80, 4), torch.zeros(80, dtype=torch.long), 20, 160)
    assert [n for n, _ in curve] == [16, 32, 64]
    assert ratio == pytest.approx(20 / 160)  # 0.32 at 20 images, 0.04 at 160 (beyond the last point)
    inside, _ = _learning_curve_error_ratio(torch.zeros(80, 4), torch.zeros(80, dtype=torch.long), 20, 40)
    assert inside == pytest.approx(0.5)
    # perfect at every size: no information, no change; worse with more images: never above 1
    monkeypatch.setattr(advise_module, "linear_probe_accuracy", lambda f, y: 1.0)
    assert _learning_curve_error_ratio(torch.zeros(80, 4), torch.zeros(80, dtype=torch.long), 20, 160)[0] == 1.0
    monkeypatch.setattr(advise_module, "linear_probe_accuracy", lambda f, y: 0.9 - len(y) / 1000)
    assert _learning_curve_error_ratio(torch.zeros(80, 4), torch.zeros(80, dtype=torch.long), 20, 160)[0] == 1.0


def test_advise_within_a_budget_probes_every_strategy_and_leaves_no_trace(tmp_path, tiny_weights, monkeypatch):
    import os

    data = make_dataset(tmp_path / "d", classes=("cats", "dogs", "birds"), n_train=12, n_val=3)
    homes = {}
    for name, extra in (("plain", []), ("budget", ["--budget", "10m"])):
        monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / name))
        result = runner.invoke(app, ["advise", str(data), "--model", TINY_MODEL, "--weights", str(tiny_weights),
                                     "--json", *extra])
        assert result.exit_code == 0, result.output
        assert os.environ["TRANSFERLAB_HOME"] == str(tmp_path / name)  # restored after the probes
        homes[name] = sorted(p.relative_to(tmp_path / name) for p in (tmp_path / name).rglob("*") if p.is_file())
        advice = json.loads(result.stdout)
    assert homes["budget"] == homes["plain"]  # the probes' caches went into a temporary home
    rows = {r["strategy"]: r for r in advice["forecasts"]}
    from transferlab.training.strategies import advised_candidates

    assert sorted(rows) == sorted(["freeze", "unfreeze-last=2", "two-phase", "full"])
    assert list(rows) == list(advised_candidates())  # in the registry's order
    assert all(r["fits"] and r["probe"]["probe_seconds"] > 0 for r in rows.values())  # the tiny model fits all
    # each probe trained for real: its accuracies are the probe run's history, one per epoch and phase
    assert [len(a) for a in rows["two-phase"]["probe"]["probe_val_accuracy"]] == [5, 5]
    assert len(rows["unfreeze-last=2"]["probe"]["probe_val_accuracy"][0]) == 8
    best = max(rows.values(), key=lambda r: r["accuracy"])["accuracy"]
    assert rows[advice["strategy"]]["accuracy"] == best
    assert f"--strategy {advice['strategy']}" in advice["command"] and "--max-minutes 10" in advice["command"]
    text = runner.invoke(app, ["advise", str(data), "--model", TINY_MODEL, "--weights", str(tiny_weights),
                               "--budget", "10m"], env={"COLUMNS": "80"})
    assert text.exit_code == 0 and "what 10 minutes of training should give" in " ".join(text.output.split())
    # each step is said as it happens, and the command, wrapped with \\ continuations, is the advice's own
    assert "Probe 1/4: freeze" in text.output and "Advice ready in" in text.output
    lines = text.output[text.output.index("Command:"):].splitlines()[1:]
    assert all(len(line) <= 80 for line in lines)
    assert " ".join(" ".join(line.rstrip("\\").split()) for line in lines) == advice["command"]
    bad = runner.invoke(app, ["advise", str(data), "--budget", "soon"])
    assert bad.exit_code == 2 and "--budget" in bad.output


def test_a_whole_model_strategy_too_slow_for_the_budget_is_skipped_and_none_fitting_is_said(monkeypatch):
    """The budget's two refusals, worked out by hand: 0.5 s per image x 1,000 images is a 500 s epoch; with 20 s
    (two-phase: 10 s per phase) that is over ten times the time it has, so it is not probed; and when nothing fits,
    the advice says so instead of advising something."""
    from transferlab.errors import SettingError
    from transferlab.workflows import budget

    facts = {"strategies": ["full", "two-phase"], "probes": {}, "step_seconds": 0.5, "train": 1000,
             "validation": 100, "probe_train": 100, "probe_validation": 50, "error_ratio": 1.0}
    assert budget._skip("full", facts, 20) == ("one epoch of the whole model would take about 500 s (its training "
                                               "steps alone), over 10x the 20 s it would have")
    assert "over 10x the 10 s" in budget._skip("two-phase", facts, 20)
    assert budget._skip("full", facts, 60 * 60) == ""  # 500 s against an hour: worth a probe
    rows = budget.plan(facts, 20)
    assert [(r.strategy, r.fits) for r in rows] == [("full", False), ("two-phase", False)]
    assert budget.choose(rows) is None

    class Measured:
        features = labels = None
        model, seconds, reasons, measurements = "efficientnet_lite0", 1.0, [], {}

    monkeypatch.setattr("transferlab.training.advise.advise", lambda *a, **k: Measured())
    monkeypatch.setattr(budget, "forecast", lambda *a, **k: (rows, facts))
    with pytest.raises(SettingError, match="No strategy fits one epoch into a budget of 20s: full: one epoch"):
        budget.advise_within("data", "20s")


def test_the_advice_keeps_within_its_budget_by_not_running_what_would_not_fit(tmp_path, tiny_weights, monkeypatch):
    """Probes are estimated first; one whose estimate passes the time left is not run, and the table says why
    (trial runs are replaced here by estimates that cannot fit: the rule, not the clock, is tested)."""
    from transferlab.workflows import budget

    data = make_dataset(tmp_path / "d", n_train=8, n_val=3)
    ran, said = [], []
    monkeypatch.setattr(budget, "_probe_costs",
                        lambda index, model, weights, sizes, strategies, facts: {s: 10.0 if s == "freeze" else 1e6
                                                                                 for s in strategies})
    real = budget._run_probe

    def run(*args, **kwargs):
        ran.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(budget, "_run_probe", run)
    advice = budget.advise_within(data, "2m", TINY_MODEL, str(tiny_weights), say=said.append)
    assert ran == ["freeze"]
    rows = {r["strategy"]: r for r in advice.forecasts}
    assert rows["freeze"]["fits"] and not any(rows[s]["fits"] for s in rows if s != "freeze")
    assert all("its trial would take about 1000000 s" in rows[s]["why"] for s in rows if s != "freeze")
    assert said[0].startswith("Advising within 2 minutes") and said[-1].startswith("Advice ready in")
    assert any(line.startswith("Probe 2/4: unfreeze-last=2: not probed") for line in said)
