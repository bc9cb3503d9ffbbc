#!/usr/bin/env bash
# GPU benchmark (issue "Scale out"): inference and training images/s of EfficientNet-Lite0 and ResNet50 at 224,
# and the wall time of the CIFAR-10 fine-tune recipe, on one GPU, within 10 minutes.
#
#   CIFAR=../cifar10-jpg bash benchmarks/gpu.sh            # on the GPU machine
#   DEVICE=cpu QUICK=1 bash benchmarks/gpu.sh              # a dry run of the same steps on a CPU
#
# Writes benchmarks/results/gpu/{inference,train}.json and prints a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DEVICE=${DEVICE:-cuda}
CIFAR=${CIFAR:-../cifar10-jpg}
OUT=benchmarks/results/gpu
QUICK=${QUICK:-0}
mkdir -p "$OUT"
REPEATS=$([ "$QUICK" = 1 ] && echo 3 || echo 30)
BATCH=$([ "$QUICK" = 1 ] && echo 8 || echo 128)

echo "== inference (engine auto: bf16 + channels_last where native)"
$PY -m transferlab benchmark --models efficientnet_lite0,resnet50 --device "$DEVICE" --engine auto \
    --batch-size "$BATCH" --repeats "$REPEATS" --out "$OUT/inference" --json > "$OUT/inference.json"

echo "== training throughput (synthetic batches, bf16 mixed precision, channels_last)"
$PY - "$DEVICE" "$BATCH" "$QUICK" > "$OUT/train.json" <<'PYEOF'
import json, sys, time
import torch
from transferlab.models import build_classifier
device, batch, quick = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
rows = []
for name in ("efficientnet_lite0", "resnet50"):
    model = build_classifier(name, 10, weights="none").to(device).to(memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    x = torch.randn(batch, 3, 224, 224, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    steps = 3 if quick else 30
    dtype = torch.bfloat16 if device == "cpu" or torch.cuda.is_bf16_supported() else torch.float16
    for i in range(steps + 3):
        if i == 3:
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
        with torch.autocast(torch.device(device).type, dtype=dtype):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    rows.append({"model": name, "batch": batch, "train_images_per_s": round(steps * batch / (time.perf_counter() - start), 1),
                 "device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"})
print(json.dumps(rows))
PYEOF

echo "== CIFAR-10 fine-tune recipe (examples/ex3c_cifar_unfreeze.yaml) wall time"
if [ -d "$CIFAR/train" ]; then
  WORK=$(mktemp -d)
  mkdir -p "$WORK/cifar10/train" "$WORK/cifar10/validation"
  for c in "$CIFAR"/train/*; do ln -s "$(realpath "$c")" "$WORK/cifar10/train/$(basename "$c")"; done
  for c in "$CIFAR"/test/*; do ln -s "$(realpath "$c")" "$WORK/cifar10/validation/$(basename "$c")"; done
  EXTRA=$([ "$QUICK" = 1 ] && echo "--epochs 1" || echo "")
  SUBSET=$([ "$QUICK" = 1 ] && echo "subset: 20" || echo "")
  printf '%s\n' "$SUBSET" > "$WORK/extra.yaml"
  cat examples/ex3c_cifar_unfreeze.yaml "$WORK/extra.yaml" > "$WORK/recipe.yaml"
  START=$(date +%s)
  ACC=$([ "$DEVICE" = cpu ] && echo cpu || echo gpu)
  $PY -m transferlab train "$WORK/cifar10" --config "$WORK/recipe.yaml" --accelerator "$ACC" --num-workers 8 \
      --out "$WORK/run" --overwrite --quiet --json $EXTRA > "$OUT/recipe.json"
  echo "{\"recipe_wall_seconds\": $(( $(date +%s) - START ))}" > "$OUT/recipe_time.json"
else
  echo "no CIFAR-10 JPEGs at $CIFAR: recipe skipped" | tee "$OUT/recipe_time.json"
fi

$PY - "$OUT" <<'PYEOF'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
for row in json.loads((out / "inference.json").read_text()):
    print(f"inference {row['model']:20} b1 {row.get('latency_ms_median')} ms, b{[k for k in row if k.startswith('throughput_b')][0][12:]} "
          f"{[v for k, v in row.items() if k.startswith('throughput_b')][0]} img/s on {row['device']}")
for row in json.loads((out / "train.json").read_text()):
    print(f"train     {row['model']:20} {row['train_images_per_s']} img/s (batch {row['batch']}, {row['device']})")
print((out / "recipe_time.json").read_text().strip())
PYEOF
