"""`transferlab train`: fine-tune a model on a folder of images."""

from __future__ import annotations

import inspect
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

from .._settings import field_help
from ..errors import SettingError
from ..training.config import KERAS_NAMES, TrainConfig, recipe_names
from ..training.strategies import lr_help, strategy_help
from ._augment_flags import keras_flag_parameters, keras_overrides
from ._common import print_json, user_errors
from ._settings_options import given_settings, settings_parameters

# The train options are generated from TrainConfig's fields: name, type, default and help text (the
# "Attributes:" of its docstring) are written once, there. Only the grouping into help panels lives here.
PANELS = {
    "Data": ("val_split", "subset", "stream", "image_size", "class_weight", "augment"),
    "Model and strategy": ("model", "weights", "strategy", "unfreeze_from", "finetune_lr_factor", "finetune_epochs",
                           "head_hidden", "head_dropout", "head_batch_norm", "model_kwargs"),
    "Optimisation": ("epochs", "batch_size", "lr", "optimizer", "weight_decay", "lr_schedule", "decay_rate",
                     "decay_steps", "plateau_factor", "plateau_patience", "warmup_epochs",
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


def _train_parameters() -> list[inspect.Parameter]:
    helps = field_help(TrainConfig)
    params = [inspect.Parameter("data", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=Annotated[
        str | None, typer.Argument(help=helps["data"], show_default=False)])]
    params += settings_parameters(TrainConfig, PANELS, NOT_OPTIONS, GENERATED_HELP, default_panel="Training")
    params += keras_flag_parameters()
    for alias, name in KERAS_NAMES.items():  # Keras' spellings, hidden: `--learning-rate` is `--lr`
        option = typer.Option("--" + alias.replace("_", "-"), hidden=True, help=f"Keras' name of --{name}.")
        params.append(inspect.Parameter(alias, inspect.Parameter.KEYWORD_ONLY, default=None,
                                        annotation=Annotated[str | None, option]))
    run = "Run folder"
    params += [
        inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
            Path | None, typer.Option(help="YAML file of settings, or the name of a recipe shipped with transferlab "
                                           "(" + ", ".join(recipe_names()) + "); flags override it.",
                                      rich_help_panel=run)]),
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
    # everything the user typed is checked here, before torch loads (seconds): a typo is answered at once
    keras = keras_overrides(options)
    flags = given_settings(options, {f.name for f in fields(TrainConfig)} | set(KERAS_NAMES))
    if resume is not None:
        from .._settings import check_value
        from ..training.config import read_run_config

        read_run_config(resume, "resume")
        unused = sorted(set(flags) - {"epochs"})
        if unused:
            raise SettingError(f"--resume continues a run with its own settings (its config.yaml); only --epochs may "
                               f"change. Drop {', '.join('--' + u.replace('_', '-') for u in unused)}, or start a new "
                               "run (another --out).")
        epochs = check_value("epochs", flags.get("epochs"), int | None, {"ge": 1, "example": "20"}, "")
        from ..training.fit import resume as resume_run

        result = resume_run(resume, epochs=epochs, quiet=quiet or json_output)
    else:
        settings = TrainConfig.from_yaml(config).to_dict() if config else {}
        settings.update({"data": data} if data is not None else {})
        settings.update(flags)
        if keras:
            base = settings.get("augment", "none")
            settings["augment"] = {**(base if isinstance(base, dict) else {"preset": base}), **keras}
        checked = TrainConfig.from_dict(settings).validate()
        if checked.data:
            from ..data.sources import source_kind

            source_kind(checked.data)  # the data exists (the message lists the forms it may take)
        from ..training.fit import fit

        result = fit(TrainConfig.from_dict(settings), overwrite=overwrite, quiet=quiet or json_output)
    if json_output:
        print_json({"run_dir": str(result.run_dir), **result.metrics})


_parameters = _train_parameters()
_train.__signature__ = inspect.Signature(_parameters)  # type: ignore[attr-defined]
_train.__annotations__ = {p.name: p.annotation for p in _parameters}
train = user_errors(_train)
train.__name__ = "train"
