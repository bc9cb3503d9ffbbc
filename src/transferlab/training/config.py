"""The training configuration: one dataclass, loadable from YAML, saved resolved into every run folder."""

from __future__ import annotations

import math
import os
import re
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from ..errors import MissingFileError, SettingError, check_choice, did_you_mean
from ..runs.history import MONITORS

__all__ = ["TrainConfig", "MONITORS", "OPTIMIZERS", "PRECISIONS", "read_run_config"]

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed")
LR_SCHEDULES = ("constant", "step", "exponential", "cosine", "onecycle", "plateau")
CLASS_WEIGHTS = ("none", "balanced")
MIX_ON = ("images", "cached")
# Keys a run's config.yaml records beside the settings; ignored when the file is read back as a config.
RUN_RECORD_KEYS = frozenset({"classes", "preprocessing", "parameters", "environment"})


_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}
_KIND_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text", list: "a list",
               dict: "a mapping"}


def _options(hint: Any) -> list[Any]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return list(typing.get_args(hint))
    return [hint]


def _convert(value: Any, kind: Any) -> Any:
    """`value` as `kind`, where unambiguous ('8' -> 8, '1e-4' -> 1e-4, 2.0 -> 2, 'yes' -> True, 256 -> [256]);
    raises ValueError otherwise (1.7 is no whole number, True is no number)."""
    origin = typing.get_origin(kind) or kind
    if origin is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError
    if isinstance(value, bool):
        raise ValueError  # true/false is neither a number nor a name
    if origin is int:
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
            return int(value)
        raise ValueError
    if origin is float:
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            return float(value.strip())  # ValueError for words
        raise ValueError
    if origin is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)):
            return str(value)  # unfreeze_from: 143
        raise ValueError
    if origin is list:
        (item,) = typing.get_args(kind) or (Any,)
        items = value if isinstance(value, (list, tuple)) else (
            [v for v in value.split(",") if v.strip()] if isinstance(value, str) else [value])
        return items if item is Any else [_convert(v, item) for v in items]
    if origin is dict:
        if isinstance(value, dict):
            return value
        raise ValueError
    return value


def _check_field(name: str, value: Any, hint: Any, meta: Any) -> Any:
    """One setting checked against its type hint and its field's metadata (ge, gt, le, lt, example); numeric
    strings are converted where unambiguous. The error names the setting and shows a right value."""
    example = meta.get("example") or ("10" if name == "epochs" else "...")
    options = _options(hint)
    if value is None:
        if type(None) in options:
            return None
        raise SettingError(f"The {name!r} setting cannot be empty (null); give a value, e.g. `{name}: {example}`.")
    kinds = [o for o in options if o is not type(None)]
    numeric = [k for k in kinds if k in (int, float)]
    if isinstance(value, str) and numeric:  # '1e-4' is a number to the user, not a word
        kinds = numeric + [k for k in kinds if k not in numeric]
    for kind in kinds:
        try:
            value = _convert(value, kind)
            break
        except (ValueError, TypeError):
            continue
    else:
        words = " or ".join(_KIND_WORDS.get(typing.get_origin(k) or k, str(k)) for k in kinds)
        raise SettingError(f"The {name!r} setting must be {words}, e.g. `{name}: {example}`; got {value!r}.")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for key, test, words in (("ge", lambda v, b: v >= b, "at least"), ("gt", lambda v, b: v > b, "more than"),
                                 ("le", lambda v, b: v <= b, "at most"), ("lt", lambda v, b: v < b, "less than")):
            if key in meta and not test(value, meta[key]):
                raise SettingError(f"The {name!r} setting must be {words} {meta[key]}, e.g. `{name}: {example}`; "
                                   f"got {value}.")
    return value


