"""Hugging Face transformers classifiers through the same API and CLI (tiny random models saved by the test)."""

from __future__ import annotations

import json

import pytest
import torch

from .conftest import make_dataset

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def hf_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    labels = {0: "tench", 1: "goldfish", 2: "shark"}
    vit = transformers.ViTForImageClassification(transformers.ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, num_labels=3, id2label=labels, label2id={v: k for k, v in labels.items()}))
    vit.save_pretrained(root / "vit")
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.4, 0.5, 0.6],
                                   image_std=[0.2, 0.3, 0.4]).save_pretrained(root / "vit")
    cnx = transformers.ConvNextForImageClassification(transformers.ConvNextConfig(
        num_channels=3, hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, num_labels=3, id2label=labels,
        label2id={v: k for k, v in labels.items()}))
    cnx.save_pretrained(root / "convnext")
    transformers.ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=0.875).save_pretrained(root / "convnext")
    return root


@pytest.mark.parametrize("kind", ["vit", "convnext"])
def test_hf_model_has_timm_surface_and_its_own_preprocessing(hf_models, kind):
    from transferlab.data import preprocessing_from_model
    from transferlab.models import build_classifier, create_model

    model = create_model(f"hf:{hf_models / kind}")
    assert model.labels == ["tench", "goldfish", "shark"]
    pre = preprocessing_from_model(model)
    if kind == "vit":  # the processor's own statistics, never ImageNet's
        assert (pre.image_size, pre.mean, pre.std, pre.crop_mode) == (32, (0.4, 0.5, 0.6), (0.2, 0.3, 0.4), "squash")
    else:
        assert (pre.image_size, pre.crop_pct, pre.crop_mode) == (32, 0.875, "center")
    net = build_classifier(f"hf:{hf_models / kind}", num_classes=2)
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 2)
    original = create_model(f"hf:{hf_models / kind}")  # the features are the model's own pooled output
    hf = transformers.AutoModelForImageClassification.from_pretrained(hf_models / kind).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(original(x), hf(pixel_values=x).logits, atol=1e-5)


@pytest.mark.parametrize("strategy", ["freeze", "unfreeze-last=1", "full", "two-phase"])
def test_hf_model_trains_with_every_strategy_and_predicts(hf_models, tmp_path, strategy):
    from typer.testing import CliRunner

    from transferlab.cli import app

    data = make_dataset(tmp_path / "d", n_train=6, n_val=2)
    out = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(data), "--model", f"hf:{hf_models / 'vit'}", "--strategy", strategy,
                                 "--epochs", "1", "--batch-size", "4", "--num-workers", "0", "--out", str(out),
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["predict", str(out), str(data / "validation"), "--json"])
    assert result.exit_code == 0, result.output
    preds = json.loads(result.stdout)
    # the same labels as transformers' own classifier (the run exported with --format hf, loaded by transformers
    # alone) on the same input pixels: an independent forward pass and label table
    import torch
    from transformers import AutoModelForImageClassification

    from transferlab.data.images import load_rgb
    from transferlab.inference.portable import preprocess
    from transferlab.runs.bundle import load_bundle

    exported = runner.invoke(app, ["export", str(out), "--format", "hf", "--out", str(tmp_path / "hf")])
    assert exported.exit_code == 0, exported.output
    hf = AutoModelForImageClassification.from_pretrained(tmp_path / "hf").eval()
    pre = load_bundle(out).preprocessing
    x = torch.stack([torch.from_numpy(preprocess(load_rgb(p["path"], min_size=pre.image_size), pre))
                     for p in preds])
    with torch.no_grad():
        expected = [hf.config.id2label[i] for i in hf(pixel_values=x).logits.argmax(-1).tolist()]
    assert len(preds) == 4 and [p["top"][0]["label"] for p in preds] == expected


def test_hf_classify_uses_the_models_own_labels(hf_models, tmp_path):
    from transferlab.inference.classify import classify

    image = make_dataset(tmp_path / "d", n_train=1, n_val=1) / "train" / "cats" / "img_000.png"
    result = classify([image], model=f"hf:{hf_models / 'vit'}", top=2, engine="fp32")
    # the transformers model itself, on the same input, names the same two classes through its id2label
    import torch
    from transformers import AutoModelForImageClassification

    from transferlab.inference.classify import imagenet_predictor

    predictor = imagenet_predictor(f"hf:{hf_models / 'vit'}", engine="fp32")
    x = predictor.transform(predictor.decode(image))[None]
    hf = AutoModelForImageClassification.from_pretrained(hf_models / "vit").eval()
    with torch.no_grad():
        order = hf(pixel_values=x).logits[0].argsort(descending=True)[:2].tolist()
    assert [t["label"] for t in result[0]["top"]] == [hf.config.id2label[i] for i in order]


def test_hf_offline_error_says_what_to_do(monkeypatch):
    import huggingface_hub.constants

    from transferlab.models import WeightsUnavailableError, create_model

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # as offline, without network waits

    with pytest.raises(WeightsUnavailableError, match="save_pretrained"):
        create_model("hf:no-such-org/no-such-model-xyz")


def test_hf_unfreeze_last_unfreezes_the_last_encoder_layer(hf_models):
    from transferlab.models import build_classifier
    from transferlab.training.strategies import apply_strategy, parse_strategy

    model = build_classifier(f"hf:{hf_models / 'vit'}", num_classes=2)
    apply_strategy(model, parse_strategy("unfreeze-last=1"))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any(".layers.1." in n for n in trainable) and not any(".layers.0." in n for n in trainable)
    assert not any("embeddings" in n for n in trainable) and any(n.startswith("head") for n in trainable)


def test_hf_export_of_a_transformers_run_loads_back_with_transformers(hf_models, tmp_path):
    """`export --format hf` on an `hf:` run writes transformers' own folder (save_pretrained) whose classifier is
    the new head and whose id2label are the run's classes; AutoModelForImageClassification loads it and gives the
    run's logits."""
    from typer.testing import CliRunner

    from transferlab.cli import app
    from transferlab.data.images import load_rgb
    from transferlab.inference.portable import preprocess
    from transferlab.runs.bundle import load_bundle

    data = make_dataset(tmp_path / "d", n_train=6, n_val=2)
    out, export = tmp_path / "run", tmp_path / "hf"
    runner = CliRunner()
    trained = runner.invoke(app, ["train", str(data), "--model", f"hf:{hf_models / 'vit'}", "--epochs", "1",
                                  "--num-workers", "0", "--out", str(out), "--quiet"])
    assert trained.exit_code == 0, trained.output
    result = runner.invoke(app, ["export", str(out), "--format", "hf", "--out", str(export)])
    assert result.exit_code == 0, result.output
    assert "AutoModelForImageClassification" in result.output
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"} <= {
        p.name for p in export.iterdir()}
    loaded = transformers.AutoModelForImageClassification.from_pretrained(export).eval()
    bundle = load_bundle(out)
    assert [loaded.config.id2label[i] for i in range(2)] == bundle.labels == ["cats", "dogs"]
    pre = bundle.preprocessing
    images = sorted((data / "validation").rglob("*.png"))
    x = torch.stack([torch.from_numpy(preprocess(load_rgb(p, min_size=pre.image_size), pre)) for p in images])
    with torch.no_grad():
        assert torch.allclose(loaded(pixel_values=x).logits, bundle.model(x), atol=1e-4)
