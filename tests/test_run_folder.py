"""What a run folder holds is declared once (runs.files), and writers touch only that: --overwrite, export --out,
resume; a lock keeps two commands from writing one folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from transferlab.cli import app
from transferlab.errors import RunFolderError
from transferlab.runs.files import RUN_FILES, markdown_table
from transferlab.runs.folder import RunFolder, export_folder

from .conftest import TINY_MODEL, make_dataset

runner = CliRunner()
FAST = ["--model", TINY_MODEL, "--weights", "none", "--epochs", "1", "--image-size", "32", "--num-workers", "0",
        "--quiet"]
ROOT = Path(__file__).resolve().parents[1]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_readme_table_lists_every_file_a_run_holds():
    """The README's table of a run folder is the declaration in runs.files (no file missing, none invented)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| file | what |", readme.index("Every run folder holds:")):]
    table = table[:table.index("\n\n")]
    assert table == markdown_table()
    named = set(re.findall(r"^\| `([^`]+)` \|", table, flags=re.M))
    assert set(RUN_FILES) <= named


def test_a_finished_run_holds_only_declared_files(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=4, n_val=2)
    out = tmp_path / "run"
    assert runner.invoke(app, ["train", str(data), "--out", str(out), *FAST]).exit_code == 0
    assert RunFolder(out).foreign_entries() == []
    assert RunFolder(out).is_run_folder()


@pytest.mark.parametrize("extra", ["analysis.ipynb", "notes/"])
def test_overwrite_refuses_a_run_folder_holding_the_users_files_and_names_them(tmp_path, extra):
    data = make_dataset(tmp_path / "data", n_train=4, n_val=2)
    out = tmp_path / "run"
    assert runner.invoke(app, ["train", str(data), "--out", str(out), *FAST]).exit_code == 0
    target = out / extra.rstrip("/")
    if extra.endswith("/"):
        target.mkdir()
        (target / "a.txt").write_text("mine")
    else:
        target.write_text("{}")
    before = _tree(out)
    result = runner.invoke(app, ["train", str(data), "--out", str(out), "--overwrite", *FAST])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert f"'{target.name}'" in text and "which no run wrote" in text and "Nothing was deleted" in text
    assert _tree(out) == before


@pytest.mark.parametrize("marker", ["empty", "link"])
def test_a_marker_that_no_run_wrote_is_no_proof(tmp_path, marker):
    """A user's folder with only an empty `.transferlab-run`, or one linked to a real marker elsewhere, is not a
    run folder: --overwrite deletes nothing in it."""
    data = make_dataset(tmp_path / "data", n_train=4, n_val=2)
    real = tmp_path / "real"
    assert runner.invoke(app, ["train", str(data), "--out", str(real), *FAST]).exit_code == 0
    victim = tmp_path / "mine"
    victim.mkdir()
    (victim / "config.yaml").write_text("my: settings\n")  # a file with a run's name, but the user's
    if marker == "empty":
        (victim / ".transferlab-run").write_text("")
    else:
        (victim / ".transferlab-run").symlink_to(real / ".transferlab-run")
    before = _tree(victim)
    result = runner.invoke(app, ["train", str(data), "--out", str(victim), "--overwrite", *FAST])
    assert result.exit_code == 2 and "Nothing was deleted" in " ".join(result.output.split())
    assert _tree(victim) == before


def test_a_locked_run_folder_is_refused_with_its_holder(tmp_path):
    """While one command holds a run folder's lock, another is refused at once (no mixed files), naming the
    holder; the lock goes with the process."""
    data = make_dataset(tmp_path / "data", n_train=4, n_val=2)
    out = tmp_path / "run"
    assert runner.invoke(app, ["train", str(data), "--out", str(out), *FAST]).exit_code == 0
    before = _tree(out)
    code = (f"import time\nfrom transferlab.runs.folder import RunFolder\nfolder = RunFolder({str(out)!r})\n"
            "folder.lock()\nprint('held', flush=True)\ntime.sleep(60)")  # the folder object holds the lock
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = runner.invoke(app, ["train", str(data), "--out", str(out), "--overwrite", *FAST])
        assert result.exit_code == 2, result.output
        assert "being written by another transferlab command" in result.output
        assert f"pid {holder.pid}" in result.output
        assert {k: v for k, v in _tree(out).items() if k != ".transferlab-lock"} == \
            {k: v for k, v in before.items() if k != ".transferlab-lock"}
    finally:
        holder.kill()
        holder.wait()
    assert runner.invoke(app, ["train", str(data), "--out", str(out), "--overwrite", *FAST]).exit_code == 0


def test_a_failed_start_leaves_a_folder_the_corrected_command_can_use(tmp_path, tiny_weights):
    """A layer that does not exist is refused before the folder is touched; a folder holding only a marker (left
    by an older version) does not block the corrected command."""
    data = make_dataset(tmp_path / "data", n_train=4, n_val=2)
    out = tmp_path / "run"
    bad = runner.invoke(app, ["train", str(data), "--out", str(out), "--model", TINY_MODEL, "--weights",
                              str(tiny_weights), "--epochs", "1", "--image-size", "32", "--num-workers", "0",
                              "--strategy", "unfreeze-from=999"])
    assert bad.exit_code == 2 and "out of range" in bad.output
    assert not out.exists()
    out.mkdir(exist_ok=True)
    (out / ".transferlab-run").write_text(json.dumps({"transferlab": "0.1.0"}))
    assert runner.invoke(app, ["train", str(data), "--out", str(out), *FAST]).exit_code == 0


def test_resume_refuses_changed_classes_before_writing(tmp_path):
    data = make_dataset(tmp_path / "data", n_train=4, n_val=2)
    out = tmp_path / "run"
    assert runner.invoke(app, ["train", str(data), "--out", str(out), *FAST]).exit_code == 0
    before = _tree(out)
    for split in ("train", "validation"):
        os.rename(data / split / "cats", data / split / "zcats")  # a renamed class would swap the labels
    result = runner.invoke(app, ["train", "--resume", str(out), "--epochs", "3"])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "classes changed" in text and "'cats'" in text and "'zcats'" in text and "Nothing was written" in text
    assert _tree(out) == before


def test_export_into_a_folder_of_the_users_files_is_refused(tmp_path):
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "README.md").write_text("my site")
    with pytest.raises(RunFolderError, match="'README.md'"):
        with export_folder(folder):
            raise AssertionError("nothing may be written")
    assert _tree(folder) == {"README.md": b"my site"}
    fresh = tmp_path / "export"
    with export_folder(fresh) as target:
        (target / "model.onnx").write_bytes(b"1")
    with export_folder(fresh) as target:  # an earlier export's files are replaced, and only those
        assert not (target / "model.onnx").exists()
        (target / "model.int8.onnx").write_bytes(b"2")
    marker = json.loads((fresh / ".transferlab-export").read_text())
    assert marker["files"] == ["model.int8.onnx"]
