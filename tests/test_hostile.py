"""Careless and hostile input: nothing deleted that transferlab did not make, nothing started on bad settings."""

from __future__ import annotations

import json
import os
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
