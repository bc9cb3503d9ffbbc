"""`transferlab advise`: which strategy and learning rate, measured on the data in seconds."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ._common import print_json, user_errors


@user_errors
def advise(
    data: Annotated[str, typer.Argument(help="Data folder (as for `train`).")],
    model: Annotated[str, typer.Option(help="Model to advise for.")] = "efficientnet_lite0",
    weights: Annotated[str | None, typer.Option(help="imagenet (default), none, or a weights file.")] = None,
    max_images: Annotated[int, typer.Option(help="Most training images measured.", min=10,
                                              max=1_000_000)] = 2000,
    no_lr_test: Annotated[bool, typer.Option("--no-lr-test", help="Skip the learning-rate range test.")] = False,
    budget: Annotated[str | None, typer.Option(help="Training time you have, e.g. 90s, 10m, 1h (the training "
                                                    "loops, as train --max-minutes): every strategy is probed on a "
                                                    "few hundred of the images and the best predicted within it is "
                                                    "advised; the table shows each one's predicted wall time "
                                                    "(validated in docs/results.md).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the advice as JSON.")] = False,
) -> None:
    """Measure the data against the model (class sizes, similarity to ImageNet, separability of frozen
    features, image sizes, a learning-rate range test) and recommend how to train, with the exact command.

    Example: transferlab advise my_photos   (then: transferlab train my_photos --strategy auto --lr auto)
    """
    progress = Console(stderr=True, soft_wrap=True)

    def say(line: str) -> None:  # one line per step, flushed: a pipe or log file sees it as it happens
        if not json_output:
            progress.print(line, markup=False, highlight=False)
            progress.file.flush()

    if budget is not None:
        from ..workflows.budget import advise_within, parse_budget

        parse_budget(budget)  # a malformed budget is answered before anything loads
        advice = advise_within(data, budget, model, weights, max_images=max_images, quiet=json_output, say=say)
    else:
        from ..training.advise import advise as run_advice

        say(f"Measuring up to {max_images} images of {data} with {model} (one pass of the frozen model), then a "
            "learning-rate test..." if not no_lr_test else f"Measuring up to {max_images} images of {data}...")
        advice = run_advice(data, model, weights, max_images=max_images, quiet=json_output, lr_test=not no_lr_test)
    if json_output:
        print_json(advice.to_dict())
        return
    console = Console()
    table = Table(title=f"Advice for {data} with {advice.model} ({advice.seconds} s)")
    table.add_column("setting")
    table.add_column("recommended")
    for key in ("strategy", "lr", "epochs", "augment", "image_size"):
        table.add_row(key, str(getattr(advice, key)))
    console.print(table)
    caveat = None
    if advice.forecasts:
        from ..workflows.budget import CAVEAT as caveat

        console.print(_forecast_table(advice))
        console.print("[yellow]Note:[/] the budgeted predictions were " + caveat + ".")
    console.print("[bold]Why:[/]")
    for reason in advice.reasons:
        if reason != caveat:  # said above, in yellow
            console.print(f"  - {reason}")
    m = advice.measurements
    shown = {k: m[k] for k in ("images_per_class_median", "linear_probe_accuracy", "knn_accuracy",
                               "imagenet_confidence", "median_short_side", "lr_range_test") if k in m}
    console.print("Measured: " + ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                           for k, v in shown.items()), highlight=False)
    console.print("[bold]Command:[/]")
    console.print(_command_lines(advice.command, console.width), markup=False, highlight=False, soft_wrap=True)


def _command_lines(command: str, width: int) -> str:
    """The command as lines a shell reads as one (`\\` continuations), none wider than the terminal: copied from
    an 80-column terminal it still runs whole."""
    lines, current = [], "  "
    for word in command.split(" "):
        if len(current) + len(word) + 3 > width and current.strip():
            lines.append(current.rstrip() + " \\")
            current = "    "
        current += word + " "
    return "\n".join([*lines, current.rstrip()])


def _forecast_table(advice) -> Table:  # noqa: ANN001 - training.advise.Advice, imported lazily
    from ..workflows.budget import budget_words

    budget = budget_words(advice.budget_seconds or 0)
    table = Table(title=f"With --max-minutes {(advice.budget_seconds or 0) / 60:g}: what {budget} of training "
                        "should give on this machine")
    for name, justify in (("strategy", "left"), ("epochs", "right"), ("whole run (min)", "right"),
                          ("val accuracy", "right"), ("trial run", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    fitting = [row for row in advice.forecasts if row["fits"]]
    for row in fitting:
        epochs = str(row["epochs"]) + (f"+{row['finetune_epochs']}" if row.get("finetune_epochs") else "")
        probe = row.get("probe", {})
        seen = ", ".join(f"{max(a for a in accs if a is not None):.3f}" for accs in probe.get("probe_val_accuracy", [])
                         if any(a is not None for a in accs))
        mark = "[bold]" if row["strategy"] == advice.strategy else ""
        table.add_row(f"{mark}{row['strategy']}", epochs, f"{row['seconds'] / 60:.1f}", f"{row['accuracy']:.3f}",
                      f"{seen} in {probe.get('probe_seconds', 0):.0f} s")
    others = [row for row in advice.forecasts if not row["fits"]]
    if others:
        table.add_section()
        for row in others:
            table.add_row(row["strategy"], "-", "-", "-", row["why"])
    table.caption = ("Training is stopped at the budget; the whole run adds caching the images and the final report."
                     + (" Below the line: strategies without a prediction." if others else ""))
    return table
