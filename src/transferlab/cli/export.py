"""`transferlab export`: a trained model as ONNX, TorchScript or a timm Hugging Face folder, parity-checked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ._common import err_console, print_json, user_errors


@user_errors
def export(
    run: Annotated[Path, typer.Argument(help="Run folder (or bundle folder).")],
    format: Annotated[str, typer.Option("--format", help=(  # noqa: A002
        "'onnx', 'torchscript' or 'hf' (a Hugging Face folder: config.json, model.safetensors, model card; timm's "
        "layout, or transformers' for hf: models)."))
    ] = "onnx",
    int8: Annotated[bool, typer.Option("--int8", help="ONNX only: dynamic int8 quantisation.")] = False,
    out: Annotated[Path | None, typer.Option(help="Export folder (default: RUN/export-FORMAT).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the export report as JSON.")] = False,
) -> None:
    """Write the model with its labels and preprocessing, then check parity with PyTorch (max |Δlogit|,
    top-1 agreement -> export_report.json). A failed parity check is an error (exit code 1).

    Example: transferlab export runs/cd --format onnx && transferlab predict runs/cd/export-onnx cat.jpg
    """
    from ..deploy.export import ParityError, export_model

    try:
        report = export_model(run, format, out, int8)
    except ParityError as e:
        err_console.print(f"[bold red]Parity check failed:[/] {e}")
        raise typer.Exit(code=1) from None
    if json_output:
        print_json(report)
        return
    p = report["parity"]
    agreement = f", top-1 agreement {p['top1_agreement']:.0%}" if "top1_agreement" in p else ""
    Console().print(f"Exported {report['file']} ({report['size_mb']} MB, {report['export_seconds']} s) to "
                    f"{report['folder']}: max |Δlogit| {p['max_abs_logit_diff']:.2e}{agreement} on {p['inputs']}.")
    if format == "hf":
        load = (f"AutoModelForImageClassification.from_pretrained('{report['folder']}')"
                if report.get("library") == "transformers" else
                f"timm.create_model('local-dir:{report['folder']}', pretrained=True)")
        Console().print(f"Load it with {load}; publish it with `hf upload ORG/NAME {report['folder']}`.",
                        highlight=False)
