"""`transferlab benchmark`: the course's size/accuracy/speed table, measured on this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ..errors import SettingError
from ._common import print_json, user_errors

DEFAULT_MODELS = "efficientnet_lite0,mobilenet_v2,mobilenet_v3_large,efficientnet_b0,resnet50,densenet121"


@user_errors
def benchmark(
    models: Annotated[str, typer.Option(help="Comma-separated catalog names, Keras spellings or timm names.")] =
    DEFAULT_MODELS,
    device: Annotated[str, typer.Option(help="'cpu', 'cuda' or 'auto' (the GPU when there is one).")] = "auto",
    batch_size: Annotated[int, typer.Option(help="Batch for the throughput column.", min=1, max=1024)] = 32,
    repeats: Annotated[int, typer.Option(help="Timed batch-1 runs per model (after warm-up).", min=1,
                                           max=10_000)] = 20,
    threads: Annotated[int | None, typer.Option(help="CPU threads (default: PyTorch's).", min=1, max=1024)] = None,
    engine: Annotated[str, typer.Option(help="'fp32' (eager float32) or 'auto' (fastest correct path).")] = "fp32",
    out: Annotated[Path, typer.Option(help="Folder for benchmark.csv/.md/.json/.png.")] = Path("benchmark"),
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Measure parameters, GFLOPs, batch-1 latency (median, p90), batch throughput and peak memory per model.

    Random weights (speed does not depend on them), so every catalog model can be measured offline.

    Example: transferlab benchmark --models efficientnet_lite0,resnet50,mobilenetv3_large_100
    """
    import torch

    from ..errors import check_choice
    from ..models import get_model_info
    from ..workflows.benchmark import BenchmarkConfig, benchmark_models, write_outputs

    check_choice("engine", engine, ("fp32", "auto"), where="benchmark")
    check_choice("device", device, ("cpu", "cuda", "auto"), where="benchmark")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise SettingError("--device cuda was asked for, but PyTorch sees no GPU here. Use --device cpu.")
    names = [m.strip() for m in models.split(",") if m.strip()]
    if not names:
        raise SettingError("--models is empty; give comma-separated model names, e.g. efficientnet_lite0,resnet50.")
    for name in names:
        get_model_info(name)  # unknown names fail here, with suggestions, before any measuring
    console = Console(stderr=True)
    config = BenchmarkConfig(device=device, batch_size=batch_size, repeats=repeats, threads=threads, engine=engine)
    with console.status("Measuring...") as status:
        rows = benchmark_models(names, config, progress=lambda n: status.update(f"Measuring {n} on {device}..."))
    files = write_outputs(rows, out)
    if json_output:
        print_json(rows)
        return
    table = Table(title=f"Models on this machine ({device}, engine {engine}, {rows[0].get('threads', '?')} threads)")
    cols = ["model", "parameters", "gflops", "image_size", "latency_ms_median", "latency_ms_p90",
            f"throughput_b{batch_size}", "peak_memory_mb"]
    for c in cols:
        table.add_column(c.replace("_", " "), justify="left" if c == "model" else "right")
    for r in rows:
        if "error" in r:
            table.add_row(r["model"], f"[red]{r['error']}", *([""] * (len(cols) - 2)))
        else:
            table.add_row(*(f"{r[c]:,}" if c == "parameters" else str(r[c]) for c in cols))
    Console().print(table)
    Console().print(f"Written: {', '.join(str(p) for p in files.values())}")
