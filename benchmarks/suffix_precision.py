"""Benchmark: training the unfrozen suffix on cached boundary activations in fp32 or bf16, contiguous or channels-last.

What `unfreeze-last=N` with a boundary cache runs every step (transferlab's own `BoundaryNet` on the bf16
output of its `Prefix`): the trainable stages, the head and an Adam step, on a batch of activations at the
frozen stage boundary. Each mode runs for `--seconds` after two warm-up steps,
in one process with transferlab's malloc tuning; the table gives steps/s and the seconds one epoch of
`--images` images would take. Run:

    .venv/bin/python benchmarks/suffix_precision.py --model efficientnet_lite2 --size 160 --unfreeze-last 2
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from _machine import machine

MODES = {"fp32": (False, False), "fp32 channels-last": (False, True), "bf16 autocast": (True, False),
         "bf16 autocast channels-last": (True, True)}


def _step(net, x, labels, optimizer, bf16: bool) -> None:
    import torch

    with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        loss = torch.nn.functional.cross_entropy(net(x), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="efficientnet_lite2")
    parser.add_argument("--weights", default="imagenet", help="'none' for random weights (speed only).")
    parser.add_argument("--model-kwargs", type=json.loads, default={"drop_path_rate": 0.2, "drop_rate": 0.3},
                        help="JSON passed to the architecture; default the cifar10 recipe's.")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--unfreeze-last", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/suffix_precision.json"))
    args = parser.parse_args()

    import torch

    from transferlab._runtime import tune_malloc
    from transferlab.models import build_classifier
    from transferlab.training.boundary import BoundaryNet, Prefix, boundary_stage
    from transferlab.training.strategies import apply_strategy

    tune_malloc()
    torch.manual_seed(0)
    model = build_classifier(args.model, 10, weights=args.weights, **args.model_kwargs)
    model.train()
    apply_strategy(model, f"unfreeze-last={args.unfreeze_last}")  # as training does (frozen BatchNorm in eval)
    k = boundary_stage(model.features)
    if not k:
        raise SystemExit(f"--model {args.model} with --unfreeze-last {args.unfreeze_last}: no frozen prefix to "
                         "cache (boundary caching supports EfficientNet/MobileNet and ResNet bases).")
    with torch.no_grad():  # what the boundary cache stores: the frozen prefix's output, in bfloat16
        h = Prefix(model.features, k)(torch.randn(args.batch, 3, args.size, args.size)).to(torch.bfloat16)
    suffix = BoundaryNet(model.features, model.head, k)  # what training runs on the cache
    labels = torch.randint(0, 10, (args.batch,))
    steps_per_epoch = -(-args.images // args.batch)
    rows = []
    for name, (bf16, channels_last) in MODES.items():
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        net = suffix.to(memory_format=fmt)
        x = h.contiguous(memory_format=fmt)
        optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], 1e-5)
        _step(net, x, labels, optimizer, bf16)
        _step(net, x, labels, optimizer, bf16)
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < args.seconds:
            _step(net, x, labels, optimizer, bf16)
            n += 1
        rate = n / (time.perf_counter() - start)
        rows.append({"mode": name, "steps_per_s": round(rate, 3), "epoch_s": round(steps_per_epoch / rate, 1)})
    fastest = max(r["steps_per_s"] for r in rows)
    print(f"{args.model} at {args.size} px, last {args.unfreeze_last} stages + head on the stage-{k} boundary "
          f"{tuple(h.shape[1:])}, batch {args.batch}, {torch.get_num_threads()} threads")
    print(f"{'mode':30} {'steps/s':>8} {'s/epoch':>8} {'vs fastest':>10}")
    for r in rows:
        r["vs_fastest"] = round(r["steps_per_s"] / fastest, 2)
        print(f"{r['mode']:30} {r['steps_per_s']:>8.3f} {r['epoch_s']:>8.1f} {r['vs_fastest']:>10.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "suffix_precision", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(), "model": args.model,
        "image_size": args.size, "unfreeze_last": args.unfreeze_last, "batch": args.batch,
        "images_per_epoch": args.images, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
