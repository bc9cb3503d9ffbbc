"""One preprocessing geometry (data.geometry) for training and inference: on real photos, with bicubic resizing and
crop_pct 0.875, the training validation transform (torchvision's kernels) and the inference path (Pillow's) give
the same pixels within one grey level and the same top-1 of an ImageNet model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from transferlab.data.geometry import Preprocessing
from transferlab.data.transforms import crop_tensor, eval_transform, load_rgb_tensor, resize_tensor

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry")
SAMPLES = Path(__file__).resolve().parents[1] / "src" / "transferlab" / "data" / "samples"


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[Path]:
    """scikit-image's photos saved as JPEG files (decoded as every command decodes them), and the bundled ones."""
    data = pytest.importorskip("skimage.data")
    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for name in PHOTOS:
        path = folder / f"{name}.jpg"
        Image.fromarray(getattr(data, name)()).save(path, quality=92)
        paths.append(path)
    return paths + sorted(SAMPLES.glob("*.jpg"))


def test_the_geometry_is_torchvisions(photos):
    """Resize(shorter side, long side truncated) and CenterCrop's rounding, as torchvision computes them."""
    from torchvision.transforms import v2

    pre = Preprocessing(224, (0.5,) * 3, (0.5,) * 3, "bicubic", 0.875)
    for path in photos:
        image = load_rgb_tensor(path)
        ours = crop_tensor(resize_tensor(image, pre), pre)
        theirs = v2.CenterCrop(224)(v2.Resize(256, interpolation=v2.InterpolationMode.BICUBIC, antialias=True)(image))
        assert torch.equal(ours, theirs), path.name
    assert pre.resized_shape(500, 375) == (341, 256) and pre.resized_shape(375, 500) == (256, 341)
    squash = Preprocessing(150, (0.5,) * 3, (0.5,) * 3, "bilinear", 1.0, "squash")
    assert squash.resized_shape(500, 375) == (150, 150) and squash.crop_box(150, 150) == (0, 0)


@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
def test_training_and_inference_give_the_same_pixels_on_real_photos(photos, interpolation):
    from transferlab.inference.portable import BasePredictor

    pre = Preprocessing(224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), interpolation, 0.875)
    levels = (np.asarray(pre.std) * 255)[:, None, None]  # one grey level in the normalised units
    reader = BasePredictor()
    reader.preprocessing = pre
    for path in photos:
        training = eval_transform(pre)(load_rgb_tensor(path, min_size=pre.resize_size)).numpy()
        inference = reader.preprocess(reader.decode(path))
        diff = np.abs(training - inference) * levels
        assert diff.max() <= 1.0 + 1e-3, (path.name, diff.max())  # rounding: at most one grey level
        assert diff.mean() < 0.02, (path.name, diff.mean())


def test_training_and_inference_pixels_give_the_same_top1(photos):
    """The bundled ImageNet Lite0 on both paths' inputs: the same class for every photo."""
    from transferlab.data.transforms import preprocessing_from_model
    from transferlab.inference.portable import BasePredictor
    from transferlab.models import create_model

    model = create_model("efficientnet_lite0").eval()
    pre = preprocessing_from_model(model)
    assert pre.interpolation == "bicubic" and pre.crop_pct == 0.875
    reader = BasePredictor()
    reader.preprocessing = pre
    training = torch.stack([eval_transform(pre)(load_rgb_tensor(p, min_size=pre.resize_size)) for p in photos])
    inference = torch.from_numpy(np.stack([reader.preprocess(reader.decode(p)) for p in photos]))
    with torch.inference_mode():
        a, b = model(training).softmax(-1), model(inference).softmax(-1)
    assert torch.equal(a.argmax(-1), b.argmax(-1))
    assert float((a - b).abs().max()) < 0.01


def test_a_damaged_preprocessing_file_names_the_field(tmp_path):
    path = tmp_path / "preprocessing.json"
    path.write_text('{"image_size": 224, "mean": [0.5, 0.5], "std": [0.5, 0.5, 0.5]}')
    with pytest.raises(ValueError, match=r"preprocessing.json'.*mean must be 3 finite numbers"):
        Preprocessing.read(path)
    path.write_text('{"image_size": 224, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "crop_mode": "border"}')
    with pytest.raises(ValueError, match="crop_mode must be 'center' or 'squash'"):
        Preprocessing.read(path)
