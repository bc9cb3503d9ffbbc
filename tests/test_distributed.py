"""Real DDP on the CPU: 2 processes (gloo), launched by Lightning from the CLI, against a single process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import TINY_MODEL, make_dataset


def _train(data, out, weights, devices: int, log, strategy: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRANSFERLAB_WRITE_LOG": str(log), "PYTHONWARNINGS": "ignore"}
    env.pop("RANK", None)
    env.pop("LOCAL_RANK", None)
    cmd = [sys.executable, "-m", "transferlab", "train", str(data), "--model", TINY_MODEL, "--weights", str(weights),
           "--strategy", strategy, "--lr", "1e-12", "--epochs", "1", "--batch-size", "4", "--image-size", "32",
           "--num-workers", "0", "--accelerator", "cpu", "--devices", str(devices), "--out", str(out), "--quiet"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.skipif(sys.platform == "win32", reason="gloo DDP test runs on Linux and macOS")
@pytest.mark.parametrize(("strategy", "loss_tolerance"), [
    ("freeze", 1e-5),  # head on cached features: nothing but the (unchanged) weights decides validation
    ("full", 0.01),    # images through the whole model: BatchNorm running statistics see other batches
])
def test_ddp_two_cpu_processes_match_one_process_and_only_rank_zero_writes(tmp_path, tiny_weights, strategy,
                                                                           loss_tolerance):
    # 3 classes x 3 validation images = 9: two ranks cannot split it evenly, so a padding sampler would
    # count one image twice
    data = make_dataset(tmp_path / "d", classes=("cats", "dogs", "birds"), n_train=8, n_val=3)
    single = _train(data, tmp_path / "one", tiny_weights, 1, tmp_path / "one.log", strategy)
    assert single.returncode == 0, single.stderr[-3000:]
    ddp = _train(data, tmp_path / "ddp", tiny_weights, 2, tmp_path / "ddp.log", strategy)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    # lr ~ 0: both validate the same weights, so the reduced metrics must agree (images counted once)
    assert two["best_val_accuracy"] == pytest.approx(one["best_val_accuracy"], abs=1e-6)
    assert two["best_val_loss"] == pytest.approx(one["best_val_loss"], abs=loss_tolerance)
    writes = [line.split("\t") for line in (tmp_path / "ddp.log").read_text().splitlines()]
    run_writes = [(rank, path) for rank, path in writes if str(tmp_path / "ddp") in path]
    assert run_writes and {rank for rank, _ in run_writes} == {"0"}, run_writes
    assert {"best.ckpt", "model.safetensors", "metrics.json", "history.csv", "report.html"} <= {
        p.name for p in (tmp_path / "ddp").iterdir()}
    rows = (tmp_path / "ddp" / "history.csv").read_text().splitlines()
    assert len(rows) == 2  # header + one epoch, written once
