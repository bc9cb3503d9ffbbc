"""Every strategy of the registry trains, resumes and is planned as its spec says; the run keeps the best epoch as
runs.history defines it (ties: the lower val_loss), in best.ckpt and in the bundle alike.

A new `StrategySpec` is tested here without new test code: the tests loop over `STRATEGIES`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from transferlab import TrainConfig, fit
from transferlab.training.fit import resume
from transferlab.training.strategies import STRATEGIES, StrategySpec, parse_strategy, plan_phases

from .conftest import TINY_MODEL, make_dataset

SPECS = list(STRATEGIES.values())


def _history(run: Path) -> list[dict]:
    with open(run / "history.csv", newline="") as f:
        return [{k: (float(v) if k not in ("epoch", "phase") else int(v)) for k, v in row.items() if v != ""}
                for row in csv.DictReader(f)]


def _kept(rows: list[dict], monitor: str) -> dict:
    """The epoch the run must keep, worked out here: the best monitored value, on a tie the better other metric,
    on a full tie the first."""
    other, sign = ("val_loss", -1) if monitor == "val_accuracy" else ("val_accuracy", 1)
    main = 1 if monitor == "val_accuracy" else -1
    best = None
    for row in rows:
        key = (main * row[monitor], sign * row[other])
        if best is None or key > best[0]:
            best = (key, row)
    return best[1]


def _bundle_view(checkpoint: Path) -> dict[str, torch.Tensor]:
    """A checkpoint's weights under the bundle's names: a whole model ('model.features.*', 'model.head.*'), or a
    head trained on cached features ('model.0.weight' -> 'head.0.weight')."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    out = {}
    for key, value in state.items():
        name = key.removeprefix("model.")
        out[name if name.startswith(("features.", "head.")) else f"head.{name}"] = value
    return out


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_every_strategy_trains_resumes_and_keeps_its_best_epoch(spec: StrategySpec, tmp_path, tiny_weights):
    data = make_dataset(tmp_path / "data", n_train=8, n_val=4)
    out = tmp_path / "run"
    config = TrainConfig(data=str(data), out=str(out), model=TINY_MODEL, weights=str(tiny_weights),
                         strategy=spec.generic, epochs=1, image_size=32, num_workers=0, patience=0, seed=3)
    fit(config, quiet=True)
    saved = json.loads((out / "metrics.json").read_text())
    resolved = (out / "config.yaml").read_text()
    assert f"strategy: {spec.generic}" in resolved
    phases = plan_phases(TrainConfig(strategy=spec.generic, lr=spec.default_lr, epochs=1))
    assert saved["epochs_run"] == len(phases)  # one epoch of each phase
    assert f"lr: {spec.default_lr}" in resolved  # no --lr: the spec's own rate
    # resume with one more epoch of the phase that continues (the last): state.json says which phases are done
    state = json.loads((out / "state.json").read_text())
    assert state["completed"] == [p.index for p in phases]
    resume(out, epochs=2, quiet=True)
    rows = _history(out)
    assert [r["phase"] for r in rows] == [p.index for p in phases[:-1]] + [phases[-1].index] * 2
    assert [r["epoch"] for r in rows] == list(range(1, len(rows) + 1))
    metrics = json.loads((out / "metrics.json").read_text())
    kept = _kept(rows, "val_accuracy")
    assert (metrics["best_epoch"], metrics["best_phase"]) == (kept["epoch"], kept["phase"])
    # best.ckpt holds that epoch's weights, and so does the bundle
    bundle = load_file(out / "model.safetensors")
    best = _bundle_view(out / "best.ckpt")
    assert set(best) <= set(bundle)
    for name, value in best.items():
        assert torch.equal(value, bundle[name]), name


