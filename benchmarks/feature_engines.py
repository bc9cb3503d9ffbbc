"""Benchmark: feature-extraction engines for a frozen base (images/s), each with and without malloc tuning.

Every engine runs in its own process (glibc's allocator settings are process-wide). The engines: PyTorch eager
fp32, channels_last, bf16 autocast + channels_last, the same with each BatchNorm folded into its convolution
(what transferlab extracts with where bf16 is native), and ONNX Runtime fp32 on the same base exported to ONNX
(its export and session set-up are timed apart). Each engine's features on the first batch are compared with
eager fp32's (cosine similarity). Run:

    .venv/bin/python benchmarks/feature_engines.py --model efficientnet_lite0 --size 224 --batch 32
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from _machine import machine

ENGINES = {
    "eager fp32": {"dtype": "float32", "channels_last": False},
    "fp32 channels_last": {"dtype": "float32", "channels_last": True},
    "bf16 autocast + channels_last": {"dtype": "bfloat16", "channels_last": True},
    "bf16 + channels_last + BN folded": {"dtype": "bfloat16", "channels_last": True, "fold": True},
    "ONNX Runtime fp32": {"dtype": "float32", "channels_last": False, "onnx": True},
}


def _child(model_name: str, size: int, batch: int, engine: dict, tune: bool, seconds: float) -> dict:
    import torch

    from transferlab._runtime import tune_malloc
    from transferlab.models import build_classifier

    tuned = tune_malloc() if tune else False
    torch.manual_seed(0)
    model = build_classifier(model_name, num_classes=2).features.eval()
    x = torch.randn(batch, 3, size, size)
    with torch.inference_mode():
        reference = model(x).flatten(1).float()
    extra: dict = {}
    if engine.get("onnx"):
        import tempfile

        import onnxruntime as ort

        path = Path(tempfile.mkdtemp()) / "base.onnx"
        t0 = time.perf_counter()
        torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}}, dynamo=False)
        t1 = time.perf_counter()
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        extra = {"export_s": round(t1 - t0, 2), "session_s": round(time.perf_counter() - t1, 2)}

        def run(batch_x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(session.run(None, {"x": batch_x.numpy()})[0])
    else:
        if engine.get("fold"):
            from transferlab.inference.engine import fold_batch_norm

            model = fold_batch_norm(model, x[:8])
        if engine["channels_last"]:
            model = model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        dtype = getattr(torch, engine["dtype"])

        def run(batch_x: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
                return model(batch_x)
    cosine = torch.nn.functional.cosine_similarity(run(x).flatten(1).float(), reference).min().item()
    n, start = 0, None
    for i in range(1000):
        if i == 2:
            start, n = time.perf_counter(), 0
        run(x)
        n += batch
        if start and time.perf_counter() - start > seconds:
            break
    return {"images_per_s": round(n / (time.perf_counter() - start), 1), "malloc_tuned": tuned,
            "min_cosine_vs_eager_fp32": round(cosine, 4), **extra}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/feature_engines.json"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(_child(args.model, args.size, args.batch, spec["engine"], spec["tune"], args.seconds)))
        return
    rows = []
    for name, engine in ENGINES.items():
        for tune in (False, True):
            env = {**os.environ}
            env.pop("TRANSFERLAB_NO_MALLOC_TUNING", None)
            out = subprocess.run([sys.executable, __file__, "--model", args.model, "--size", str(args.size),
                                  "--batch", str(args.batch), "--seconds", str(args.seconds), "--child",
                                  json.dumps({"engine": engine, "tune": tune})],
                                 capture_output=True, text=True, env=env, check=True)
            rows.append({"engine": name, "malloc_tuning": tune, **json.loads(out.stdout.strip().splitlines()[-1])})
    base = rows[0]["images_per_s"]
    print(f"{args.model} at {args.size}px, batch {args.batch}, {os.cpu_count()} CPUs")
    print(f"{'engine':32} {'malloc tuned':>12} {'img/s':>8} {'vs eager fp32':>14} {'min cosine':>11}")
    for r in rows:
        r["ratio_vs_eager_fp32"] = round(r["images_per_s"] / base, 2)
        print(f"{r['engine']:32} {str(r['malloc_tuning']):>12} {r['images_per_s']:>8.1f} "
              f"{r['ratio_vs_eager_fp32']:>14.2f} {r['min_cosine_vs_eager_fp32']:>11.4f}")
    onnx = [r for r in rows if "export_s" in r]
    if onnx:
        print(f"ONNX export {onnx[-1]['export_s']} s, session set-up {onnx[-1]['session_s']} s (not in img/s)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "feature_engines", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "model": args.model, "image_size": args.size, "batch": args.batch, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
