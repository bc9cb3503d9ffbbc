"""`transferlab study regularization`: one budget, several variants, a table and a plot; resumable."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from transferlab.cli import app

from .conftest import make_dataset


def test_regularization_study_compares_variants_and_resumes(tmp_path):
    data = make_dataset(tmp_path / "d", n_train=6, n_val=2)
    out = tmp_path / "study"
    args = ["study", "regularization", str(data), "--out", str(out), "--epochs", "1", "--image-size", "48",
            "--variants", "baseline,dropout_augment_bn", "--num-workers", "0", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout[result.stdout.index("["):])
    assert [r["variant"] for r in rows] == ["baseline", "dropout_augment_bn"]
    assert all(r["epochs"] == 1 for r in rows)
    for r in rows:  # the table's numbers are the variant's own history (read back independently)
        with open(out / r["variant"] / "history.csv", newline="") as f:
            history = list(csv.DictReader(f))
        assert r["best_val_accuracy"] == pytest.approx(float(history[0]["val_accuracy"]), abs=1e-4)
        assert r["best_val_loss"] == pytest.approx(float(history[0]["val_loss"]), abs=1e-4)
    table = (out / "study.md").read_text()
    assert "| baseline | the course CNN, no regularisation |" in table and (out / "compare.png").is_file()
    import yaml

    bn = yaml.safe_load((out / "dropout_augment_bn" / "config.yaml").read_text())
    assert bn["model_kwargs"] == {"drop_rate": 0.5, "batch_norm": True} and bn["augment"] == "light"
    finished = (out / "baseline" / "metrics.json").stat().st_mtime_ns
    assert CliRunner().invoke(app, args).exit_code == 0  # finished variants are kept, not trained again
    assert (out / "baseline" / "metrics.json").stat().st_mtime_ns == finished


def test_unknown_variant_is_refused(tmp_path):
    from transferlab.workflows.study import regularization_study

    with pytest.raises(ValueError, match="dropout50"):
        regularization_study(tmp_path, tmp_path / "s", variants=["dropout60"])


def test_study_announces_each_variant_and_warns_when_nothing_was_learned(tmp_path, capsys):
    """A rate of 1e-9 cannot learn anything in one epoch: every variant stays at chance, and the study says so
    instead of presenting a meaningless comparison."""
    from transferlab.workflows.study import regularization_study

    data = make_dataset(tmp_path / "d", n_train=6, n_val=2)
    rows = regularization_study(data, tmp_path / "s", epochs=1, image_size=48, lr=1e-9, num_workers=0,
                                variants=["baseline", "dropout50"], quiet=False)
    err = capsys.readouterr().err
    assert "Variant 1/2: baseline (" in err and "Variant 2/2: dropout50 (" in err
    assert all(r["best_val_accuracy"] == 0.5 for r in rows)
    assert "Warning: every variant: the best validation accuracy (0.500) stayed at chance level (0.500" in err
    assert "of the 2 classes" in err
