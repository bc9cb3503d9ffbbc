"""Benchmark: the studio as a student uses it, through its HTTP API on a real `transferlab studio` process.

1. Import 2,000 photos from a folder of this computer (1,000 cats, 1,000 dogs: `--allow`), then the checks.
2. "Train a first model" (the one button: EfficientNet-Lite0, bundled weights, a new head on cached features) on a
   project of 2 x 100 photos: seconds from the request to the job's `done` event (its validation images scored).
3. Page requests while a job trains (the first model of the 2,000-photo project, in its own process): the page,
   the project state and the job state, requested one after another for the whole job; p50/p99/max in ms.

The photos are CIFAR-10's cat and dog JPEGs enlarged to 500x375 (as `train_e2e.py`; never in the repository).
Run (prints a table, writes benchmarks/results/studio.json):

    .venv/bin/python benchmarks/studio.py --cifar ../cifar10-jpg
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from _machine import machine
from train_e2e import make_photos

ROOT = Path(__file__).resolve().parents[1]
H = {"X-Studio": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_studio(project: Path, allow: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "transferlab", "studio", str(project), "--port", str(port),
                             "--allow", str(allow), "--no-open"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    for _ in range(200):
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/project", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the studio did not start: {proc.stdout.read().decode()[-2000:]}")


def wait_done(client: httpx.Client, job: str, timeout: float = 1800) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(f"/api/jobs/{job}").json()
        if state["status"] != "running":
            return state
        time.sleep(0.05)
    raise SystemExit(f"job {job} still running after {timeout} s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cifar", type=Path, default=Path("../cifar10-jpg"))
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "tl-studio-bench")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "studio.json"))
    args = parser.parse_args()
    photos = make_photos(args.cifar, args.work / "catdog-photos")  # train/{cat,dog}: 1,000 each
    small = args.work / "small-source"
    if not small.is_dir():
        for label in ("cat", "dog"):
            (small / label).mkdir(parents=True)
            for path in sorted((photos / "train" / label).glob("*.jpg"))[:100]:
                shutil.copy(path, small / label / path.name)
    results: dict = {}
    for name in ("big", "small"):
        shutil.rmtree(args.work / f"project-{name}", ignore_errors=True)
    home = args.work / "home"  # a fresh feature cache: the first model is a cold start
    shutil.rmtree(home, ignore_errors=True)
    os.environ["TRANSFERLAB_HOME"] = str(home)
    port = free_port()
    proc = start_studio(args.work / "project-small", args.work, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=H, timeout=600) as client:
            client.post("/api/import", json={"folder": str(small)}).raise_for_status()
            start = time.perf_counter()
            job = client.post("/api/train", json={}).json()
            state = wait_done(client, job["id"])
            results["first_model_seconds"] = round(time.perf_counter() - start, 2)
            results["first_model"] = {"status": state["status"], "images": 200,
                                      "best_val_accuracy": state["result"]["metrics"].get("best_val_accuracy"),
                                      "wall_seconds_in_train": state["result"]["metrics"].get("wall_seconds")}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    port = free_port()
    proc = start_studio(args.work / "project-big", args.work, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=H, timeout=600) as client:
            start = time.perf_counter()
            imported = client.post("/api/import", json={"folder": str(photos / "train")}).json()
            import_seconds = time.perf_counter() - start
            checks = client.get("/api/checks").json()
            results["import"] = {"photos": sum(v["added"] for v in imported.values()),
                                 "import_seconds": round(import_seconds, 2),
                                 "checks_seconds": round(time.perf_counter() - start - import_seconds, 2),
                                 "total_seconds": round(time.perf_counter() - start, 2),
                                 "ready": checks["ready"]}
            job = client.post("/api/train", json={}).json()
            latencies: dict[str, list[float]] = {"/": [], "/api/project": [], f"/api/jobs/{job['id']}": []}
            stop = threading.Event()

            def poll() -> None:
                with httpx.Client(base_url=client.base_url, headers=H, timeout=60) as pages:
                    while not stop.is_set():
                        for path, values in latencies.items():
                            t0 = time.perf_counter()
                            pages.get(path).raise_for_status()
                            values.append((time.perf_counter() - t0) * 1000)
                        time.sleep(0.05)

            poller = threading.Thread(target=poll)
            poller.start()
            state = wait_done(client, job["id"])
            stop.set()
            poller.join()
            every = [v for values in latencies.values() for v in values]
            results["pages_while_training"] = {
                "job_status": state["status"], "requests": len(every),
                "p50_ms": round(statistics.median(every), 1), "p99_ms": round(percentile(every, 99), 1),
                "max_ms": round(max(every), 1),
                "per_path_p99_ms": {p: round(percentile(v, 99), 1) for p, v in latencies.items()},
                "best_val_accuracy": state["result"]["metrics"].get("best_val_accuracy")}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"{'measure':<52} {'value':>10} {'target':>10}")
    print(f"{'first model, 2 x 100 photos (s, request to done)':<52} {results['first_model_seconds']:>10} "
          f"{'<= 15':>10}")
    print(f"{'import 2,000 photos from a folder + checks (s)':<52} {results['import']['total_seconds']:>10} "
          f"{'<= 60':>10}")
    pages = results["pages_while_training"]
    print(f"{'page requests while training, p99 (ms)':<52} {pages['p99_ms']:>10} {'<= 200':>10}")
    print(json.dumps(results, indent=2))
    out = {"benchmark": "studio", "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
           "command": "benchmarks/studio.py", **results}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
