"""Each strategy trains exactly what it says; frozen BatchNorm keeps its statistics."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from transferlab.models import HeadConfig, build_classifier
from transferlab.models.transfer import base_layers
from transferlab.training.config import TrainConfig
from transferlab.training.module import TransferModule
from transferlab.training.optim import parameter_groups
from transferlab.training.strategies import (
    apply_strategy,
    count_parameters,
    parse_strategy,
    resolve_layer_index,
)

from .conftest import TINY_MODEL


def _model(**kwargs) -> nn.Module:
    torch.manual_seed(0)
    return build_classifier(TINY_MODEL, num_classes=3, weights="none", **kwargs)


def _one_step(model: nn.Module, strategy: str) -> tuple[dict, dict]:
    apply_strategy(model, strategy)
    module = TransferModule(model, 3, TrainConfig(optimizer="sgd"), lr=0.1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    module.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = nn.functional.cross_entropy(module(torch.randn(8, 3, 32, 32)), torch.randint(0, 3, (8,)))
    opt.zero_grad()
    loss.backward()
    opt.step()
    return before, model.state_dict()


def _changed(before: dict, after: dict) -> set[str]:
    return {k for k in before if before[k].dtype.is_floating_point and not torch.equal(before[k], after[k])}


def _floats(state: dict, prefix: str = "") -> set[str]:
    return {k for k, v in state.items() if v.dtype.is_floating_point and k.startswith(prefix)}


def test_freeze_trains_only_the_head_and_keeps_batchnorm_statistics():
    model = _model()
    before, after = _one_step(model, "freeze")
    assert _changed(before, after) == {"head.0.weight", "head.0.bias"}
    assert all(not m.training for m in model.features.modules() if isinstance(m, nn.BatchNorm2d))


def test_full_trains_everything_and_updates_batchnorm_statistics():
    model = _model()
    before, after = _one_step(model, "full")
    assert "features.bn1.running_mean" in _changed(before, after)
    assert _changed(before, after) == _floats(before)


def test_unfreeze_from_index_trains_that_layer_and_later_ones_only():
    model = _model()
    layers = base_layers(model.features)
    k = next(la.index for la in layers if la.name.startswith("blocks.1"))
    before, after = _one_step(model, f"unfreeze-from={k}")
    changed = _changed(before, after)
    later = {f"features.{la.name}." for la in layers[k:]}
    earlier = {f"features.{la.name}." for la in layers[:k]}
    assert "head.0.weight" in changed
    assert any(c.startswith(tuple(later)) for c in changed)
    assert not any(c.startswith(tuple(earlier)) for c in changed), "a layer before K changed"
    # frozen BatchNorm before K keeps its running statistics; trainable BatchNorm after K updates them
    assert not {"features.bn1.running_mean", "features.bn1.running_var"} & changed
    assert any(c.endswith("running_mean") and c.startswith(tuple(later)) for c in changed)


def test_unfreeze_from_a_module_name_equals_its_first_index():
    model = _model()
    k = resolve_layer_index(model, "blocks.1")
    assert base_layers(model.features)[k].name.startswith("blocks.1.")
    a = count_parameters(apply_strategy(model, f"unfreeze-from={k}"))
    b = count_parameters(apply_strategy(model, "unfreeze-from=blocks.1"))
    assert a == b


def test_unfreeze_last_stage_uses_group_matcher():
    model = _model()
    before, after = _one_step(model, "unfreeze-last=1")
    changed = _changed(before, after)
    assert "head.0.weight" in changed
    assert not any(c.startswith(("features.conv_stem", "features.blocks.0")) for c in changed)
    assert any(c.startswith("features.conv_head") for c in changed)


def test_two_phase_starts_frozen():
    model = _model()
    before, after = _one_step(model, "two-phase")
    assert _changed(before, after) == {"head.0.weight", "head.0.bias"}


@pytest.mark.parametrize("strategy", ["freeze", "unfreeze-from=3", "unfreeze-last=2", "full", "two-phase"])
def test_every_strategy_leaves_the_head_trainable(strategy):
    model = apply_strategy(_model(head=HeadConfig(hidden=(8,), dropout=0.2, batch_norm=True)), strategy)
    assert all(p.requires_grad for p in model.head.parameters())
    counts = count_parameters(model)
    # the head worked out by hand: Dense(8) + BatchNorm(8) + Dense(classes) on the base's pooled features
    features, classes = model.features.num_features, model.head[-1].out_features
    head = features * 8 + 8 + 2 * 8 + 8 * classes + classes
    base = sum(p.numel() for p in model.features.parameters())
    if strategy in ("freeze", "two-phase"):  # two-phase starts frozen
        assert counts["trainable"] == head
    elif strategy == "full":
        assert counts["trainable"] == head + base
    else:
        assert head < counts["trainable"] < head + base
    assert counts["total"] == head + base


@pytest.mark.parametrize(("value", "message"), [
    ("frozen", "Did you mean 'freeze'"),
    ("unfreeze-last=x", "positive number"),
    ("unfreeze_from=3", "Did you mean 'unfreeze-from='"),
])
def test_bad_strategies_say_what_to_pass(value, message):
    with pytest.raises(ValueError, match=message):
        parse_strategy(value)


def test_bad_layer_references():
    model = _model()
    with pytest.raises(ValueError, match="out of range"):
        apply_strategy(model, "unfreeze-from=100000")
    with pytest.raises(ValueError, match="No layer named 'layer9'"):
        apply_strategy(model, "unfreeze-from=layer9")
    with pytest.raises(ValueError, match="more stages"):
        apply_strategy(model, "unfreeze-last=99")


def test_keras_idiom_matches_the_strategies():
    model = _model()
    model.base.trainable = False
    assert len(model.trainable_weights) == 2  # the head's kernel and bias, as Keras counts them
    k = resolve_layer_index(model, "blocks.1")
    for layer in model.base.layers[k:]:
        layer.trainable = True
    via_idiom = {id(p) for p in model.trainable_weights}
    apply_strategy(model, f"unfreeze-from={k}")
    assert via_idiom == {id(p) for p in model.trainable_weights}
    model.base.trainable = True
    assert len(model.trainable_weights) == len(list(model.parameters()))


def test_keras_frozen_batchnorm_runs_in_inference_mode_during_training():
    model = _model()
    model.base.trainable = False
    module = TransferModule(model, 3, TrainConfig(), lr=0.1)
    module.train()
    x = torch.randn(4, 3, 32, 32)
    model.eval()
    expected = model.features(x)
    module.train()
    assert torch.allclose(model.features(x), expected, atol=1e-6)  # frozen base: same output in training


def test_discriminative_learning_rates():
    model = apply_strategy(_model(), "full")
    groups = parameter_groups(model, lr=1e-3, backbone_lr_mult=0.1)
    assert {g["name"]: g["lr"] for g in groups} == {"head": 1e-3, "base": pytest.approx(1e-4)}
    decayed = parameter_groups(model, lr=1e-3, layer_decay=0.5)
    lrs = [g["lr"] for g in decayed if g["name"].startswith("base")]
    assert min(lrs) < max(lrs) <= 1e-3  # earlier layers train slower
    n = sum(len(g["params"]) for g in decayed)
    assert n == len([p for p in model.parameters() if p.requires_grad])


def test_course_cnn_counts_and_binary_head():
    model = build_classifier("course_cnn", num_classes=2, weights="none")
    assert count_parameters(model)["total"] == 3_453_121
    assert model(torch.randn(1, 3, 150, 150)).shape == (1, 1)


def test_bundled_lite0_freeze_counts():
    model = apply_strategy(build_classifier("efficientnet_lite0", num_classes=2), "freeze")
    assert count_parameters(model)["trainable"] == 1280 * 2 + 2
