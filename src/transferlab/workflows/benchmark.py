"""Measures models on this machine: the course's size/accuracy/speed comparison, done for real.

Parameters, GFLOPs (PyTorch's FLOP counter, one image), batch-1 latency (median and p90 over repeated runs
after warm-up), batch-32 throughput and peak memory, on the CPU and on the GPU when there is one. Random
weights are fine for speed, so every catalog model can be measured offline. Each model runs in its own
process, so peak memory is that model's own.

Example:
    >>> rows = benchmark_models(["efficientnet_lite0", "resnet50"])  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = ["BenchmarkConfig", "measure_model", "benchmark_models", "write_outputs"]


@dataclass(frozen=True)
class BenchmarkConfig:
    """What to measure.

    Attributes:
        device: 'cpu' or 'cuda'.
        batch_size: Batch for the throughput figure.
        repeats: Timed batch-1 runs (after `warmup` untimed ones).
        warmup: Untimed runs first.
        threads: CPU threads (None: PyTorch's default).
        engine: 'fp32' (eager float32) or 'auto' (the fastest correct path: bf16 + channels_last where native).
        image_size: Input size; None uses each model's default.
    """

    device: str = "cpu"
    batch_size: int = 32
    repeats: int = 20
    warmup: int = 3
    threads: int | None = None
    engine: str = "fp32"
    image_size: int | None = None


def _timed(fn: Callable[[], Any], device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure_model(name: str, config: BenchmarkConfig = BenchmarkConfig()) -> dict[str, Any]:
    """Measures one model in this process; see the module docstring."""
    from torch.utils.flop_counter import FlopCounterMode

    from ..inference.engine import best_engine
    from ..models import create_model

    if config.threads:
        torch.set_num_threads(config.threads)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model = create_model(name, weights="none", image_size=config.image_size).eval()
    size = config.image_size or int(model.pretrained_cfg["input_size"][-1])
    params = sum(p.numel() for p in model.parameters())
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, size, size))
    gflops = counter.get_total_flops() / 2 / 1e9  # multiply-accumulates, the usual "FLOPs" of model tables
    engine = best_engine(config.device) if config.engine == "auto" else {"dtype": "float32", "channels_last": False}
    model = model.to(config.device)
    if engine.get("channels_last"):
        model = model.to(memory_format=torch.channels_last)
    dtype = getattr(torch, engine.get("dtype", "float32"))
    autocast = torch.autocast(torch.device(config.device).type, dtype=dtype) if dtype != torch.float32 \
        else nullcontext()
    if config.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    def run(batch: int) -> Callable[[], Any]:
        x = torch.randn(batch, 3, size, size, device=config.device)
        if engine.get("channels_last"):
            x = x.contiguous(memory_format=torch.channels_last)

        def call() -> Any:
            with torch.inference_mode(), autocast:
                return model(x)
        return call

    one = run(1)
    for _ in range(config.warmup):
        one()
    latencies = sorted(_timed(one, config.device) * 1000 for _ in range(config.repeats))
    many = run(config.batch_size)
    many()
    runs = max(2, min(5, config.repeats // 4))
    batch_seconds = statistics.median(_timed(many, config.device) for _ in range(runs))
    peak = (torch.cuda.max_memory_allocated() / 2**20 if config.device.startswith("cuda")
            else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024)
    return {
        "model": name, "device": config.device, "engine": config.engine, "image_size": size, "parameters": params,
        "gflops": round(gflops, 3), "latency_ms_median": round(statistics.median(latencies), 2),
        "latency_ms_p90": round(latencies[min(len(latencies) - 1, int(0.9 * len(latencies)))], 2),
        f"throughput_b{config.batch_size}": round(config.batch_size / batch_seconds, 1),
        "peak_memory_mb": round(peak, 1), "threads": torch.get_num_threads(),
    }


def benchmark_models(names: Sequence[str], config: BenchmarkConfig = BenchmarkConfig(),
                     progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Measures each model in a fresh Python process (clean peak memory); failures become rows with 'error'."""
    rows = []
    for name in names:
        if progress:
            progress(name)
        cmd = [sys.executable, "-m", "transferlab.workflows.benchmark", name, json.dumps(asdict(config))]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            error = (proc.stderr.strip().splitlines() or ["failed"])[-1]
            rows.append({"model": name, "device": config.device, "error": error[:300]})
        else:
            rows.append(json.loads(lines[-1]))
    return rows


def _with_accuracy(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from ..models.catalog import CATALOG, resolve_name

    entries = {e.name: e for e in CATALOG}
    out = []
    for row in rows:
        entry = entries.get(resolve_name(row["model"]))
        top1 = entry.keras_top1 if entry else None
        if entry and entry.architecture.startswith("tv:"):
            from ..models.table import _torchvision_metrics

            top1 = _torchvision_metrics(entry.architecture[3:])[0]
        out.append({**row, "top1": top1})
    return out


def write_outputs(rows: list[dict[str, Any]], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Writes benchmark.csv, benchmark.md, benchmark.json and benchmark.png (top-1 vs latency) into `out_dir`."""
    import csv
    import io

    from .._io import write_json, write_text
    from ..evaluation.displays import plot_accuracy_vs_speed

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = _with_accuracy(rows)
    fields = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    write_text(out / "benchmark.csv", buf.getvalue())
    lines = ["| " + " | ".join(fields) + " |", "|" + "---|" * len(fields)]
    lines += ["| " + " | ".join("" if r.get(f) is None else str(r.get(f)) for f in fields) + " |" for r in rows]
    write_text(out / "benchmark.md", "\n".join(lines) + "\n")
    write_json(out / "benchmark.json", rows)
    plot_accuracy_vs_speed(rows, out / "benchmark.png")
    return {k: out / f"benchmark.{k}" for k in ("csv", "md", "json", "png")}


if __name__ == "__main__":  # one model per process: python -m transferlab.workflows.benchmark NAME CONFIG_JSON
    from .._runtime import tune_malloc

    tune_malloc()
    result = measure_model(sys.argv[1], BenchmarkConfig(**json.loads(sys.argv[2])))
    print(json.dumps(result))
