"""Each strategy trains exactly what it says; frozen BatchNorm keeps its statistics."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from transferlab.finetune import STRATEGIES, apply_strategy, count_parameters
from transferlab.models import create_model
from transferlab.train import TransferModule

from .conftest import TINY_MODEL


def _one_step(strategy: str) -> tuple[nn.Module, dict, dict]:
    torch.manual_seed(0)
    model = apply_strategy(create_model(TINY_MODEL, num_classes=3, weights="none"), strategy)
    module = TransferModule(model, num_classes=3, lr=0.1, optimizer="sgd")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    module.train()
    opt = module.configure_optimizers()
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 3, (8,))
    loss = nn.functional.cross_entropy(module(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return model, before, model.state_dict()


def _changed(before: dict, after: dict) -> set[str]:
    return {k for k in before if before[k].dtype.is_floating_point and not torch.equal(before[k], after[k])}


def test_freeze_trains_only_the_head_and_keeps_batchnorm_statistics():
    model, before, after = _one_step("freeze")
    changed = _changed(before, after)
    assert changed == {"classifier.weight", "classifier.bias"}
    assert all(not m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d))


def test_full_trains_everything_and_updates_batchnorm_statistics():
    _, before, after = _one_step("full")
    changed = _changed(before, after)
    assert "conv_stem.weight" in changed and "classifier.weight" in changed
    assert "bn1.running_mean" in changed
    floats = {k for k, v in before.items() if v.dtype.is_floating_point}
    assert changed == floats


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_every_strategy_leaves_the_head_trainable(strategy):
    model = apply_strategy(create_model(TINY_MODEL, num_classes=2, weights="none"), strategy)
    assert all(p.requires_grad for p in model.get_classifier().parameters())
    counts = count_parameters(model)
    assert counts["total"] == counts["trainable"] + counts["non_trainable"]


def test_unknown_strategy_suggests_the_right_one():
    model = create_model(TINY_MODEL, num_classes=2, weights="none")
    with pytest.raises(ValueError, match=r"'strategy' parameter of train must be one of .* Did you mean 'freeze'"):
        apply_strategy(model, "frozen")


def test_bundled_lite0_freeze_counts():
    model = apply_strategy(create_model("efficientnet_lite0", num_classes=2), "freeze")
    assert count_parameters(model)["trainable"] == 1280 * 2 + 2
