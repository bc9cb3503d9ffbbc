"""Keras' ImageDataGenerator arguments as flags, shared by `train` and `augment` (one spelling, one parser)."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import typer
import yaml

__all__ = ["KERAS_FLAGS", "keras_flag_parameters", "keras_overrides", "describe_augment"]

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
        flag = "--" + name.replace("_", "-")
        boolean = name.endswith("_flip")
        option = typer.Option(f"{flag}/--no-{flag[2:]}" if boolean else flag, help=text, rich_help_panel=panel)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                        annotation=Annotated[(bool if boolean else str) | None, option]))
    return params


def keras_overrides(options: dict[str, Any]) -> dict[str, Any]:
    """Pops the given Keras flags out of `options` and returns them parsed ({} when none was given)."""
    return {k: _number_or_pair(options.pop(k)) for k in list(KERAS_FLAGS) if options.get(k) is not None}


def describe_augment(settings: Any) -> str:
    """The augmentation in Keras' words, only what differs from none: 'rotation_range=40, horizontal_flip=True'."""
    from ..data.augment import AugmentConfig, resolve_augment

    chosen, plain = resolve_augment(settings).to_dict(), AugmentConfig().to_dict()
    changed = [f"{k}={v}" for k, v in chosen.items() if v != plain[k]]
    return ", ".join(changed) or "no augmentation"


def _number_or_pair(value: object) -> object:
    """'40' -> 40, '0.2' -> 0.2, '0.8,1.2' -> [0.8, 1.2], '1/255' -> 1/255; booleans and words pass through."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if "," in text:
        return [float(v) for v in text.split(",")]
    if "/" in text:
        num, den = text.split("/", 1)
        return float(num) / float(den)
    parsed = yaml.safe_load(text)
    return parsed
