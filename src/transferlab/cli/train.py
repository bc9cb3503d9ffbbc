"""`transferlab train`: fine-tune a model on a folder of images."""

from __future__ import annotations

import inspect
import typing
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape as rich_escape

from ..errors import SettingError
from ..training.config import TrainConfig
from ..training.strategies import lr_help, strategy_help
from ._augment_flags import KERAS_FLAGS, bool_flag_parameters, keras_flag_parameters, keras_overrides, merge_bool_flags
from ._common import print_json, user_errors


def _lr(value: str | None) -> float | str | None:
    if value is None or value == "auto":
        return value
    try:
        return float(value)
    except ValueError:
        raise SettingError(f"--lr must be a number such as 1e-3, or 'auto'; got {value!r}.") from None


# The train options are generated from TrainConfig's fields: name, type, default and help text (the
# "Attributes:" of its docstring) are written once, there. Only the grouping into help panels lives here.
PANELS = {
    "Data": ("val_split", "subset", "stream", "image_size", "class_weight", "augment"),
    "Model and strategy": ("model", "weights", "strategy", "unfreeze_from", "finetune_lr_factor", "finetune_epochs",
                           "head_hidden", "head_dropout", "head_batch_norm", "model_kwargs"),
    "Optimisation": ("epochs", "batch_size", "lr", "optimizer", "weight_decay", "lr_schedule", "warmup_epochs",
                     "backbone_lr_mult", "layer_decay", "label_smoothing", "mixup", "cutmix", "mix_on", "monitor",
                     "patience", "max_minutes", "seed"),
    "Speed": ("num_workers", "feature_cache", "feature_cache_copies", "decoded_cache", "cache_limit_gb",
              "channels_last", "precision", "compile"),
    "Devices": ("accelerator", "devices", "num_nodes"),
    "Run folder": ("out",),
    "Tracking": ("logger",),
}
NOT_OPTIONS = {"data", "advice", "model_kwargs"}  # DATA is the argument; the others come from YAML or advise
# help texts made from a registry rather than from TrainConfig's docstring (the registry is their one owner)
GENERATED_HELP = {"strategy": strategy_help, "lr": lr_help}


def field_help(cls: type) -> dict[str, str]:
    """The Google-style "Attributes:" section of a dataclass's docstring as {field: one-line help}."""
    docs: dict[str, str] = {}
    lines = (inspect.getdoc(cls) or "").splitlines()
    inside, name = False, None
    for line in lines:
        if line.strip() == "Attributes:":
            inside = True
            continue
        if inside and line and not line.startswith(" "):
            break
        if inside and line.startswith("    ") and not line.startswith("     ") and ":" in line:
            name, text = line.strip().split(":", 1)
            docs[name] = text.strip()
        elif inside and name and line.strip():
            docs[name] += " " + line.strip()
    return docs


def _cli_type(hint: Any) -> Any:
    """The option type for a field's type hint: bool, int, float, list[int], list[str], else text."""
    args = [a for a in typing.get_args(hint) if a is not type(None)] if typing.get_origin(hint) in (
        typing.Union, __import__("types").UnionType) else [hint]
    if len(args) == 1 and args[0] in (bool, int, float):
        return args[0]
    if len(args) == 1 and typing.get_origin(args[0]) is list:
        return list[str] if typing.get_args(args[0]) == (str,) else list[int]
    return str


def _train_parameters() -> list[inspect.Parameter]:
    helps, hints = field_help(TrainConfig), typing.get_type_hints(TrainConfig)
    panel_of = {name: panel for panel, names in PANELS.items() for name in names}
    params = [inspect.Parameter("data", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=Annotated[
        str | None, typer.Argument(help=helps["data"], show_default=False)])]
    for f in fields(TrainConfig):
        if f.name in NOT_OPTIONS:
            continue
        kind, flag = _cli_type(hints[f.name]), "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        text = rich_escape(GENERATED_HELP[f.name]() if f.name in GENERATED_HELP else helps.get(f.name, ""))
        if default not in (None, [], {}) and "default" not in text.lower():  # escaped: rich would eat "[...]"
            text += f" \\[default: {str(default).lower() if isinstance(default, bool) else default}]"
        panel = panel_of.get(f.name, "Training")
        if kind is bool:  # one visible flag, the one that changes the default; its opposite hidden (for YAML runs)
            params += bool_flag_parameters(f.name, bool(default), text, panel)
            continue
        option = typer.Option(flag, help=text, show_default=False, rich_help_panel=panel)
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                        annotation=Annotated[kind | None, option]))
    order = {name: i for i, name in enumerate(n for names in PANELS.values() for n in names)}
    params[1:] = sorted(params[1:], key=lambda p: order.get(p.name.removeprefix("no_"), len(order)))
    params += keras_flag_parameters()
    run = "Run folder"
    params += [
        inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
            Path | None, typer.Option(help="YAML file of settings; flags override it.", rich_help_panel=run)]),
        inspect.Parameter("overwrite", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
            bool, typer.Option(help="Replace an existing run folder.", rich_help_panel=run)]),
        inspect.Parameter("resume", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
            Path | None, typer.Option(help="Continue this run folder from its last checkpoint (optimizer, schedule, "
                                           "epoch and phase restored).", rich_help_panel=run)]),
        inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
            bool, typer.Option("--quiet", "-q", help="No console output.", rich_help_panel=run)]),
        inspect.Parameter("json_output", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
            bool, typer.Option("--json", help="Print the final metrics as JSON.", rich_help_panel=run)]),
    ]
    return params


def _train(data: str | None = None, *, config: Path | None = None, overwrite: bool = False,
           resume: Path | None = None, quiet: bool = False, json_output: bool = False, **options: Any) -> None:
    """Fine-tune a model on a folder of images and write a run folder (checkpoints, bundle, history, plots).

    Example: transferlab train cats_and_dogs_filtered --strategy two-phase --epochs 10 --out runs/cd
    """
    from ..training.fit import fit
    from ..training.fit import resume as resume_run

    if resume is not None:
        result = resume_run(resume, epochs=options.get("epochs"), quiet=quiet or json_output)
    else:
        settings = TrainConfig.from_yaml(config).to_dict() if config else {}
        keras = keras_overrides(options)
        options = merge_bool_flags(options)
        flags = {k: v for k, v in options.items() if v is not None and k not in KERAS_FLAGS}
        if "lr" in flags:
            flags["lr"] = _lr(flags["lr"])
        if isinstance(flags.get("devices"), str) and flags["devices"].isdigit():
            flags["devices"] = int(flags["devices"])
        for name in ("head_hidden", "logger"):  # an absent list option arrives as []: keep the YAML's
            if name in flags and not flags[name]:
                del flags[name]
        settings.update({"data": data} if data is not None else {})
        settings.update(flags)
        if keras:
            base = settings.get("augment", "none")
            settings["augment"] = {**(base if isinstance(base, dict) else {"preset": base}), **keras}
        result = fit(TrainConfig.from_dict(settings), overwrite=overwrite, quiet=quiet or json_output)
    if json_output:
        print_json({"run_dir": str(result.run_dir), **result.metrics})


_parameters = _train_parameters()
_train.__signature__ = inspect.Signature(_parameters)  # type: ignore[attr-defined]
_train.__annotations__ = {p.name: p.annotation for p in _parameters}
train = user_errors(_train)
train.__name__ = "train"
