"""Augmentation: Keras ImageDataGenerator's meanings, checked against Keras itself where it is installed."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from transferlab.data import Preprocessing, eval_transform, preprocessing_from_model, train_transform
from transferlab.data.augment import PRESETS, AugmentConfig, resolve_augment
from transferlab.data.augment_ops import KerasAffine


def _image(h: int = 20, w: int = 24) -> torch.Tensor:
    rng = np.random.default_rng(0)
    return torch.tensor(rng.random((3, h, w)), dtype=torch.float32)


@pytest.fixture(scope="module")
def keras_affine():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("scipy")
    keras_image = pytest.importorskip("keras.src.legacy.preprocessing.image")
    return keras_image.apply_affine_transform


@pytest.mark.parametrize("params", [
    {"theta": 30.0}, {"tx": 3.0}, {"ty": -4.5}, {"shear": 20.0}, {"zx": 0.8, "zy": 1.2},
    {"theta": -12.0, "tx": 2.0, "ty": 1.0, "shear": 5.0, "zx": 1.1, "zy": 0.9},
])
@pytest.mark.parametrize("fill_mode", ["nearest", "constant", "reflect", "wrap"])
def test_affine_matches_keras(keras_affine, params, fill_mode):
    x = _image()
    full = {"theta": 0.0, "tx": 0.0, "ty": 0.0, "shear": 0.0, "zx": 1.0, "zy": 1.0, **params}
    ours = KerasAffine(AugmentConfig(fill_mode=fill_mode)).apply(x, full).numpy()
    theirs = keras_affine(x.numpy(), **full, row_axis=1, col_axis=2, channel_axis=0, fill_mode=fill_mode, cval=0.0)
    assert np.abs(ours - theirs).max() < 1e-4


def test_shift_moves_pixels_as_keras():
    x = torch.zeros(1, 10, 10)
    x[0, 5, 5] = 1.0
    out = KerasAffine(AugmentConfig()).apply(x, {"theta": 0, "tx": 2.0, "ty": 0, "shear": 0, "zx": 1, "zy": 1})
    # Keras builds its matrix in (x, y) order and swaps axes for arrays: `tx` (from height_shift_range) ends up
    # as a column offset, output(r, c) = input(r, c + tx). transferlab reproduces Keras, quirk included.
    assert out[0, 5, 3] == pytest.approx(1.0)


def test_random_parameters_follow_keras_rules():
    affine = KerasAffine(AugmentConfig(rotation_range=40, width_shift_range=0.2, height_shift_range=3,
                                       shear_range=0.2, zoom_range=0.2))
    gen = torch.Generator().manual_seed(0)
    draws = [affine.sample(100, 50, gen) for _ in range(400)]
    assert all(-40 <= d["theta"] <= 40 for d in draws)
    assert all(-0.2 <= d["shear"] <= 0.2 for d in draws)  # degrees, not radians
    assert max(abs(d["ty"]) for d in draws) > 5 and all(abs(d["ty"]) <= 0.2 * 50 for d in draws)  # fraction of width
    assert {d["tx"] for d in draws} <= {-2.0, -1.0, -0.0, 0.0, 1.0, 2.0}  # int >= 1: pixels in [0, 3), random sign
    assert all(0.8 <= d["zx"] <= 1.2 and 0.8 <= d["zy"] <= 1.2 for d in draws)
    assert any(abs(d["zx"] - d["zy"]) > 0.05 for d in draws)  # x and y zoom independently


def test_zoom_and_presets():
    assert AugmentConfig(zoom_range=0.2).zoom_bounds == (0.8, 1.2)
    assert AugmentConfig(zoom_range=(0.5, 1.0)).zoom_bounds == (0.5, 1.0)
    course = PRESETS["course"]
    assert (course.rotation_range, course.width_shift_range, course.height_shift_range, course.shear_range,
            course.zoom_range, course.horizontal_flip) == (40, 0.2, 0.2, 0.2, 0.2, True)
    assert resolve_augment({"preset": "course", "rotation_range": 10}).rotation_range == 10
    assert resolve_augment("none").is_identity


@pytest.mark.parametrize(("value", "message"), [
    ({"rotation": 10}, "Did you mean 'rotation_range'"),
    ({"rescale": 0.5}, "model's own mean and std"),
    ({"fill_mode": "mirror"}, "'fill_mode' parameter"),
    ({"brightness_range": [1.2, 0.8]}, "low <= high"),
    ("heavy", "'augment' parameter"),
])
def test_bad_augmentation_settings(value, message):
    with pytest.raises(ValueError, match=message):
        resolve_augment(value)


def test_brightness_contrast_noise_flip_stay_in_range():
    pre = Preprocessing(32, (0.0,) * 3, (1.0,) * 3, "bilinear", 1.0, "squash")
    t = train_transform(pre, {"brightness_range": [0.5, 1.5], "contrast_range": [0.5, 1.5], "noise_std": 0.1,
                              "horizontal_flip": True, "vertical_flip": True, "rotation_range": 30})
    img = Image.fromarray((np.random.default_rng(1).random((40, 40, 3)) * 255).astype(np.uint8))
    outs = [t(img) for _ in range(5)]
    assert all(o.shape == (3, 32, 32) and 0.0 <= float(o.min()) and float(o.max()) <= 1.0 for o in outs)
    assert not torch.equal(outs[0], outs[1])


def test_strong_preset_runs():
    pre = Preprocessing(32, (0.5,) * 3, (0.5,) * 3)
    out = train_transform(pre, "strong")(Image.new("RGB", (50, 40), (10, 200, 30)))
    assert out.shape == (3, 32, 32)


def test_validation_data_is_never_augmented(dataset, tmp_path):
    from transferlab.data import load_image_folder
    from transferlab.models import build_classifier
    from transferlab.training.config import TrainConfig
    from transferlab.training.fit import resolve_config
    from transferlab.training.phases import Phase
    from transferlab.training.phases import PhaseRunner as _Run
    from transferlab.training.strategies import Strategy

    config = resolve_config(TrainConfig(data=str(dataset), model="test_efficientnet", weights="none", image_size=32,
                                        augment="course", num_workers=0, out=str(tmp_path / "r")))
    data = load_image_folder(dataset)
    model = build_classifier("test_efficientnet", 2, weights="none")
    pre = preprocessing_from_model(model, 32)
    run = _Run(config, data, model, pre, tmp_path, console=None, quiet=True)  # type: ignore[arg-type]
    _, train_loader, val_loader = run.loaders(Phase(1, Strategy("full"), 1e-3, 1), None)
    val = val_loader.dataset
    reference = torch.stack([eval_transform(pre)(Image.open(s.path).convert("RGB")) for s in val.samples])
    for _ in range(2):  # every pass over the validation loader gives exactly the un-augmented images
        assert torch.allclose(torch.cat([x for x, _ in val_loader]), reference, atol=1e-6)
    from transferlab.data.transforms import BatchTransform

    torch.manual_seed(0)
    raw, labels = next(iter(train_loader))
    assert raw.dtype == torch.uint8  # training images reach the device raw and are augmented there
    augment = BatchTransform(pre, "course")
    first = augment(raw, labels)[0]
    assert not torch.equal(first, augment(raw, labels)[0])  # training data is augmented
    assert first.shape[1:] == reference.shape[1:] and first.dtype == torch.float32


def test_augment_command_draws_grids(dataset, tmp_path):
    from typer.testing import CliRunner

    from transferlab.cli import app

    runner = CliRunner()
    image = dataset / "train" / "cats" / "img_000.png"
    out = tmp_path / "aug.png"
    result = runner.invoke(app, ["augment", str(image), "--preset", "course", "--out", str(out), "--model",
                                 "course_cnn"])
    assert result.exit_code == 0, result.output
    assert Image.open(out).size[0] > 300
    grid = tmp_path / "samples.png"
    result = runner.invoke(app, ["augment", str(dataset), "--samples", "--out", str(grid), "--model", "course_cnn"])
    assert result.exit_code == 0, result.output
    assert grid.is_file() and Image.open(grid).size[0] > 300


def test_train_flags_use_keras_names(dataset, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from transferlab.cli import app

    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "train", str(dataset), "--model", "test_efficientnet", "--weights", "none", "--epochs", "1", "--image-size",
        "32", "--num-workers", "0", "--out", str(out), "--quiet", "--augment", "course", "--rotation-range", "10",
        "--zoom-range", "0.9,1.1", "--width-shift-range", "3", "--rescale", "1/255"])
    assert result.exit_code == 0, result.output
    augment = yaml.safe_load((out / "config.yaml").read_text())["augment"]
    assert augment == {"preset": "course", "rotation_range": 10, "zoom_range": [0.9, 1.1], "width_shift_range": 3,
                       "rescale": 1 / 255}


@pytest.mark.parametrize("fill_mode", ["nearest", "reflect"])
def test_batched_affine_with_flips_equals_one_image_at_a_time(fill_mode):
    affine = KerasAffine(AugmentConfig(rotation_range=40, width_shift_range=0.2, height_shift_range=0.2,
                                       shear_range=20, zoom_range=0.2, fill_mode=fill_mode))
    images = torch.stack([_image(18, 22) for _ in range(6)]) * torch.arange(1, 7).view(6, 1, 1, 1) / 6
    params = affine.sample_batch(6, 18, 22, torch.Generator().manual_seed(3))
    hflip = torch.tensor([True, False, True, False, True, False])
    vflip = torch.tensor([False, False, True, True, False, True])
    batch = affine.apply_batch(images, params, hflip, vflip)
    for i in range(6):  # Keras: the affine transform first, then the flips
        one = affine.apply(images[i], {k: float(v[i]) for k, v in params.items()})
        one = one.flip(-1) if hflip[i] else one
        one = one.flip(-2) if vflip[i] else one
        assert torch.allclose(batch[i], one, atol=1e-5), i


def test_batch_augment_normalises_like_the_eval_path():
    from transferlab.data.augment_ops import BatchAugment

    images = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    mean, std = (0.2, 0.4, 0.6), (0.5, 0.25, 0.125)
    expected = (images.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(BatchAugment(AugmentConfig(), mean, std)(images), expected, atol=1e-5)
    flipped = BatchAugment(AugmentConfig(horizontal_flip=True), mean, std)(images)
    for i in range(4):  # every image is either itself or its mirror image
        assert (torch.allclose(flipped[i], expected[i], atol=1e-5)
                or torch.allclose(flipped[i], expected[i].flip(-1), atol=1e-5))
    bright = BatchAugment(AugmentConfig(brightness_range=(0.5, 0.5)), mean, std)(images)
    dim = ((images.float() / 255 * 0.5) - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(bright, dim, atol=1e-5)


def test_augment_takes_trains_keras_flags_and_says_what_it_used(tmp_path):
    from typer.testing import CliRunner

    from transferlab.cli import app

    from .conftest import make_images

    runner = CliRunner()
    image = make_images(tmp_path / "imgs", (200, 40, 40), 1, seed=0, size=64)[0]
    out = tmp_path / "aug.png"
    result = runner.invoke(app, ["augment", str(image), "--preset", "none", "--rotation-range", "30",
                                 "--horizontal-flip", "--zoom-range", "0.8,1.2", "--out", str(out), "--model",
                                 "course_cnn"])
    assert result.exit_code == 0, result.output
    assert "(rotation_range=30, zoom_range=[0.8, 1.2], horizontal_flip=True)" in result.output
    assert Image.open(out).size[0] > 300
    bad = runner.invoke(app, ["augment", str(image), "--rotation-range", "-5", "--out", str(out)])
    assert bad.exit_code == 2 and "rotation_range" in bad.output
