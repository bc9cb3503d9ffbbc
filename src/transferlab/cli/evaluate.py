"""`transferlab evaluate`: metrics, pictures and report.html for a trained run on labelled images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ._common import err_console, print_json, user_errors


@user_errors
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run folder (or bundle folder / model.safetensors).")],
    data: Annotated[Path, typer.Argument(help="Labelled images: DATA/test, a data folder with test/ or "
                                              "validation/, the run's own data (its validation split), or a CSV.")],
    out: Annotated[Path | None, typer.Option(help="Folder for the files (default: the run folder).")] = None,
    tta: Annotated[str, typer.Option(help="Test-time augmentation, reported separately: 'none', 'flip' (the "
                                          "mirror image too) or 'ten-crop' (centre and corner crops, each "
                                          "mirrored: 10 passes).")] = "none",
    top_k: Annotated[int, typer.Option(help="k of the top-k accuracy.", min=1, max=1000)] = 5,
    batch_size: Annotated[int, typer.Option(help="Images per batch.", min=1, max=4096)] = 64,
    num_workers: Annotated[int | None, typer.Option(
        help="Loading processes (default: from the CPU count; 0: none). On a CPU they run the model too.",
        min=0, max=256)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or table.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Accuracy, top-k, per-class precision/recall/F1, confusion matrix, ROC/AUC (2 classes), calibration.

    Writes eval_metrics.json, confusion_matrix.png, misclassified.png, per_class.png (and roc.png) and
    report.html into the run folder, or --out.

    Example: transferlab evaluate runs/cd cats_and_dogs_filtered/test --tta flip
    """
    from ..evaluation.metrics import evaluate as run_evaluation
    from ..evaluation.metrics import write_evaluation
    from ..evaluation.report import write_report

    result = run_evaluation(run, data, tta=tta, batch_size=batch_size, num_workers=num_workers,
                            quiet=quiet or json_output, top_k=top_k)
    run_dir = run if run.is_dir() else run.parent
    target = out or run_dir
    files = write_evaluation(result, target)
    report = write_report(run_dir, out=target / "report.html", eval_dir=target)
    if json_output:
        tta_json = {"kind": result.tta, **result.tta_metrics} if result.tta_metrics else None
        print_json({**result.metrics, "tta": tta_json, "skipped": result.skipped,
                    "files": {k: str(v) for k, v in {**files, "report": report}.items()}})
        return
    if quiet:
        return
    m = result.metrics
    console = Console()
    k = next((key for key in m if key.startswith("top") and key.endswith("_accuracy")), None)  # none for 2 classes
    line = f"Accuracy {m['accuracy']:.4f}" + (f", {k.replace('_', ' ')} {m[k]:.4f}" if k else "") \
        + f", loss {m['loss']:.4f}"
    if "roc_auc" in m:
        line += f", ROC AUC {m['roc_auc']:.4f}"
    console.print(f"{result.source}: {m['images']} images. " + line
                  + f", calibration error {m['expected_calibration_error']:.4f}")
    if result.tta_metrics:
        console.print(f"With TTA ({result.tta}): accuracy {result.tta_metrics['accuracy']:.4f}, "
                      f"loss {result.tta_metrics['loss']:.4f}")
    table = Table(title="Per class")
    for col in ("class", "precision", "recall", "F1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for name, c in m["per_class"].items():
        table.add_row(name, f"{c['precision']:.3f}", f"{c['recall']:.3f}", f"{c['f1']:.3f}", str(c["support"]))
    for avg in ("macro_avg", "weighted_avg"):
        a = m[avg]
        table.add_row(avg.replace("_", " "), f"{a['precision']:.3f}", f"{a['recall']:.3f}", f"{a['f1']:.3f}",
                      str(m["images"]))
    console.print(table)
    if result.skipped:
        err_console.print(f"[yellow]{len(result.skipped)} image(s) could not be read and were left out.")
    console.print(f"Written: {', '.join(str(p) for p in files.values())}, {report}")
