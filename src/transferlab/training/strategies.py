"""Fine-tuning strategies as data: one registry (`STRATEGIES`) says what each strategy is and does.

A strategy is a string, `NAME` or `NAME=ARGUMENT`. Every fact about it is one field of its `StrategySpec`:
its spelling and argument, its help line, which parameters it trains, its phases (two-phase is the spec whose
`phases` returns two), its default learning rate, whether it needs pretrained weights, which cache its phases can
use, and how `advise` and `advise --budget` plan it. Nothing else compares strategy names: `--strategy` choices,
help and error messages, `fit`, the caches, `advise` and the budget all read the spec.

- `freeze`: the base is frozen (BatchNorm statistics too); only the new head trains.
- `unfreeze-from=K`: base layers K, K+1, ... train; earlier ones stay frozen. K indexes the list
  `transferlab layers MODEL` prints (the course's `base_model.layers[143:]`), is a module name
  (`layer4`, `blocks.5`): the first layer inside it, or `keras:N`: Keras' own layer index.
- `unfreeze-last=N`: the last N stages of the base train (timm's `group_matcher`, any architecture).
- `full`: everything trains.
- `two-phase`: `freeze` until early stopping, then unfreeze (all, or from `unfreeze_from`) with a lower rate.

Adding a strategy is one `StrategySpec` in `STRATEGIES` (tests/test_strategies.py trains, resumes and advises
every entry). This module imports no torch at import time: `transferlab train --help` reads the registry.

Example:
    >>> [spec.name for spec in STRATEGIES.values()]
    ['freeze', 'unfreeze-from', 'unfreeze-last', 'full', 'two-phase']
    >>> STRATEGIES["two-phase"].default_lr, STRATEGIES["full"].default_lr
    (0.001, 0.0001)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import SettingError, did_you_mean

if TYPE_CHECKING:  # torch is imported inside the functions that need it
    from torch import nn

__all__ = ["Strategy", "StrategySpec", "STRATEGIES", "STRATEGY_NAMES", "Phase", "parse_strategy", "get_spec",
           "plan_phases", "strategy_help", "lr_help", "advised_candidates", "apply_strategy",
           "keep_frozen_batchnorm_in_eval", "count_parameters", "resolve_layer_index", "base_and_head"]


@dataclass(frozen=True)
class Strategy:
    """A parsed strategy: `kind` names its `StrategySpec`, `arg` is its argument (None when it takes none)."""

    kind: str
    arg: str | None = None

    def __str__(self) -> str:
        return self.kind if self.arg is None else f"{self.kind}={self.arg}"

    @property
    def spec(self) -> StrategySpec:
        return STRATEGIES[self.kind]


@dataclass(frozen=True)
class Phase:
    """One `trainer.fit` of a run: its number (1, 2, ...), the strategy it trains with, its learning rate and its
    most epochs. Its checkpoint files are named by the run folder (`runs.folder.RunFolder.checkpoint`)."""

    index: int
    strategy: Strategy
    lr: float
    epochs: int


DEFAULT_EPOCHS = 10  # a phase's most epochs when neither the user nor the advice chose


def _epochs(config: Any) -> int:
    return int(config.epochs or DEFAULT_EPOCHS)


def _one_phase(strategy: Strategy, config: Any) -> list[Phase]:
    return [Phase(1, strategy, float(config.lr), _epochs(config))]


def _two_phases(strategy: Strategy, config: Any) -> list[Phase]:
    second = Strategy("full") if config.unfreeze_from is None else Strategy("unfreeze-from", str(config.unfreeze_from))
    return [Phase(1, Strategy("freeze"), float(config.lr), _epochs(config)),
            Phase(2, second, float(config.lr) / float(config.finetune_lr_factor),
                  int(config.finetune_epochs or _epochs(config)))]


def _train_head_only(model: nn.Module, base: nn.Module, arg: str | None) -> None:
    base.requires_grad_(False)


def _train_everything(model: nn.Module, base: nn.Module, arg: str | None) -> None:
    model.requires_grad_(True)


def _train_from_layer(model: nn.Module, base: nn.Module, arg: str | None) -> None:
    from ..models.transfer import base_layers

    layers = base_layers(base)
    if str(arg).startswith("keras:"):  # exactly the counterparts of Keras' layers[N:]
        from ..models.keras_layers import keras_family, keras_layers_from

        resolve_layer_index(model, str(arg))  # the same checks and messages
        chosen = keras_layers_from(base, keras_family(base), int(str(arg).removeprefix("keras:")))
    else:
        chosen = set(range(resolve_layer_index(model, str(arg)), len(layers)))
    base.requires_grad_(False)
    for layer in layers:
        if layer.index in chosen:
            layer.trainable = True


def _train_last_stages(model: nn.Module, base: nn.Module, arg: str | None) -> None:
    groups = _stage_groups(base)
    n = int(str(arg))
    if n > len(groups):
        raise SettingError(f"unfreeze-last={n} asks for more stages than the base has ({len(groups)}); use "
                           f"a number up to {len(groups)}, or 'full'.")
    base.requires_grad_(False)
    names = {name for group in groups[-n:] for name in group}
    for name, param in base.named_parameters():
        if name in names:
            param.requires_grad_(True)


def _any_text(arg: str) -> str | None:
    return None if arg else "it needs a layer after '=': an index, a module name or keras:N"


def _positive_count(arg: str) -> str | None:
    if arg.isdigit() and int(arg) >= 1:
        return None
    return "it needs a positive number of stages after '=', e.g. 'unfreeze-last=2'"


@dataclass(frozen=True)
class StrategySpec:
    """Everything about one strategy, as data.

    Attributes:
        name: The name as typed (`freeze`, `unfreeze-from`, ...).
        argument: What follows '=' in the help ('K', 'N'), or None for a strategy without an argument.
        help: One line for `train --help` and the docs.
        example: A complete spelling for messages and help, e.g. 'unfreeze-from=keras:143'.
        generic: A spelling that works on every model with a base (what the tests train), e.g. 'unfreeze-last=1'.
        default_lr: The learning rate when none is given (of the first phase for several phases).
        needs_pretrained: Whether part of the base stays frozen, which only makes sense with pretrained weights.
        cache: What the (first) phase can cache instead of running the frozen part every epoch: 'features' (the
            frozen base's output), 'boundary' (the activations where the frozen stages end) or None.
        trains: Sets `requires_grad` of the base for this strategy (the head always trains afterwards).
        phases: The phases of a run with this strategy, from the resolved settings.
        check_argument: The problem with an argument ('' or None when fine); None when it takes none.
        advised_as: The spelling `advise` and `advise --budget` propose (None: never proposed, e.g. a layer
            that depends on the model).
        advise_epochs: The epochs `advise` recommends with it.
        budget_epochs: The most epochs `advise --budget` plans with it (each phase).
        probe_epochs: The epochs of its probe under `advise --budget` (each phase).
        whole_model: Whether a training step runs the whole model (the budget estimates its epoch first).
        epoch_settings: The setting that holds each phase's most epochs (resume's --epochs sets the one of the
            phase that continues).
    """

    name: str
    argument: str | None
    help: str
    example: str
    generic: str
    default_lr: float
    needs_pretrained: bool
    cache: str | None
    trains: Callable[[Any, Any, str | None], None]
    phases: Callable[[Strategy, Any], list[Phase]] = _one_phase
    check_argument: Callable[[str], str | None] | None = None
    advised_as: str | None = None
    advise_epochs: int = 10
    budget_epochs: int = 10
    probe_epochs: int = 4
    whole_model: bool = False
    epoch_settings: tuple[str, ...] = ("epochs",)

    @property
    def spelling(self) -> str:
        """'freeze', or 'unfreeze-from=K' for a strategy with an argument."""
        return self.name if self.argument is None else f"{self.name}={self.argument}"


STRATEGIES: dict[str, StrategySpec] = {spec.name: spec for spec in (
    StrategySpec("freeze", None, "the base frozen (BatchNorm too), only the new head trains: fastest, on cached "
                 "features", "freeze", "freeze", 1e-3, True, "features", _train_head_only,
                 advised_as="freeze", advise_epochs=20, budget_epochs=20, probe_epochs=20),
    StrategySpec("unfreeze-from", "K", "layers K, K+1, ... of the base train (K: an index of `transferlab layers "
                 "MODEL`, a module name, or keras:N for Keras' own layer index)", "unfreeze-from=keras:143",
                 "unfreeze-from=-2", 1e-4, True, "boundary", _train_from_layer, check_argument=_any_text),
    StrategySpec("unfreeze-last", "N", "the last N stages of the base train", "unfreeze-last=2", "unfreeze-last=1",
                 1e-4, True, "boundary", _train_last_stages, check_argument=_positive_count,
                 advised_as="unfreeze-last=2", advise_epochs=10, budget_epochs=10, probe_epochs=8),
    StrategySpec("full", None, "everything trains (from scratch without pretrained weights)", "full", "full", 1e-4,
                 False, None, _train_everything, advised_as="full", advise_epochs=30, budget_epochs=10,
                 probe_epochs=4, whole_model=True),
    StrategySpec("two-phase", None, "freeze until early stopping, then unfreeze (all, or from --unfreeze-from) at "
                 "lr / --finetune-lr-factor", "two-phase", "two-phase", 1e-3, True, "features", _train_head_only,
                 phases=_two_phases, advised_as="two-phase", advise_epochs=8, budget_epochs=8, probe_epochs=5,
                 whole_model=True, epoch_settings=("epochs", "finetune_epochs")),
)}
STRATEGY_NAMES = tuple(spec.spelling for spec in STRATEGIES.values())


def get_spec(strategy: str | Strategy) -> StrategySpec:
    """The spec of a strategy string or `Strategy` (parsed and checked)."""
    return parse_strategy(strategy).spec


def strategy_help() -> str:
    """The `--strategy` help, from the registry.

    Example:
        >>> strategy_help().split(";")[0]
        'freeze: the base frozen (BatchNorm too), only the new head trains: fastest, on cached features'
    """
    return "; ".join(f"{spec.spelling}: {spec.help}" for spec in STRATEGIES.values()) + (
        ". Default: freeze with pretrained weights, else full; 'auto' runs `transferlab advise`.")


def lr_help() -> str:
    """The `--lr` help, with each strategy's default rate from the registry.

    Example:
        >>> lr_help().split("; ")[0]
        "Learning rate, or 'auto' (a learning-rate range test, `transferlab advise`). Default: the strategy's own"
    """
    rates = ", ".join(f"{spec.name} {spec.default_lr:g}" for spec in STRATEGIES.values())
    return ("Learning rate, or 'auto' (a learning-rate range test, `transferlab advise`). Default: the strategy's own"
            f"; {rates} (two-phase: its first phase; the second trains at lr / --finetune-lr-factor).")


def advised_candidates(pretrained: bool = True) -> tuple[str, ...]:
    """The strategies `advise --budget` probes: those the advice proposes (without pretrained weights, only the ones
    that need none)."""
    return tuple(spec.advised_as for spec in STRATEGIES.values()
                 if spec.advised_as and (pretrained or not spec.needs_pretrained))


def _strategy_error(value: str, extra: str = "") -> SettingError:
    listed = ", ".join(repr(s) for s in STRATEGY_NAMES)
    choices = [spec.name + ("=" if spec.argument else "") for spec in STRATEGIES.values()]
    return SettingError(f"The 'strategy' parameter of train must be one of {listed}. Got {value!r} instead."
                        + extra + did_you_mean(value, choices))


def parse_strategy(value: str | Strategy) -> Strategy:
    """Parses 'NAME' or 'NAME=ARGUMENT' against the registry.

    Example:
        >>> parse_strategy("unfreeze-from=143")
        Strategy(kind='unfreeze-from', arg='143')
    """
    if isinstance(value, Strategy):
        return value
    text = str(value).strip()
    name, equals, arg = text.partition("=")
    spec = STRATEGIES.get(name.strip())
    if spec is None:
        raise _strategy_error(text)
    arg = arg.strip()
    if spec.check_argument is None:
        if equals:
            raise _strategy_error(text, f" {spec.name} takes no argument.")
        return Strategy(spec.name)
    problem = spec.check_argument(arg)
    if problem:
        raise _strategy_error(text, f" For {spec.name}, {problem}, e.g. {spec.example!r}.")
    return Strategy(spec.name, arg)


def plan_phases(config: Any) -> list[Phase]:
    """The phases of a run from its resolved settings (strategy, lr, epochs, ...), as its strategy's spec plans
    them.

    Example:
        >>> from transferlab.training.config import TrainConfig
        >>> [(p.index, str(p.strategy), p.lr) for p in plan_phases(TrainConfig(strategy="two-phase", lr=1e-3))]
        [(1, 'freeze', 0.001), (2, 'full', 0.0001)]
    """
    strategy = parse_strategy(config.strategy)
    return strategy.spec.phases(strategy, config)


def base_and_head(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    if hasattr(model, "features") and hasattr(model, "head"):
        return model.features, model.head
    return model, model.get_classifier()


def resolve_layer_index(model: nn.Module, ref: str | int) -> int:
    """Turns a layer index or a module name into an index of the base's layer list.

    Raises:
        SettingError: The index is out of range or no layer has that name; the message lists some names.
    """
    from ..models.transfer import base_layers

    base, _ = base_and_head(model)
    layers = base_layers(base)
    text = str(ref)
    if text.startswith("keras:"):  # Keras' own layer index, as in the course's base_model.layers[143:]
        from ..models.keras_layers import keras_family, keras_index_to_layer

        number = text.removeprefix("keras:")
        if not number.isdigit():
            raise SettingError(f"keras:N needs a Keras layer index, e.g. 'unfreeze-from=keras:143'; got {text!r}.")
        return keras_index_to_layer(base, keras_family(base), int(number))
    if text.lstrip("-").isdigit():
        index = int(text)
        if not -len(layers) <= index < len(layers):
            raise SettingError(f"Layer index {index} is out of range: the base has {len(layers)} layers (0 to "
                               f"{len(layers) - 1}). Run `transferlab layers MODEL` to see them.")
        return index % len(layers)
    for layer in layers:
        if layer.name == text or layer.name.startswith(text + "."):
            return layer.index
    tops = sorted({layer.name.split(".")[0] for layer in layers})
    raise SettingError(f"No layer named {text!r} in the base. Top-level modules: {', '.join(tops)}. Run "
                       "`transferlab layers MODEL` for every layer." + did_you_mean(text, [la.name for la in layers]))


def _stage_groups(base: nn.Module) -> list[list[str]]:
    from timm.models import group_parameters

    groups = group_parameters(base, base.group_matcher(coarse=True))
    return [groups[k] for k in sorted(groups)]


def apply_strategy(model: nn.Module, strategy: str | Strategy) -> nn.Module:
    """Sets which parameters of `model` train under `strategy` (its spec's `trains`) and returns the model.

    The new head always trains. `two-phase` starts as `freeze`. Frozen BatchNorm layers are put in
    inference mode, as Keras does for `trainable = False`.

    Example:
        >>> from transferlab.models import build_classifier
        >>> model = apply_strategy(build_classifier("efficientnet_lite0", num_classes=2), "freeze")
        >>> count_parameters(model)["trainable"]
        2562
    """
    strategy = parse_strategy(strategy)
    base, head = base_and_head(model)
    strategy.spec.trains(model, base, strategy.arg)
    head.requires_grad_(True)
    keep_frozen_batchnorm_in_eval(model)
    return model


def _is_norm(module: nn.Module) -> bool:
    from torch import nn

    return isinstance(module, nn.modules.batchnorm._BatchNorm)


def keep_frozen_batchnorm_in_eval(model: nn.Module) -> None:
    """Puts every BatchNorm layer whose parameters are all frozen in inference mode.

    As in Keras, a frozen BatchNorm uses and keeps its moving mean and variance; call this after every
    `model.train()` (the training module does).
    """
    for module in model.modules():
        if _is_norm(module):
            params = list(module.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                module.eval()


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Total, trainable and non-trainable parameter counts, as in Keras' `model.summary()`."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable, "non_trainable": total - trainable}