@dataclass
class TrainConfig:
    """Every setting of a training run. `None` means "resolve from the model and data" (see `resolved`).

    Attributes:
        data: Data folder (train/validation class folders, or one folder of class folders).
        out: Run folder; default `runs/<model>-<date>-<time>`.
        model: Registered model name or any timm architecture.
        weights: 'imagenet', 'none' or a .safetensors/.pth file; default: 'imagenet' where available.
        strategy: A fine-tuning strategy of the registry `training.strategies.STRATEGIES` ('freeze',
            'unfreeze-from=keras:143', 'unfreeze-last=2', 'full', 'two-phase', ...: `strategy_help()`), or 'auto';
            default 'freeze' with pretrained weights, else 'full'.
        unfreeze_from: For 'two-phase': the layer (index or name) the second phase unfreezes from; None = all.
        finetune_lr_factor: For 'two-phase': the second phase's learning rate is lr / this factor.
        finetune_epochs: For 'two-phase': maximum epochs of the second phase (default: `epochs`).
        backbone_lr_mult: The base trains at lr * this (discriminative learning rates), e.g. 0.1.
        layer_decay: Per-layer decay of the base's learning rate (timm's layer decay), e.g. 0.75.
        epochs: Maximum number of epochs.
        batch_size: Images per batch.
        lr: Learning rate; default the strategy's own (`StrategySpec.default_lr`, `lr_help()`); 'auto' runs
            `transferlab advise` (a learning-rate range test) and uses its rate.
        optimizer: 'adam', 'adamw', 'sgd' (momentum 0.9) or 'rmsprop'.
        weight_decay: Weight decay (L2) of the optimizer.
        lr_schedule: Learning-rate decay: 'constant', 'step', 'exponential', 'cosine', 'onecycle', 'plateau'.
        warmup_epochs: Epochs of linear learning-rate warmup.
        head_hidden: Hidden Dense(relu) layers of the new head, e.g. [256].
        head_dropout: Dropout rate in the head.
        head_batch_norm: BatchNormalization after each hidden head layer.
        label_smoothing: Label smoothing of the loss (0 to 1).
        class_weight: 'none' or 'balanced' (weights inversely proportional to class frequency).
        mixup: MixUp alpha (e.g. 0.2); 0 turns it off. Batches of mixed images with soft labels.
        cutmix: CutMix alpha (e.g. 1.0); 0 turns it off. With both, each batch uses one of the two.
        mix_on: What MixUp/CutMix mix: 'images' (the frozen base then runs on every batch: no cache) or 'cached'
            (the cached features or stage-boundary activations a phase trains on, as manifold mixup: the base
            still runs once; images in a phase without a cache). CutMix needs 'images' with strategy freeze.
        image_size: Input size; default the model's own (224 for Lite0, 150 for the course CNN).
        augment: Augmentation: a preset ('none', 'course', 'flip', 'light', 'strong') or a mapping of Keras
            ImageDataGenerator parameters, optionally with 'preset' (see `transferlab.data.augment`).
        val_split: Validation fraction when the data has no validation folder.
        seed: Seed of the split, the initialisation and the data order.
        monitor: 'val_accuracy' or 'val_loss': chooses the best checkpoint and drives early stopping.
        patience: Epochs without improvement before stopping; 0 disables early stopping.
        num_workers: Data-loading processes; default picked from the CPU count. On a CPU, any value above 0 lets
            feature extraction run one process per thread, each decoding its own images; 0 keeps all in one process.
        feature_cache: With 'freeze' (and the first phase of 'two-phase') and no augmentation, compute the base's
            features once and train the head on the cache.
        feature_cache_copies: With augmentation and 'freeze' (or 'unfreeze-last'/'unfreeze-from'): compute N
            augmented copies of every training image's features (or activations at the frozen stage boundary)
            once and train on copy (epoch mod N); 0 runs the base every epoch instead.
        decoded_cache: Keep decoded, resized images in a shared memory-mapped file, so epochs after the first
            never decode JPEGs again.
        cache_limit_gb: The most disk (and page cache) one cache of a split may take, in GB: the feature, boundary
            and decoded-image caches; one that would be larger is not made (the run says so and reads the images,
            or runs the base, every epoch instead).
        channels_last: Channels-last memory format (faster convolutions on CPU and GPU).
        precision: 'auto', '32-true', 'bf16-mixed' or '16-mixed'.
        stream: Stream the data instead of listing it: DATA is an index (CSV/TSV/Parquet of path,label[,split],
            local or s3://, gs://, http(s)://) or a shard folder (`transferlab data shard`); shard folders and
            Parquet indexes always stream. No feature or decoded cache; every DDP rank reads its share.
        compile: Compile the training module with `torch.compile` (Lightning's integration): slower first
            steps (compilation, ~30 s even for a small model), faster later ones on a GPU.
        accelerator: Lightning accelerator: 'auto', 'cpu', 'gpu', ...
        devices: Lightning devices: 'auto' or a count.
        num_nodes: Machines of a multi-node DDP run (launched by torchrun or SLURM; see docs/distributed.md).
        model_kwargs: Passed to the architecture, e.g. {"drop_rate": 0.5, "batch_norm": true} for course_cnn
            (the course's Dropout and BatchNormalization variants).
        subset: Use at most this many training images per class (and a quarter as many validation images),
            drawn with `seed`: an affordable run on a CPU.
        max_minutes: A time budget for the training loops (each phase of 'two-phase' gets half); training stops
            when it is spent, keeping the best checkpoint so far.
        logger: Experiment trackers beside the run folder's own files: 'tensorboard', 'mlflow' and/or 'csv' (one
            point per epoch: the metrics of history.csv and the learning rate; `pip install 'transferlab[tracking]'`).
        advice: Set by `strategy='auto'` / `lr='auto'`: the advice that chose them, with its measurements.

    Example:
        >>> TrainConfig(data="cats_and_dogs_filtered", epochs=5).monitor
        'val_accuracy'
    """

    data: str | None = None
    out: str | None = None
    model: str = "efficientnet_lite0"
    weights: str | None = None
    strategy: str | None = None
    unfreeze_from: str | None = None
    finetune_lr_factor: float = field(default=10.0, metadata={"gt": 0, "example": '10'})
    finetune_epochs: int | None = field(default=None, metadata={"ge": 1, "example": '3'})
    backbone_lr_mult: float = field(default=1.0, metadata={"ge": 0, "example": '0.1'})
    layer_decay: float | None = field(default=None, metadata={"gt": 0, "le": 1, "example": '0.75'})
    epochs: int = field(default=10, metadata={"ge": 1, "example": '10'})
    batch_size: int = field(default=32, metadata={"ge": 1, "example": '32'})
    lr: float | str | None = None
    optimizer: str = "adam"
    weight_decay: float = field(default=0.0, metadata={"ge": 0, "example": '1e-4'})
    lr_schedule: str = "constant"
    warmup_epochs: int = field(default=0, metadata={"ge": 0, "example": '2'})
    head_hidden: list[int] = field(default_factory=list)
    head_dropout: float = field(default=0.0, metadata={"ge": 0, "lt": 1, "example": '0.5'})
    head_batch_norm: bool = False
    label_smoothing: float = field(default=0.0, metadata={"ge": 0, "lt": 1, "example": '0.1'})
    mixup: float = field(default=0.0, metadata={"ge": 0, "example": '0.2'})
    cutmix: float = field(default=0.0, metadata={"ge": 0, "example": '1.0'})
    mix_on: str = "images"
    class_weight: str = "none"
    image_size: int | None = field(default=None, metadata={"ge": 8, "example": '224'})
    augment: str | dict[str, Any] = "none"
    val_split: float = field(default=0.2, metadata={"gt": 0, "lt": 1, "example": '0.2'})
    seed: int = field(default=42, metadata={"example": '42'})
    monitor: str = "val_accuracy"
    patience: int = field(default=5, metadata={"ge": 0, "example": '5'})
    num_workers: int | None = field(default=None, metadata={"ge": 0, "example": '2'})
    feature_cache: bool = True
    feature_cache_copies: int = field(default=0, metadata={"ge": 0, "example": '3'})
    decoded_cache: bool = True
    cache_limit_gb: float = field(default=8.0, metadata={"gt": 0, "example": "8"})
    channels_last: bool = True
    precision: str = "auto"
    compile: bool = False
    stream: bool = False
    accelerator: str = "auto"
    devices: str | int = "auto"
    num_nodes: int = field(default=1, metadata={"ge": 1, "example": '2'})
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    subset: int | None = field(default=None, metadata={"ge": 1, "example": '1000'})
    advice: dict[str, Any] | None = None
    max_minutes: float | None = field(default=None, metadata={"gt": 0, "example": '30'})
    logger: list[str] = field(default_factory=list)

    def validate(self) -> TrainConfig:
        """Checks every setting against its type and its field's range (converting numeric strings where
        unambiguous, as YAML gives `lr: 1e-4` as text), then the rules between settings; raises SettingError
        naming the setting and a right value; returns self."""
        from ..data.augment import resolve_augment
        from .strategies import parse_strategy

        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            setattr(self, f.name, _check_field(f.name, getattr(self, f.name), hints[f.name], f.metadata))

        check_choice("monitor", self.monitor, MONITORS, where="train")
        check_choice("optimizer", self.optimizer, OPTIMIZERS, where="train")
        check_choice("precision", self.precision, PRECISIONS, where="train")
        resolve_augment(self.augment)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES, where="train")
        check_choice("class_weight", self.class_weight, CLASS_WEIGHTS, where="train")
        check_choice("mix_on", self.mix_on, MIX_ON, where="train")
        from .loggers import LOGGERS

        for name in self.logger:  # a single name was made a list by the field check
            check_choice("logger", name, LOGGERS, where="train")
        if self.strategy is not None and self.strategy != "auto":
            parse_strategy(self.strategy)
        if self.lr_schedule == "plateau" and self.warmup_epochs:
            raise SettingError("warmup_epochs cannot be combined with lr_schedule='plateau'; use 'cosine' or 'step'.")
        from ..models._registry import check_model_kwargs

        self.model_kwargs = check_model_kwargs(self.model_kwargs or {}, "the training settings")
        for name in ("lr", "weight_decay", "label_smoothing", "mixup", "cutmix", "finetune_lr_factor",
                     "backbone_lr_mult", "layer_decay", "max_minutes", "head_dropout", "val_split"):
            value = getattr(self, name)
            if isinstance(value, float) and not math.isfinite(value):
                raise SettingError(f"The {name!r} parameter must be a finite number; got {value}.")
        if self.lr == "auto":
            pass
        elif isinstance(self.lr, str):
            raise SettingError(f"The 'lr' parameter must be a learning rate such as 1e-3, or 'auto'; got {self.lr!r}.")
        elif self.lr is not None and not self.lr > 0:
            raise SettingError(f"The 'lr' parameter must be a positive learning rate such as 1e-3; got {self.lr}.")
        return self

    @property
    def mixes(self) -> str | None:
        """What MixUp/CutMix mix when either is on: `mix_on` ('images' or 'cached'); None when both are off."""
        return self.mix_on if (self.mixup or self.cutmix) else None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Builds a config from a mapping; unknown keys are an error that suggests the right name."""
        names = [f.name for f in fields(cls)]
        for key in data:
            if key not in names:
                raise SettingError(f"Unknown training setting {key!r}." + did_you_mean(key, names)
                                 + f" Known settings: {', '.join(names)}.")
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> TrainConfig:
        """Loads and checks a YAML config file (the `config.yaml` of a run works too); an error names the file,
        the line and the key, and shows a right value."""
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"Config file '{path}' does not exist.")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise SettingError(f"Config file '{path}' is not UTF-8 text; save it as UTF-8 (a YAML mapping such as "
                               "`epochs: 10`).") from None
        try:
            data = yaml.safe_load(text) or {}
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.constructor.ConstructorError as e:
            line = e.problem_mark.line + 1 if e.problem_mark else "?"
            raise SettingError(f"Config file '{path}', line {line}: {e.problem}. Only plain values are allowed "
                               "(numbers, text, true/false, lists, mappings), e.g. `epochs: 10`.") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise SettingError(f"Config file '{path}'{where} is not valid YAML ({getattr(e, 'problem', None) or e})."
                               " Write one `key: value` per line, e.g. `epochs: 10`.") from None
        if not isinstance(data, dict):
            raise SettingError(f"Config file '{path}' must hold a mapping of settings, e.g. 'epochs: 10'.")
        lines: dict[str, int] = {}
        if isinstance(root, yaml.MappingNode):
            nodes = root.value
            train = next((v for k, v in nodes if k.value == "train" and isinstance(v, yaml.MappingNode)), None)
            lines = {k.value: k.start_mark.line + 1 for k, _ in (train.value if train is not None else nodes)}
        data = data.get("train", data)
        try:
            return cls.from_dict({k: v for k, v in data.items() if k not in RUN_RECORD_KEYS}).validate()
        except SettingError as e:
            key = next((k for k in lines if f"'{k}'" in str(e)), None) or next(
                (k for k in lines if re.search(rf"\b{re.escape(k)}\b", str(e))), None)
            where = f", line {lines[key]} ({key})" if key else ""
            raise SettingError(f"Config file '{path}'{where}: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_run_config(run_dir: str | os.PathLike[str], action: str = "open") -> TrainConfig:
    """The settings a run was trained with, from its config.yaml (checked like any config file): what `resume` and
    `load_run` start from; `action` names what the caller was asked to do, for the message.

    Raises:
        MissingFileError: The folder has no config.yaml (it is not a run folder).
    """
    from ..runs.folder import RunFolder

    path = RunFolder(run_dir).file("config.yaml")
    if not path.is_file():
        raise MissingFileError(f"Cannot {action} '{run_dir}': it is not a run folder (it has no config.yaml). Pass the "
                               "folder `transferlab train` wrote (its --out, e.g. runs/mine).")
    return TrainConfig.from_yaml(path)
