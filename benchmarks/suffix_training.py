"""Benchmark: training speed of the trainable suffix on cached boundary activations: fp32 vs bf16 autocast,
eager vs torch.compile.

Batch 64, Adam, channels-last input; the suffix starts at the boundary stage of `unfreeze-last=N`. With
--compile each precision is also timed through `torch.compile` (the `--compile` of `train`; its compilation,
the first steps, is not counted). Run:

    .venv/bin/python benchmarks/suffix_training.py
    .venv/bin/python benchmarks/suffix_training.py --model efficientnet_lite2 --image-size 160 --strategies \
        unfreeze-last=2 --compile --json benchmarks/results/suffix_training_lite2_160.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import torch
from _machine import machine

from transferlab._runtime import tune_malloc
from transferlab.models import build_classifier
from transferlab.training.boundary import BoundaryNet, Prefix, boundary_stage
from transferlab.training.strategies import apply_strategy


def rate(net: torch.nn.Module, z: torch.Tensor, y: torch.Tensor, bf16: bool, warmup: int, steps: int = 3) -> float:
    """Training images per second of `net` on batch (z, y), after `warmup` untimed steps."""
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], 1e-3)
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = net(z)
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps * len(y) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--strategies", nargs="+", default=["unfreeze-last=2", "unfreeze-last=3"])
    parser.add_argument("--compile", action="store_true", help="Also time torch.compile of the suffix.")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/suffix_training.json"))
    args = parser.parse_args()
    tune_malloc()
    model = build_classifier(args.model, 10)
    rows = []
    for strategy in args.strategies:
        apply_strategy(model, strategy)
        k = boundary_stage(model.features)
        with torch.no_grad():
            z = Prefix(model.features, k).eval()(torch.randn(64, 3, args.image_size, args.image_size))
        z = z.contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (64,))
        for compiled in (False, True) if args.compile else (False,):
            for bf16 in (False, True):
                net = BoundaryNet(model.features, model.head, k).train()
                runner = torch.compile(net) if compiled else net
                rows.append({"model": args.model, "image_size": args.image_size, "strategy": strategy,
                             "boundary_stage": k, "activation_shape": list(z.shape[1:]),
                             "precision": "bf16 autocast" if bf16 else "fp32",
                             "mode": "torch.compile" if compiled else "eager",
                             "images_per_s": round(rate(runner, z, y, bf16, warmup=3 if compiled else 1), 1)})
                print(rows[-1], flush=True)
    print(f"\n{'strategy':16} {'stage':>5} {'precision':>14} {'mode':>14} {'img/s':>7}")
    for r in rows:
        print(f"{r['strategy']:16} {r['boundary_stage']:>5} {r['precision']:>14} {r['mode']:>14} "
              f"{r['images_per_s']:>7.1f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"benchmark": "suffix_training", "date": datetime.now(UTC).isoformat(
        timespec="seconds"), "machine": machine(),
        "command": "benchmarks/suffix_training.py " + " ".join(sys.argv[1:]), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
