"""Keras' ImageDataGenerator arguments as flags, shared by `train` and `augment` (one spelling, one parser)."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import typer
import yaml

from .._io import safe_yaml
from ..errors import SettingError

__all__ = ["KERAS_FLAGS", "keras_flag_parameters", "keras_overrides", "bool_flag_parameters",
           "merge_bool_flags"]

# keys of the `augment` setting, given as flags (text: '0.8,1.2', '1/255')
KERAS_FLAGS = {
    "rotation_range": "Keras: random rotation in [-r, r] degrees.",
    "width_shift_range": "Keras: < 1 fraction of the width, >= 1 pixels.",
    "height_shift_range": "Keras: < 1 fraction of the height, >= 1 pixels.",
    "shear_range": "Keras: shear angle in degrees.",
    "zoom_range": "Keras: z means [1-z, 1+z]; or 'low,high'.",
    "horizontal_flip": "Keras: flip left-right at random.",
    "vertical_flip": "Keras: flip upside down at random.",
    "brightness_range": "Keras: 'low,high' brightness factors.",
    "contrast_range": "'low,high' contrast factors.",
    "noise_std": "Gaussian noise std, in units of the [0, 1] pixel range.",
    "fill_mode": "Keras: nearest, constant, reflect or wrap.",
    "rescale": "Keras: 1/255 accepted (the model's normalisation applies).",
}



def keras_flag_parameters(panel: str = "Augmentation (Keras names)") -> list[inspect.Parameter]:
    """The flags as keyword-only parameters for a generated Typer signature."""
    params = []
    for name, text in KERAS_FLAGS.items():
        if name.endswith("_flip"):
            params += bool_flag_parameters(name, False, text, panel)
            continue
        option = typer.Option("--" + name.replace("_", "-"), help=text, rich_help_panel=panel)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                        annotation=Annotated[str | None, option]))
    return params


def bool_flag_parameters(name: str, default: bool, text: str, panel: str) -> list[inspect.Parameter]:
    """`--name` and `--no-name` as two flags, only the one that changes `default` shown in the help (a single
    column of option names keeps the help readable at 80 columns); `merge_bool_flags` turns them into one value."""
    flag = "--" + name.replace("_", "-")
    on = typer.Option(flag, help=text, hidden=default, rich_help_panel=panel)
    off = typer.Option("--no-" + flag[2:], help=text, hidden=not default, rich_help_panel=panel)
    keyword = inspect.Parameter.KEYWORD_ONLY
    return [inspect.Parameter(name, keyword, default=None, annotation=Annotated[bool | None, on]),
            inspect.Parameter("no_" + name, keyword, default=None, annotation=Annotated[bool | None, off])]


def merge_bool_flags(options: dict[str, Any]) -> dict[str, Any]:
    """{'x': True} from --x, {'x': False} from --no-x (the last one given wins when both are)."""
    out = dict(options)
    for key in [k for k in options if k.startswith("no_") and k[3:] in options]:
        if out.pop(key):
            out[key[3:]] = False
    return out


def keras_overrides(options: dict[str, Any]) -> dict[str, Any]:
    """Pops the given Keras flags out of `options` and returns them parsed ({} when none was given)."""
    for name in [k for k in KERAS_FLAGS if k.endswith("_flip")]:
        if options.pop("no_" + name, None):
            options[name] = False
    return {k: _number_or_pair(options.pop(k)) for k in list(KERAS_FLAGS) if options.get(k) is not None}


def _number_or_pair(value: object) -> object:
    """'40' -> 40, '0.2' -> 0.2, '0.8,1.2' -> [0.8, 1.2], '1/255' -> 1/255; booleans and words pass through."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if "," in text:
        return [float(v) for v in text.split(",")]
    if "/" in text:
        num, den = text.split("/", 1)
        try:
            return float(num) / float(den)
        except (ValueError, ZeroDivisionError):
            raise SettingError(f"{text!r} is not a number or a fraction such as 1/255.") from None
    try:
        parsed = safe_yaml(text)
    except yaml.YAMLError:
        raise SettingError(f"{text[:40]!r} is not a value: write a number, a word, or a list such as "
                           "0.8,1.2.") from None
    return parsed
