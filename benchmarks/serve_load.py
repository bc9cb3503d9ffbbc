"""Benchmark: a bounded load test of `transferlab serve` on 127.0.0.1, micro-batching vs none, then hostile load.

Serves EfficientNet-Lite0 (bundled ImageNet weights, 1000 labels) with uvicorn in a separate process, sends
N requests (one photo each) with C in flight, and reports throughput, p50/p99 latency, errors and the
server's memory before and after the measured round (after a first full round, so that the allocator has
settled; flat = no leak). Then the hostile round: requests of eight small PNGs that each decode to 23 million
pixels (and some declaring 40 million, over the limit), sent while 300 idle sockets and 20 half-sent requests
are open; it reports the server's memory before, at its peak (sampled every 20 ms) and 2 s after, the answers,
and how many of the stalled sockets the server closed within --client-timeout. Stops by itself. Run:

    .venv/bin/python benchmarks/serve_load.py --requests 500 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _machine import machine


def make_bundle(folder: Path) -> Path:
    import torch

    from transferlab.data.transforms import preprocessing_from_model
    from transferlab.inference.classify import imagenet_labels
    from transferlab.models import build_classifier, create_model
    from transferlab.runs.bundle import save_bundle

    full = create_model("efficientnet_lite0")  # ImageNet head kept: a TransferNet with the same weights
    model = build_classifier("efficientnet_lite0", 1000)
    model.features.load_state_dict({k: v for k, v in full.state_dict().items() if not k.startswith("classifier")})
    linear = [m for m in model.head.modules() if isinstance(m, torch.nn.Linear)][-1]
    linear.load_state_dict(full.classifier.state_dict())
    save_bundle(folder, model, "efficientnet_lite0", imagenet_labels()[1], preprocessing_from_model(full))
    return folder


def photo_bytes() -> bytes:
    from PIL import Image
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.chelsea()).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def load(port: int, payload: bytes, requests: int, concurrency: int) -> dict:
    import httpx

    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while not queue.empty():
            i = queue.get_nowait()
            start = time.perf_counter()
            try:
                r = await client.post("/predict", files=[("files", (f"{i}.jpg", payload, "image/jpeg"))])
                ok = r.status_code == 200 and r.json()[0]["top"]
            except Exception:  # noqa: BLE001 - counted
                ok = False
            latencies.append(time.perf_counter() - start)
            errors += 0 if ok else 1

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        await client.post("/predict", files=[("files", ("warm.jpg", payload, "image/jpeg"))])
        start = time.perf_counter()
        await asyncio.gather(*[worker(client) for _ in range(concurrency)])
        wall = time.perf_counter() - start
    latencies.sort()
    return {"requests": requests, "concurrency": concurrency, "seconds": round(wall, 2),
            "requests_per_s": round(requests / wall, 1), "p50_ms": round(1000 * statistics.median(latencies), 1),
            "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1),
            "errors": errors}


def start_server(bundle: Path, *flags: str) -> tuple[subprocess.Popen, int]:
    """`transferlab serve BUNDLE FLAGS` on a free loopback port, in its own process, once it answers /health."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "transferlab", "serve", str(bundle), "--port", str(port), *flags],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    return server, port


def serve_and_load(bundle: Path, batching: bool, requests: int, concurrency: int, payload: bytes) -> dict:
    import httpx

    server, port = start_server(bundle, *([] if batching else ["--no-batching"]))
    try:
        asyncio.run(load(port, payload, 20, concurrency))  # warm-up
        for _ in range(2):  # two full rounds: the allocator and the batch buffers settle
            asyncio.run(load(port, payload, requests, concurrency))
        before = rss_mb(server.pid)
        start_batches = httpx.get(f"http://127.0.0.1:{port}/health").json()["batches_run"]
        row = asyncio.run(load(port, payload, requests, concurrency))
        after = rss_mb(server.pid)
        batches = httpx.get(f"http://127.0.0.1:{port}/health").json()["batches_run"] - start_batches
        return {"micro_batching": batching, **row, "batches_run": batches, "rss_mb_before": round(before, 1),
                "rss_mb_after": round(after, 1)}
    finally:
        server.terminate()
        server.wait(timeout=30)


def big_png(side: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (side, side), (90, 140, 200)).save(buf, format="PNG")
    return buf.getvalue()


