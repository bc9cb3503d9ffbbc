"""Real DDP on the CPU: 2 processes (gloo), launched by Lightning from the CLI, against a single process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import TINY_MODEL, make_dataset

pytestmark = pytest.mark.heavy  # two processes per test (gloo DDP)


def _train(data, out, weights, devices: int, log, strategy: str, *extra: str) -> subprocess.CompletedProcess:
    # a home of its own: the feature and decoded caches start empty, so the ranks really extract
    env = {**os.environ, "TRANSFERLAB_WRITE_LOG": str(log), "PYTHONWARNINGS": "ignore",
           "TRANSFERLAB_EXTRACT_LOG": f"{log}.extract", "TRANSFERLAB_HOME": f"{log}.home"}
    env.pop("RANK", None)
    env.pop("LOCAL_RANK", None)
    cmd = [sys.executable, "-m", "transferlab", "train", str(data), "--model", TINY_MODEL, "--weights", str(weights),
           "--strategy", strategy, "--lr", "1e-12", "--epochs", "1", "--batch-size", "4", "--image-size", "32",
           "--num-workers", "0", "--accelerator", "cpu", "--devices", str(devices), "--out", str(out), "--quiet",
           *extra]
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
    if strategy == "freeze":  # the training loss is the mean over both ranks' images too (not rank 0's half)
        assert two["final"]["loss"] == pytest.approx(one["final"]["loss"], abs=1e-4)
    if strategy == "freeze":  # features: each rank extracted its half (24 train, 9 validation images), gathered
        lines = (tmp_path / "ddp.log.extract").read_text().splitlines()
        extracted = [tuple(map(int, line.split("\t"))) for line in lines]
        assert sorted(extracted) == [(0, 5), (0, 12), (1, 4), (1, 12)], extracted
        single_extracted = (tmp_path / "one.log.extract").read_text().splitlines()
        assert sorted(single_extracted) == ["0\t24", "0\t9"]


@pytest.mark.skipif(sys.platform == "win32", reason="gloo DDP test runs on Linux and macOS")
def test_ddp_run_resumes_under_ddp(tmp_path, tiny_weights):
    import torch

    data = make_dataset(tmp_path / "d", classes=("cats", "dogs", "birds"), n_train=8, n_val=3)
    out = tmp_path / "run"
    first = _train(data, out, tiny_weights, 2, tmp_path / "first.log", "full")
    assert first.returncode == 0, first.stderr[-3000:]
    env = {**os.environ, "TRANSFERLAB_WRITE_LOG": str(tmp_path / "resume.log"), "PYTHONWARNINGS": "ignore",
           "TRANSFERLAB_HOME": str(tmp_path / "first.log.home")}
    resumed = subprocess.run([sys.executable, "-m", "transferlab", "train", "--resume", str(out), "--epochs", "2",
                              "--quiet"], capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = (out / "history.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2"]  # epoch 1 kept, epoch 2 added, each once
    last = torch.load(out / "last.ckpt", map_location="cpu", weights_only=True)
    # 24 images, batch 4, 2 ranks: 3 steps per rank and epoch; the step counter went on from epoch 1. last.ckpt is
    # written as each epoch ends (after its validation), so it records the 0-based index of the second epoch
    assert last["global_step"] == 6 and last["epoch"] == 1
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == 2
    writes = [line.split("\t") for line in (tmp_path / "resume.log").read_text().splitlines()]
    assert writes and {rank for rank, path in writes if str(out) in path} == {"0"}, writes


@pytest.mark.skipif(sys.platform == "win32", reason="gloo DDP test runs on Linux and macOS")
def test_ddp_streams_shards_with_equal_shares_and_matches_one_process(tmp_path, tiny_weights):
    from typer.testing import CliRunner

    from transferlab.cli import app

    data = make_dataset(tmp_path / "d", classes=("cats", "dogs", "birds"), n_train=9, n_val=3)
    shards = tmp_path / "shards"
    for split in ("train", "validation"):  # 27 train images in shards of 10, 10, 7: the ranks' shards differ
        result = CliRunner().invoke(app, ["data", "shard", str(data), "--out", str(shards), "--shard-size", "10",
                                          "--split", split])
        assert result.exit_code == 0, result.output
    single = _train(shards, tmp_path / "one", tiny_weights, 1, tmp_path / "one.log", "full")
    assert single.returncode == 0, single.stderr[-3000:]
    ddp = _train(shards, tmp_path / "ddp", tiny_weights, 2, tmp_path / "ddp.log", "full")
    assert ddp.returncode == 0, ddp.stderr[-3000:]  # unequal shares would hang (the timeout) or fail here
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert two["best_val_accuracy"] == pytest.approx(one["best_val_accuracy"], abs=1e-6)  # 9 images, each once
    assert two["best_val_loss"] == pytest.approx(one["best_val_loss"], abs=0.01)
    writes = [line.split("\t") for line in (tmp_path / "ddp.log").read_text().splitlines()]
    assert {rank for rank, path in writes if str(tmp_path / "ddp") in path} == {"0"}
