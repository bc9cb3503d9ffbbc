"""Benchmark: inference engines side by side — what `predict`/`classify` should use by default.

EfficientNet-Lite0 (bundled weights) and ResNet50 (random weights: speed only) at 224, batch 1 and batch 32,
on 2 CPU threads: PyTorch eager fp32 as a user runs it, eager fp32 with transferlab's malloc settings,
channels_last, bf16 autocast + channels_last (transferlab's 'auto' engine where bf16 is native), and ONNX
Runtime fp32. Each engine runs in its own process (the malloc settings are process-wide). Prints a table,
writes JSON. Run:

    .venv/bin/python benchmarks/inference_engines.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

from _machine import machine

ENGINES = ["eager fp32 (plain PyTorch)", "eager fp32 + malloc", "channels_last fp32 + malloc",
           "bf16 autocast + channels_last + malloc (transferlab auto)", "ONNX Runtime fp32"]
MODELS = ["efficientnet_lite0", "resnet50"]


def one(model_name: str, engine: str, threads: int, batches: list[int], repeats: int) -> dict:
    import torch

    from transferlab._runtime import tune_malloc
    from transferlab.models import create_model

    if "malloc" in engine or "ONNX" in engine:
        tune_malloc()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = create_model(model_name, weights="imagenet" if model_name == "efficientnet_lite0" else "none").eval()
    reference_input = torch.randn(8, 3, 224, 224)
    with torch.inference_mode():
        reference = model(reference_input)
    cl = "channels_last" in engine
    bf16 = "bf16" in engine
    if "ONNX" in engine:
        import onnxruntime as ort

        path = Path(tempfile.mkdtemp()) / "m.onnx"
        batch = torch.export.Dim("batch", min=1, max=256)
        torch.onnx.export(model, (reference_input,), str(path), input_names=["x"], output_names=["y"],
                          dynamic_shapes={"x": {0: batch}}, dynamo=True)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        def run(x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(session.run(None, {"x": x.numpy()})[0])
    else:
        if cl:
            model = model.to(memory_format=torch.channels_last)
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()

        def run(x: torch.Tensor) -> torch.Tensor:
            if cl:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode(), autocast:
                return model(x).float()
    out = run(reference_input)
    row = {"model": model_name, "engine": engine, "max_abs_logit_diff": round(float((out - reference).abs().max()), 4),
           "top1_agreement": float((out.argmax(-1) == reference.argmax(-1)).float().mean())}
    for b in batches:
        x = torch.randn(b, 3, 224, 224)
        for _ in range(3):
            run(x)
        times = []
        for _ in range(repeats if b == 1 else max(3, repeats // 5)):
            start = time.perf_counter()
            run(x)
            times.append(time.perf_counter() - start)
        row[f"b{b}_images_per_s"] = round(b / statistics.median(times), 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/inference_engines.json"))
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "ENGINE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1], args.threads, [1, 32], args.repeats)))
        return
    rows = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    for model in MODELS:
        for engine in ENGINES:
            proc = subprocess.run([sys.executable, __file__, "--one", model, engine, "--threads", str(args.threads),
                                   "--repeats", str(args.repeats)], capture_output=True, text=True, env=env)
            lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
            if not lines:
                print(f"{model} / {engine} failed: {proc.stderr.strip()[-500:]}", file=sys.stderr)
                continue
            rows.append(json.loads(lines[-1]))
    print(f"{'model':20} {'engine':58} {'b1 img/s':>9} {'b32 img/s':>10} {'vs eager':>9} {'max|dlogit|':>11} "
          f"{'top1 agree':>10}")
    for r in rows:
        base = next(x for x in rows if x["model"] == r["model"] and x["engine"] == ENGINES[0])
        r["b32_vs_plain_eager"] = round(r["b32_images_per_s"] / base["b32_images_per_s"], 2)
        print(f"{r['model']:20} {r['engine']:58} {r['b1_images_per_s']:>9.1f} {r['b32_images_per_s']:>10.1f} "
              f"{r['b32_vs_plain_eager']:>9.2f} {r['max_abs_logit_diff']:>11.4f} {r['top1_agreement']:>10.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "inference_engines", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(threads=args.threads),
        "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
