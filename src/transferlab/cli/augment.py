"""`transferlab augment`: look at augmented images before training on them."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ..errors import MissingFileError, SettingError
from ._augment_flags import keras_flag_parameters, keras_overrides
from ._common import user_errors


def _augment(
    source: Annotated[Path, typer.Argument(help="An image, or a data folder (with --samples).")],
    preset: Annotated[str, typer.Option(help="none, course, flip, light or strong.")] = "course",
    config: Annotated[Path | None, typer.Option(help="YAML with an 'augment' block of Keras parameters.")] = None,
    samples: Annotated[bool, typer.Option("--samples", help="A grid of training images with their labels "
                                                            "(the course's training-data preview).")] = False,
    model: Annotated[str, typer.Option(help="Model whose preprocessing to use.")] = "efficientnet_lite0",
    image_size: Annotated[int | None, typer.Option(help="Input size (default: the model's own).", min=8,
                                                  max=4096)] = None,
    count: Annotated[int, typer.Option(help="Images in the grid.", min=1, max=100)] = 9,
    seed: Annotated[int, typer.Option(help="Random seed.", min=0, max=2**32 - 1)] = 0,
    out: Annotated[Path, typer.Option(help="PNG file to write.")] = Path("augment.png"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Write the picture, print nothing.")] = False,
    **keras: Any,
) -> None:
    """Draw a 3x3 grid of augmented versions of one image (or, with --samples, of training images).

    The Keras flags of `train` (--rotation-range 40 --zoom-range 0.2 --horizontal-flip ...) adjust the preset, as
    they do for training; the picture's title says what was used.

    Example: transferlab augment cat.jpg --preset course --rotation-range 10 --out aug.png
    """
    import yaml

    from .._io import safe_yaml
    from ..data.augment import describe_augment
    from ..evaluation.grids import augment_preview

    settings: object = preset
    if config:
        try:
            data = safe_yaml(config.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            mark = getattr(e, "problem_mark", None)
            where = f", line {mark.line + 1}" if mark else ""
            raise SettingError(f"Config file '{config}'{where} is not a YAML settings file "
                               f"({str(getattr(e, 'problem', None) or e)[:120]}). Write `augment: course` or a "
                               "mapping of Keras arguments, e.g. `augment: {rotation_range: 40}`.") from None
        block = data.get("augment", {}) if isinstance(data, dict) else {}
        settings = block if isinstance(block, (str, dict)) else preset
    flags = keras_overrides(keras)
    if flags:
        settings = {**(settings if isinstance(settings, dict) else {"preset": settings}), **flags}
    if samples and not source.is_dir():
        raise MissingFileError(f"--samples draws training images of a data folder; '{source}' is not a folder.")
    if not samples and not source.is_file():
        raise MissingFileError(f"Image '{source}' does not exist (use --samples for a data folder).")
    augment_preview(source, settings, model, image_size, count, seed, path=out)
    Console(quiet=quiet).print(f"Wrote {out} ({describe_augment(settings)})", highlight=False)


_parameters = [p for p in inspect.signature(_augment, eval_str=True).parameters.values()  # the help texts kept
               if p.kind is not p.VAR_KEYWORD]
_parameters += keras_flag_parameters()
_augment.__signature__ = inspect.Signature(_parameters)  # type: ignore[attr-defined]
_augment.__annotations__ = {p.name: p.annotation for p in _parameters}
augment = user_errors(_augment)
augment.__name__ = "augment"
