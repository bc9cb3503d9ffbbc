"""The training configuration: one dataclass, loadable from YAML, saved resolved into every run folder."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .._io import RefusedYAML, safe_yaml
from .._settings import check_settings, settings_from
from ..errors import MissingFileError, SettingError
from ..runs.history import MONITORS

__all__ = ["TrainConfig", "MONITORS", "OPTIMIZERS", "PRECISIONS", "read_run_config"]

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed")
LR_SCHEDULES = ("constant", "step", "exponential", "cosine", "onecycle", "plateau")
CLASS_WEIGHTS = ("none", "balanced")
MIX_ON = ("images", "cached")
LOGGERS = ("csv", "tensorboard", "mlflow")  # the experiment trackers `training.loggers` makes
# Keras' (and the course's) spellings of settings that transferlab names otherwise, accepted as the same setting
# in the API, YAML and on the command line (`--learning-rate`): `Adam(learning_rate=1e-4)`,
# `ReduceLROnPlateau(factor=0.2)`, `validation_split=0.2`
KERAS_NAMES = {"learning_rate": "lr", "validation_split": "val_split", "factor": "plateau_factor"}


def max_workers() -> int:
    """The most data-loading processes allowed: 4 per CPU (more only fill the memory: each is a copy of the
    process)."""
    return 4 * (os.cpu_count() or 1)


# Keys a run's config.yaml records beside the settings; ignored when the file is read back as a config.
RUN_RECORD_KEYS = frozenset({"classes", "preprocessing", "parameters", "environment"})


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
        epochs: Maximum number of epochs; default 10 (with strategy 'auto', the epochs the advice plans).
        batch_size: Images per batch.
        lr: Learning rate; default the strategy's own (`StrategySpec.default_lr`, `lr_help()`); 'auto' runs
            `transferlab advise` (a learning-rate range test) and uses its rate.
        optimizer: 'adam', 'adamw', 'sgd' (momentum 0.9) or 'rmsprop'.
        weight_decay: Weight decay (L2) of the optimizer.
        lr_schedule: Learning-rate decay (the course's "learning decay"): 'constant', 'step' (times decay_rate every
            decay_steps epochs), 'exponential' (times decay_rate every decay_steps epochs, smoothly: Keras'
            ExponentialDecay), 'cosine', 'onecycle' or 'plateau' (times plateau_factor after plateau_patience
            epochs without improvement: Keras' ReduceLROnPlateau).
        decay_rate: The factor of 'step' and 'exponential'; default 0.1 for step, 0.9 for exponential.
        decay_steps: Epochs between decays of 'step' and 'exponential'; default a third of the epochs for step, 1
            for exponential (Keras counts optimizer steps; transferlab counts epochs).
        plateau_factor: 'plateau': the rate is multiplied by this (Keras' `factor`).
        plateau_patience: 'plateau': epochs without improvement of `monitor` before the rate drops.
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
    epochs: int | None = field(default=None, metadata={"ge": 1, "example": '10'})
    batch_size: int = field(default=32, metadata={"ge": 1, "example": '32'})
    lr: float | str | None = field(default=None, metadata={"gt": 0, "example": "1e-3"})
    optimizer: str = field(default="adam", metadata={"choices": OPTIMIZERS})
    weight_decay: float = field(default=0.0, metadata={"ge": 0, "example": '1e-4'})
    lr_schedule: str = field(default="constant", metadata={"choices": LR_SCHEDULES})
    decay_rate: float | None = field(default=None, metadata={"gt": 0, "lt": 1, "example": "0.9"})
    decay_steps: int | None = field(default=None, metadata={"ge": 1, "example": "3"})
    plateau_factor: float = field(default=0.2, metadata={"gt": 0, "lt": 1, "example": "0.2"})
    plateau_patience: int = field(default=2, metadata={"ge": 0, "example": "2"})
    warmup_epochs: int = field(default=0, metadata={"ge": 0, "example": '2'})
    head_hidden: list[int] = field(default_factory=list)
    head_dropout: float = field(default=0.0, metadata={"ge": 0, "lt": 1, "example": '0.5'})
    head_batch_norm: bool = False
    label_smoothing: float = field(default=0.0, metadata={"ge": 0, "lt": 1, "example": '0.1'})
    mixup: float = field(default=0.0, metadata={"ge": 0, "example": '0.2'})
    cutmix: float = field(default=0.0, metadata={"ge": 0, "example": '1.0'})
    mix_on: str = field(default="images", metadata={"choices": MIX_ON})
    class_weight: str = field(default="none", metadata={"choices": CLASS_WEIGHTS})
    image_size: int | None = field(default=None, metadata={"ge": 8, "le": 4096, "example": '224'})
    augment: str | dict[str, Any] = "none"
    val_split: float = field(default=0.2, metadata={"gt": 0, "lt": 1, "example": '0.2'})
    seed: int = field(default=42, metadata={"ge": 0, "lt": 2**32, "example": '42'})
    monitor: str = field(default="val_accuracy", metadata={"choices": tuple(MONITORS)})
    patience: int = field(default=5, metadata={"ge": 0, "example": '5'})
    num_workers: int | None = field(default=None, metadata={"ge": 0, "le": max_workers, "example": '2'})
    feature_cache: bool = True
    feature_cache_copies: int = field(default=0, metadata={"ge": 0, "example": '3'})
    decoded_cache: bool = True
    cache_limit_gb: float = field(default=8.0, metadata={"gt": 0, "example": "8"})
    channels_last: bool = True
    precision: str = field(default="auto", metadata={"choices": PRECISIONS})
    compile: bool = False
    stream: bool = False
    accelerator: str = "auto"
    devices: str | int = "auto"
    num_nodes: int = field(default=1, metadata={"ge": 1, "example": '2'})
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    subset: int | None = field(default=None, metadata={"ge": 1, "example": '1000'})
    advice: dict[str, Any] | None = None
    max_minutes: float | None = field(default=None, metadata={"gt": 0, "example": '30'})
    logger: list[str] = field(default_factory=list, metadata={"choices": LOGGERS})

    def validate(self) -> TrainConfig:
        """Checks every setting against its type and its field's range (converting numeric strings where
        unambiguous, as YAML gives `lr: 1e-4` as text), then the rules between settings; raises SettingError
        naming the setting and a right value; returns self."""
        from ..data.augment import resolve_augment
        from .strategies import parse_strategy

        check_settings(self, "")  # every field: its type and its metadata (ranges, choices, finite numbers)
        resolve_augment(self.augment)
        if self.strategy is not None and self.strategy != "auto":
            parse_strategy(self.strategy)
        if self.lr_schedule == "plateau" and self.warmup_epochs:
            raise SettingError("warmup_epochs cannot be combined with lr_schedule='plateau'; use 'cosine' or 'step'.")
        if self.model_kwargs:  # (the check needs the model registry, which loads torch)
            from ..models._registry import check_model_kwargs

            self.model_kwargs = check_model_kwargs(self.model_kwargs, "the training settings")
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
        """Builds a config from a mapping; unknown keys are an error that suggests the right name (and translates
        Keras' spellings: `KERAS_NAMES`)."""
        return settings_from(cls, dict(data), "training", KERAS_NAMES)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> TrainConfig:
        """Loads and checks a YAML config file (the `config.yaml` of a run works too); an error names the file,
        the line and the key, and shows a right value."""
        path = find_config(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise SettingError(f"Config file '{path}' is not UTF-8 text; save it as UTF-8 (a YAML mapping such as "
                               "`epochs: 10`).") from None
        try:
            data = safe_yaml(text) or {}
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except RefusedYAML as e:
            where = f", line {e.problem_mark.line + 1}" if e.problem_mark else ""
            raise SettingError(f"Config file '{path}'{where}: {e.problem}. Write each value out, e.g. "
                               "`epochs: 10`.") from None
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
        if not isinstance(data, dict):
            raise SettingError(f"Config file '{path}': 'train:' must hold a mapping of settings (indented lines such "
                               f"as `  epochs: 10`); it holds {type(data).__name__} {str(data)[:40]!r}.")
        try:
            return cls.from_dict({k: v for k, v in data.items() if k not in RUN_RECORD_KEYS}).validate()
        except SettingError as e:
            key = next((k for k in lines if f"'{k}'" in str(e)), None) or next(
                (k for k in lines if re.search(rf"\b{re.escape(k)}\b", str(e))), None)
            where = f", line {lines[key]} ({key})" if key else ""
            raise SettingError(f"Config file '{path}'{where}: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


RECIPES = Path(__file__).resolve().parents[1] / "recipes"  # the course's exercises, shipped with the package


def recipe_names() -> list[str]:
    """The recipes shipped with transferlab (`--config NAME` from any folder).

    Example:
        >>> "ex1_course_cnn" in recipe_names()
        True
    """
    return sorted(p.stem for p in RECIPES.glob("*.yaml"))


def find_config(path: str | os.PathLike[str]) -> Path:
    """A config file: the path given, or else the recipe of that name shipped with the package (`ex1_course_cnn`,
    with or without `.yaml`).

    Raises:
        MissingFileError: Neither exists; the message lists the recipes.
    """
    given = Path(path)
    if given.is_file():
        return given
    recipe = RECIPES / (given.name if given.suffix in (".yaml", ".yml") else f"{given.name}.yaml")
    if recipe.is_file() and given.parent in (Path("."), Path("examples")):
        return recipe
    raise MissingFileError(f"Config file '{path}' does not exist, and no recipe has that name. Recipes (usable by "
                           f"name from any folder, e.g. --config ex1_course_cnn): {', '.join(recipe_names())}.")


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