@pytest.mark.parametrize("monitor", ["val_accuracy", "val_loss"])
def test_a_two_phase_bundle_is_the_better_phases_best_checkpoint(monitor, tmp_path, tiny_weights, capsys):
    data = make_dataset(tmp_path / "data", classes=("cats", "dogs", "birds"), n_train=8, n_val=4)
    out = tmp_path / "run"
    fit(TrainConfig(data=str(data), out=str(out), model=TINY_MODEL, weights=str(tiny_weights), strategy="two-phase",
                    epochs=3, finetune_epochs=3, image_size=32, num_workers=0, patience=0, monitor=monitor, lr=0.05,
                    seed=1))
    rows = _history(out)
    kept = _kept(rows, monitor)
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["best_epoch"], metrics["best_phase"]) == (kept["epoch"], kept["phase"])
    # the last line says which phase and epoch were kept; "(best)" marks the run's best so far, across phases
    printed = capsys.readouterr().err
    assert f"Kept the model of phase {kept['phase']}, epoch {kept['epoch']}:" in printed
    marked = [int(line.split("epoch ")[1].split("/")[0]) + (3 if line.startswith("Phase 2") else 0)
              for line in printed.splitlines() if line.startswith("Phase ") and line.endswith("(best)")]
    assert marked[-1] == kept["epoch"]
    # config.yaml counts what each phase trained: the fine-tuning phase trains the whole model
    import yaml

    parameters = yaml.safe_load((out / "config.yaml").read_text())["parameters"]
    assert [p["strategy"] for p in parameters["phases"]] == ["freeze", "full"]
    assert parameters["phases"][1]["trainable"] == parameters["total"] == parameters["trainable"]
    phase_best = _bundle_view(out / f"best-phase{kept['phase']}.ckpt")
    assert {k: torch.equal(v, _bundle_view(out / "best.ckpt")[k]) for k, v in phase_best.items()} == \
        dict.fromkeys(phase_best, True)
    bundle = load_file(out / "model.safetensors")
    assert all(torch.equal(v, bundle[k]) for k, v in phase_best.items())
    if kept["phase"] == 1:  # the frozen phase trained the head only: the bundle's base is the pretrained one
        pretrained = torch.load(tiny_weights, weights_only=True)
        assert all(torch.equal(bundle[f"features.{k}"], v) for k, v in pretrained.items()
                   if f"features.{k}" in bundle and v.is_floating_point())


def test_a_tie_keeps_the_epoch_with_the_lower_validation_loss(tmp_path, tiny_weights):
    """Three well-separated colours: validation accuracy reaches 1.0 early and stays there while the loss keeps
    falling. The kept epoch is the last of the ties (the lowest loss), not the first at the ceiling."""
    data = make_dataset(tmp_path / "data", classes=("cats", "dogs", "birds"), n_train=10, n_val=4)
    out = tmp_path / "run"
    result = fit(TrainConfig(data=str(data), out=str(out), model=TINY_MODEL, weights=str(tiny_weights), epochs=8,
                             image_size=32, num_workers=0, patience=0, lr=0.05, seed=0), quiet=True)
    rows = _history(out)
    ceiling = [r for r in rows if r["val_accuracy"] == max(x["val_accuracy"] for x in rows)]
    assert len(ceiling) >= 2, "the data should saturate validation accuracy for this test to mean anything"
    lowest = min(ceiling, key=lambda r: r["val_loss"])
    assert lowest["epoch"] != ceiling[0]["epoch"]  # the first of equals is not the best here
    assert result.metrics["best_epoch"] == lowest["epoch"] == _kept(rows, "val_accuracy")["epoch"]
    assert result.metrics["best_val_loss"] == lowest["val_loss"]


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_every_spelling_parses_and_errors_name_the_registry(spec: StrategySpec):
    assert str(parse_strategy(spec.example)) == spec.example
    assert parse_strategy(spec.generic).spec is spec
    with pytest.raises(ValueError) as error:
        parse_strategy(spec.name + "ish")
    for other in STRATEGIES.values():
        assert repr(other.spelling) in str(error.value)  # every strategy is listed in the message
    if spec.argument is None:
        with pytest.raises(ValueError, match="takes no argument"):
            parse_strategy(f"{spec.name}=3")
    else:
        with pytest.raises(ValueError, match=spec.name):
            parse_strategy(f"{spec.name}=")


@pytest.mark.parametrize("spec", [s for s in SPECS if s.advised_as], ids=lambda s: s.name)
def test_every_advised_strategy_is_probed_for_its_epochs(spec: StrategySpec, tmp_path, tiny_weights):
    """What `advise --budget` measures of a strategy: a real run of its spec's probe epochs in every phase."""
    from transferlab.workflows.budget import _probe_split, _run_probe

    data = make_dataset(tmp_path / "data", n_train=8, n_val=4)
    index, _ = _probe_split(data, tmp_path, seed=0)
    probe = _run_probe(index, tmp_path / "probe", spec.advised_as, TINY_MODEL, str(tiny_weights), seed=0)
    phases = plan_phases(TrainConfig(strategy=spec.advised_as, lr=spec.default_lr))
    assert [p["epochs"] for p in probe["phases"]] == [spec.probe_epochs] * len(phases)
    assert all(len(p["val_accuracy"]) == spec.probe_epochs for p in probe["phases"])
