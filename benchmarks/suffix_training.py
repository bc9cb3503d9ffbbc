"""Benchmark: training speed of the trainable suffix on cached boundary activations, fp32 vs bf16 autocast.

Lite0 at 224, batch 64, Adam; the suffix starts at the boundary stage of `unfreeze-last=N`. Run:

    .venv/bin/python benchmarks/suffix_training.py
"""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

from transferlab._runtime import tune_malloc
from transferlab.models import build_classifier
from transferlab.training.boundary import BoundaryNet, Prefix, boundary_stage
from transferlab.training.strategies import apply_strategy


def main() -> None:
    tune_malloc()
    model = build_classifier("efficientnet_lite0", 10)
    rows = []
    for strategy in ("unfreeze-last=2", "unfreeze-last=3"):
        apply_strategy(model, strategy)
        k = boundary_stage(model.features)
        with torch.no_grad():
            z = Prefix(model.features, k).eval()(torch.randn(64, 3, 224, 224))
        net = BoundaryNet(model.features, model.head, k).train()
        opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], 1e-3)
        y = torch.randint(0, 10, (64,))
        for bf16 in (False, True):
            for step in range(4):
                if step == 1:
                    start = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    logits = net(z.contiguous(memory_format=torch.channels_last))
                loss = torch.nn.functional.cross_entropy(logits.float(), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
            rate = 3 * 64 / (time.perf_counter() - start)
            rows.append({"strategy": strategy, "boundary_stage": k, "activation_shape": list(z.shape[1:]),
                         "precision": "bf16 autocast" if bf16 else "fp32", "images_per_s": round(rate, 1)})
    print(f"{'strategy':16} {'stage':>5} {'precision':>14} {'img/s':>7}")
    for r in rows:
        print(f"{r['strategy']:16} {r['boundary_stage']:>5} {r['precision']:>14} {r['images_per_s']:>7.1f}")
    out = Path("benchmarks/results/suffix_training.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "suffix_training", "date": datetime.now(UTC).isoformat(
        timespec="seconds"), "machine": {"platform": platform.platform(), "cpus": os.cpu_count()}, "rows": rows},
        indent=2) + "\n")


if __name__ == "__main__":
    main()
