"""What a student of the course sees: the numbers a run reports, file permissions, the pictures' axes."""

from __future__ import annotations

import json
import os
import re
import stat

import pytest
import yaml
from typer.testing import CliRunner

from transferlab.cli import app

from .conftest import TINY_MODEL, make_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def frozen_run(tmp_path_factory, tiny_weights):
    """A two-class run with a frozen base and a Dense(16) head, through the CLI (its console output kept)."""
    root = make_dataset(tmp_path_factory.mktemp("student") / "data", n_train=10, n_val=4)
    out = root.parent / "run"
    old = os.umask(0o022)
    try:
        result = runner.invoke(app, ["train", str(root), "--model", TINY_MODEL, "--weights", str(tiny_weights),
                                     "--epochs", "3", "--head-hidden", "16", "--image-size", "32", "--num-workers",
                                     "0", "--out", str(out)])
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    return root, out, result.output


def test_config_records_the_parameters_the_frozen_phase_trains(frozen_run):
    """Worked out by hand: the head is Dense(256 -> 16) + Dense(16 -> 2); the frozen base trains nothing."""
    import timm

    _, out, output = frozen_run
    base = sum(p.numel() for p in timm.create_model(TINY_MODEL, num_classes=0).parameters())
    head = 256 * 16 + 16 + 16 * 2 + 2
    params = yaml.safe_load((out / "config.yaml").read_text())["parameters"]
    assert params == {"total": base + head, "trainable": head, "non_trainable": base}
    assert f"{head:,} of {base + head:,} parameters trainable" in output  # the console says the same


def test_run_files_are_readable_by_others_under_the_usual_umask(frozen_run):
    _, out, _ = frozen_run
    for name in ("config.yaml", "history.csv", "metrics.json", "model.safetensors", "labels.json", "report.html",
                 "best.ckpt", "last.ckpt", "history.png"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name


def test_report_shows_wall_time_as_a_duration(frozen_run):
    _, out, _ = frozen_run
    html = (out / "report.html").read_text()
    seconds = json.loads((out / "metrics.json").read_text())["wall_seconds"]
    assert re.search(r"wall time<b>\d+\.\d s</b>", html) and f"{seconds:.4f}" not in html


def test_two_class_evaluation_reports_no_trivial_top_k(frozen_run, tmp_path):
    root, out, _ = frozen_run
    result = runner.invoke(app, ["evaluate", str(out), str(root / "validation"), "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout[result.stdout.index("{"):])
    assert not [k for k in metrics if k.startswith("top")]  # top-2 of 2 classes is always 1.0
    text = runner.invoke(app, ["evaluate", str(out), str(root / "validation"), "--out", str(tmp_path)])
    assert text.exit_code == 0 and "top2" not in text.output and "Accuracy " in text.output


def test_compare_has_whole_epochs_and_says_what_was_trained(frozen_run, tmp_path):
    from transferlab.evaluation.compare import compare_runs
    from transferlab.evaluation.displays import CompareDisplay
    from transferlab.runs.folder import RunFolder

    _, out, _ = frozen_run
    rows = compare_runs([out], tmp_path)
    assert rows[0]["model"] == TINY_MODEL and rows[0]["strategy"] == "freeze" and rows[0]["data"] == "data"
    display = CompareDisplay({"run": RunFolder(out).history()}).plot()
    ticks = [t for t in display.ax_[0].get_xticks() if 1 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert "| model | strategy | data |" in (tmp_path / "compare.md").read_text()


@pytest.mark.parametrize("width", [80, 200])
def test_models_table_never_cuts_a_name(width, monkeypatch):
    from transferlab.models.catalog import CATALOG

    monkeypatch.setenv("COLUMNS", str(width))
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    assert all(entry.name in result.output for entry in CATALOG)
    assert all(len(line) <= width for line in result.output.splitlines())
    if width >= 140:  # room for the exact counts the course asks students to check
        assert "3,453,121" in result.output and "Left out" not in result.output
    else:
        assert "Left out at this width" in result.output
