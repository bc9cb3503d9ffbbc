"""Benchmark: feature-extraction engines for a frozen base (images/s), each with and without malloc tuning.

Every engine runs in its own process (glibc's allocator settings are process-wide). Run:

    .venv/bin/python benchmarks/feature_engines.py --model efficientnet_lite0 --size 224 --batch 32
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ENGINES = {
    "eager fp32": {"dtype": "float32", "channels_last": False},
    "fp32 channels_last": {"dtype": "float32", "channels_last": True},
    "bf16 autocast + channels_last": {"dtype": "bfloat16", "channels_last": True},
}


def _child(model_name: str, size: int, batch: int, engine: dict, tune: bool, seconds: float) -> dict:
    import torch

    from transferlab._runtime import tune_malloc
    from transferlab.models import build_classifier

    tuned = tune_malloc() if tune else False
    model = build_classifier(model_name, num_classes=2).features.eval()
    x = torch.randn(batch, 3, size, size)
    if engine["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    dtype = getattr(torch, engine["dtype"])
    n, start = 0, None
    with torch.inference_mode():
        for i in range(1000):
            if i == 2:
                start, n = time.perf_counter(), 0
            with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
                model(x)
            n += batch
            if start and time.perf_counter() - start > seconds:
                break
    return {"images_per_s": round(n / (time.perf_counter() - start), 1), "malloc_tuned": tuned}


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
    print(f"{'engine':32} {'malloc tuned':>12} {'img/s':>8} {'vs eager fp32':>14}")
    for r in rows:
        r["ratio_vs_eager_fp32"] = round(r["images_per_s"] / base, 2)
        print(f"{r['engine']:32} {str(r['malloc_tuning']):>12} {r['images_per_s']:>8.1f} "
              f"{r['ratio_vs_eager_fp32']:>14.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "feature_engines", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "model": args.model, "image_size": args.size, "batch": args.batch, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
