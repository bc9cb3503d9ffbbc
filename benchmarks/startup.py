"""Benchmark: start-up of the commands people type most, before (an older commit) and after (this tree).

Each command runs as a cold process (a fresh interpreter; the OS file cache is warm after the first run, as on
a user's machine) `--repeats` times per version, alternating versions so that load drifts hit both alike;
the table shows the median seconds and the ratio. The "before" version is checked out into a temporary git
worktree and put first on PYTHONPATH. `predict` uses a real bundle: EfficientNet-Lite0 with a new
2-class head, and one photo-sized JPEG (scikit-image's cat); `predict RUN` is timed twice: as made by training
(PyTorch), and on a copy of the run after `transferlab export RUN` (this version's `predict` then answers through the
current ONNX export; the older one ignores it). Run:

    .venv/bin/python benchmarks/startup.py --before 59146c3 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _machine import machine

ROOT = Path(__file__).resolve().parents[1]


def make_run(folder: Path) -> tuple[Path, Path]:
    """A bundle folder (Lite0 + a 2-class head, bundled ImageNet weights) and one JPEG photo."""
    from PIL import Image
    from skimage import data as skdata

    from transferlab.data.transforms import preprocessing_from_model
    from transferlab.models import build_classifier
    from transferlab.runs.bundle import save_bundle

    model = build_classifier("efficientnet_lite0", 2)
    save_bundle(folder / "run", model, "efficientnet_lite0", ["cats", "dogs"], preprocessing_from_model(model))
    photo = folder / "cat.jpg"
    Image.fromarray(skdata.chelsea()).save(photo, quality=90)
    return folder / "run", photo


def timed(args: list[str], src: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "transferlab", *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"`transferlab {' '.join(args)}` failed with {src}:\n{proc.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="59146c3", help="git revision to compare with")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "startup.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        before = tmp / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(before), args.before], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            run, photo = make_run(tmp)
            exported = tmp / "run-exported"  # the same bundle after `transferlab export RUN` (fp32 ONNX)
            shutil.copytree(run, exported)
            subprocess.run([sys.executable, "-m", "transferlab", "export", str(exported)], check=True,
                           capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
            commands = {"--help": ["--help"], "models": ["models"],
                        "predict RUN one.jpg": ["predict", str(run), str(photo)],
                        "predict RUN one.jpg (exported)": ["predict", str(exported), str(photo)]}
            versions = {"before": before / "src", "after": ROOT / "src"}
            times: dict[str, dict[str, list[float]]] = {c: {v: [] for v in versions} for c in commands}
            for name, argv in commands.items():
                for src in versions.values():  # one untimed run each: byte-compile, fill the file cache
                    timed(argv, src)
                for _ in range(args.repeats):
                    for v, src in versions.items():
                        times[name][v].append(timed(argv, src))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, capture_output=True)
    rows = []
    print(f"{'command':<32}{'before (s)':>12}{'after (s)':>12}{'speed-up':>10}")
    for name in commands:
        b, a = statistics.median(times[name]["before"]), statistics.median(times[name]["after"])
        rows.append({"command": f"transferlab {name}", "before_s": round(b, 3), "after_s": round(a, 3),
                     "speedup": round(b / a, 2), "runs": times[name]})
        print(f"{name:<32}{b:>12.2f}{a:>12.2f}{b / a:>9.1f}x")
    result = {"benchmark": "startup", "before": args.before, "repeats": args.repeats, "rows": rows,
              "machine": machine(),
              "date": datetime.now(UTC).isoformat(timespec="seconds"), "command": " ".join(sys.argv)}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