def hostile_round(bundle: Path, requests: int = 12, concurrency: int = 4, client_timeout: float = 5.0) -> dict:
    """Decompression-heavy uploads and stalled sockets against one server; see the module's docstring."""
    import threading

    import httpx

    server, port = start_server(bundle, "--quiet", "--client-timeout", str(client_timeout))
    try:
        ok_png, over_png = big_png(4800), big_png(6300)
        files = [("files", (f"{i}.png", ok_png, "image/png")) for i in range(8)]
        for _ in range(2):  # warm-up: batches of this size have run, their buffers exist
            httpx.post(f"http://127.0.0.1:{port}/predict", files=files, timeout=300)
        time.sleep(1)
        before = rss_mb(server.pid)
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(300)]
        half = []
        for _ in range(20):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n")
            half.append(sock)
        opened = time.perf_counter()
        peak, running = [before], [True]

        def sample() -> None:
            while running[0]:
                peak.append(rss_mb(server.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        statuses: list[int] = []

        async def send() -> None:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
                semaphore = asyncio.Semaphore(concurrency)

                async def one(i: int) -> None:
                    async with semaphore:
                        payload = files if i % 4 else [("files", ("over.png", over_png, "image/png"))] * 8
                        answer = await client.post("/predict", files=payload)
                        items = answer.json() if answer.status_code == 200 else [{"status": answer.status_code}]
                        statuses.extend(item.get("status", 200) for item in items)  # one answer per image

                await asyncio.gather(*[one(i) for i in range(requests)])

        start = time.perf_counter()
        asyncio.run(send())
        wall = time.perf_counter() - start
        running[0] = False
        sampler.join()
        time.sleep(2)
        after = rss_mb(server.pid)
        closed = 0
        deadline = opened + client_timeout + 3
        for sock in idle + half:
            sock.settimeout(max(0.05, deadline - time.perf_counter()))
            try:
                closed += sock.recv(1) == b""
            except (ConnectionResetError, TimeoutError):
                closed += 0
            finally:
                sock.close()
        png_mb = round(len(ok_png) / 1e6, 3)
        return {"requests": requests, "images_per_request": 8, "png_kb": round(len(ok_png) / 1024, 1),
                "png_mb_decoded": round(4800 * 4800 * 3 / 2**20, 1), "seconds": round(wall, 1),
                "image_answers": {str(k): statuses.count(k) for k in sorted(set(statuses))}, "png_mb_sent": png_mb,
                "rss_mb_before": round(before, 1), "rss_mb_peak": round(max(peak), 1), "rss_mb_after": round(after, 1),
                "stalled_sockets": len(idle) + len(half), "stalled_closed_by_server": closed,
                "client_timeout_s": client_timeout}
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/serve_load.json"))
    args = parser.parse_args()
    bundle = make_bundle(Path(tempfile.mkdtemp(prefix="tl-serve-")) / "lite0")
    payload = photo_bytes()
    rows = [serve_and_load(bundle, batching, args.requests, args.concurrency, payload) for batching in (True, False)]
    print(f"{args.requests} requests, {args.concurrency} concurrent, one 451x300 JPEG each, EfficientNet-Lite0")
    print(f"{'micro-batching':>14} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'batches':>7} "
          f"{'RSS MB before/after':>20}")
    for r in rows:
        print(f"{str(r['micro_batching']):>14} {r['requests_per_s']:>7} {r['p50_ms']:>8} {r['p99_ms']:>8} "
              f"{r['errors']:>6} {r['batches_run']:>7} {r['rss_mb_before']:>9}/{r['rss_mb_after']}")
    hostile = hostile_round(bundle)
    print(f"Hostile round: {hostile['requests']} requests of 8 PNGs ({hostile['png_kb']} KB each, "
          f"{hostile['png_mb_decoded']} MB decoded; every 4th request 40 Mpx, over the limit), 4 at a time, "
          f"{hostile['stalled_sockets']} stalled sockets open")
    print(f"answers per image {hostile['image_answers']}; server RSS MB before {hostile['rss_mb_before']}, peak "
          f"{hostile['rss_mb_peak']}, after {hostile['rss_mb_after']}; stalled sockets closed by the server: "
          f"{hostile['stalled_closed_by_server']}/{hostile['stalled_sockets']} within "
          f"{hostile['client_timeout_s']} s + 3 s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"benchmark": "serve_load", "date": datetime.now(UTC).isoformat(timespec="seconds"),
                                     "machine": machine(),
                                     "rows": rows, "hostile": hostile}, indent=2) + "\n")


if __name__ == "__main__":
    main()
