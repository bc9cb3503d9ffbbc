"""The model registry, weight sources and the course CNN."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from transferlab.models import WeightsUnavailableError, create_model, get_model_info, list_models
from transferlab.models.course_cnn import CourseCNN

from .conftest import TINY_MODEL


@pytest.mark.parametrize("info", list_models(), ids=lambda m: m.name)
def test_every_registered_model_builds_with_a_new_head(info):
    if info.weights == "bundled":
        model = create_model(info.name, num_classes=3, weights="imagenet").eval()
    else:  # shapes only: built and run on the meta device (no memory, no compute), so the big ones stay fast
        with torch.device("meta"):
            model = create_model(info.name, num_classes=3, weights="none").eval()
    size = model.pretrained_cfg["input_size"][-1]
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size, device=next(model.parameters()).device))
    assert out.shape == (2, 3)
    # the uniform surface fine-tuning relies on
    assert model.get_classifier() is not None
    assert model.group_matcher()


def test_course_cnn_has_the_course_parameter_count():
    model = create_model("course_cnn", num_classes=2)
    assert sum(p.numel() for p in model.parameters()) == 3_453_121
    assert model.get_classifier().out_features == 1  # Dense(1, sigmoid)
    assert model(torch.randn(1, 3, 150, 150)).shape == (1, 1)


def test_course_cnn_multiclass_head_and_other_sizes():
    model = create_model("course_cnn", num_classes=10, image_size=64)
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 10)
    with pytest.raises(ValueError, match="at least 46"):
        CourseCNN(img_size=32)


def test_course_cnn_has_no_pretrained_weights():
    with pytest.raises(ValueError, match="--weights none"):
        create_model("course_cnn", weights="imagenet")


def test_unknown_model_suggests_names():
    with pytest.raises(ValueError, match=r"transferlab models.*Did you mean .*'efficientnet_lite0'"):
        get_model_info("efficientnet_lite")


def test_any_timm_name_resolves():
    assert get_model_info("resnet50").architecture == "resnet50"


def _offline_hub(monkeypatch) -> None:
    """timm as it behaves offline: a model without weights builds, a download of weights fails."""
    real = timm.create_model

    def offline(*args, **kwargs):
        if kwargs.get("pretrained"):
            raise OSError("We couldn't connect to the hub")
        return real(*args, **kwargs)

    monkeypatch.setattr(timm, "create_model", offline)


def test_offline_download_error_names_both_remedies(monkeypatch):
    _offline_hub(monkeypatch)
    with pytest.raises(WeightsUnavailableError) as e:
        create_model(TINY_MODEL, weights="imagenet")
    assert "--weights FILE" in str(e.value) and "efficientnet_lite0" in str(e.value)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors", ".bin"])
def test_weights_file_loads_exactly_and_new_head_is_made(tmp_path, tiny_weights, suffix):
    state = torch.load(tiny_weights, weights_only=True)
    path = tmp_path / f"w{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    model = create_model(TINY_MODEL, num_classes=4, weights=str(path))
    assert torch.equal(model.state_dict()["conv_stem.weight"], state["conv_stem.weight"])
    assert model.get_classifier().out_features == 4
    report = model.weights_report
    assert report["loaded"] == len(state) == report["total"] and not report["head_skipped"]


def test_weights_report_names_the_head_and_the_mismatches(tmp_path):
    other_head = timm.create_model(TINY_MODEL, num_classes=5).state_dict()
    path = tmp_path / "five.pth"
    torch.save(other_head, path)
    model = create_model(TINY_MODEL, num_classes=2, weights=str(path))  # the 5-class head is left out, reported
    assert set(model.weights_report["head_skipped"]) == {"classifier.weight", "classifier.bias"}
    wider = {k: (torch.zeros(v.shape[0] + 1, *v.shape[1:]) if k == "conv_stem.weight" else v)
             for k, v in timm.create_model(TINY_MODEL).state_dict().items()}
    torch.save(wider, tmp_path / "wider.pth")
    with pytest.raises(ValueError, match=r"1 shape mismatches \(conv_stem.weight: file \("):
        create_model(TINY_MODEL, weights=str(tmp_path / "wider.pth"))


def test_weights_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        create_model(TINY_MODEL, weights=str(tmp_path / "missing.pth"))
    wrong = tmp_path / "wrong.pth"
    torch.save(timm.create_model("test_resnet").state_dict(), wrong)
    with pytest.raises(ValueError, match="another architecture"):
        create_model(TINY_MODEL, weights=str(wrong))
    bad = tmp_path / "bad.txt"
    bad.write_text("x")
    with pytest.raises(ValueError, match="extension"):
        create_model(TINY_MODEL, weights=str(bad))


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "obj": CourseCNN}, path)
    with pytest.raises(ValueError, match="weights_only"):
        create_model(TINY_MODEL, weights=str(path))


def test_bundled_lite0_uses_tf_architecture_and_its_own_normalisation():
    model = create_model("efficientnet_lite0")
    cfg = model.pretrained_cfg
    assert cfg["architecture"] == "tf_efficientnet_lite0"
    assert cfg["mean"] == (0.5, 0.5, 0.5) and cfg["std"] == (0.5, 0.5, 0.5)
    assert cfg["interpolation"] == "bicubic" and cfg["crop_pct"] == 0.875


@pytest.mark.slow
def test_bundled_lite0_classifies_real_photos():
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image
    from timm.data import ImageNetInfo

    from transferlab.data import eval_transform, preprocessing_from_model

    model = create_model("efficientnet_lite0").eval()
    transform = eval_transform(preprocessing_from_model(model))
    info = ImageNetInfo()
    batch = torch.stack([transform(Image.fromarray(skimage_data.chelsea())),
                         transform(Image.fromarray(skimage_data.coffee()))])
    with torch.no_grad():
        top = model(batch).softmax(-1).argmax(-1).tolist()
    cat, coffee = (info.index_to_description(i) for i in top)
    assert "cat" in cat, cat
    assert coffee in ("espresso", "cup", "coffee mug"), coffee


@pytest.mark.parametrize(("strategy", "scratch"), [("unfreeze-from=2", False), ("full", True)])
def test_offline_weights_error_offers_only_what_works_for_the_command(tmp_path, monkeypatch, strategy, scratch):
    """Offline, the message names the bundled models, the file to fetch for --weights (the hub repository of the
    model's weights), and --weights none only as a way to train from scratch where the strategy allows it."""
    from typer.testing import CliRunner

    from transferlab.cli import app

    from .conftest import make_dataset

    _offline_hub(monkeypatch)
    data = make_dataset(tmp_path / "data", n_train=4, n_val=2)
    result = CliRunner().invoke(app, ["train", str(data), "--model", "resnet18", "--strategy", strategy, "--out",
                                      str(tmp_path / "run")])
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "--model efficientnet_lite0" in text
    assert "https://huggingface.co/timm/resnet18" in text and "--weights FILE" in text
    assert ("Or train from scratch: --weights none" in text) is scratch
    assert not (tmp_path / "run").exists()


def test_classify_refuses_a_network_without_weights():
    """Random weights would print three random ImageNet labels at 0.001 and exit 0: refused, with what works."""
    from typer.testing import CliRunner

    from transferlab.cli import app

    photo = Path(__file__).resolve().parents[1] / "src" / "transferlab" / "data" / "samples" / "chelsea.jpg"
    result = CliRunner().invoke(app, ["classify", str(photo), "--model", "resnet50", "--weights", "none"])
    assert result.exit_code == 2 and "random weights" in result.output and "efficientnet_lite0" in result.output
