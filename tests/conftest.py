"""Fixtures: tiny image data sets made by the tests, and a tiny model's weights file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

TINY_MODEL = "test_efficientnet"  # timm's ~356k-parameter test model: every path runs in seconds

COLORS = {"cats": (220, 60, 40), "dogs": (40, 80, 220), "birds": (40, 200, 60)}


def make_images(folder: Path, color: tuple[int, int, int], n: int, seed: int, size: int = 24) -> list[Path]:
    """Writes `n` noisy images dominated by `color` into `folder`."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        base = np.array(color, dtype=np.float32)[None, None, :]
        pixels = np.clip(base + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)
        path = folder / f"img_{i:03d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def make_dataset(root: Path, classes: tuple[str, ...] = ("cats", "dogs"), n_train: int = 12, n_val: int = 4,
                 layout: str = "train/validation") -> Path:
    """Makes `root` as train/<layout-val>/ class folders, or flat class folders (layout='flat')."""
    for k, name in enumerate(classes):
        if layout == "flat":
            make_images(root / name, COLORS[name], n_train + n_val, seed=k)
        else:
            val_name = layout.split("/")[1]
            make_images(root / "train" / name, COLORS[name], n_train, seed=k)
            make_images(root / val_name / name, COLORS[name], n_val, seed=100 + k)
    return root


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Caches (features, decoded images) go to a temporary TRANSFERLAB_HOME, never the user's."""
    if "TRANSFERLAB_HOME" not in os.environ or "pytest" not in os.environ["TRANSFERLAB_HOME"]:
        monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path_factory.mktemp("home")))


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "data")


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 'pretrained' state dict file of the tiny model, standing in for downloaded weights."""
    import timm

    torch.manual_seed(0)
    model = timm.create_model(TINY_MODEL, pretrained=False)
    path = tmp_path_factory.mktemp("weights") / "tiny.pth"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, tiny_weights: Path) -> tuple[Path, Path]:
    """One short run that evaluation, export and serving tests share: (data root, run folder). The data has
    three classes in train/ and validation/, a test/ folder of 15 images and one broken file in it."""
    from transferlab import TrainConfig, fit

    root = make_dataset(tmp_path_factory.mktemp("shared") / "data", classes=("cats", "dogs", "birds"), n_train=10,
                        n_val=4)
    for k, name in enumerate(("birds", "cats", "dogs")):
        make_images(root / "test" / name, COLORS[name], 5, seed=200 + k)
    (root / "test" / "cats" / "broken.jpg").write_bytes(b"not an image")
    run = root.parent / "run"
    with pytest.MonkeyPatch.context() as patch:  # session fixtures start before the per-test home is set
        patch.setenv("TRANSFERLAB_HOME", str(tmp_path_factory.mktemp("shared-home")))
        fit(TrainConfig(data=str(root), out=str(run), model=TINY_MODEL, weights=str(tiny_weights), epochs=3,
                        lr=0.01, image_size=32, num_workers=0, seed=1), quiet=True)
    return root, run


def run_in_notebook(source: str, timeout: int = 300) -> list:
    """Runs `source` as one cell of a new notebook in a Jupyter kernel of this Python; returns the cell's outputs
    (skips the test when nbclient, nbformat or ipykernel is missing)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source)]
    nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3").execute()
    return notebook.cells[0].outputs


class WhereRun(torch.nn.Module):
    """Wraps a model and appends the id of the process running it to `log` on every batch: where a model runs."""

    def __init__(self, model: torch.nn.Module, log: Path) -> None:
        super().__init__()
        self.model, self.log = model, str(log)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with open(self.log, "a") as f:
            f.write(f"{os.getpid()}\n")
        return self.model(x)
