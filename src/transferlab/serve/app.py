"""A web service for a trained model: FastAPI, micro-batched inference, safe by default.

- `GET /` a small page (Korean and English): drop or choose images, see each with its top labels as bars.
- `POST /predict` (multipart, field `files`, one or many images) -> the same JSON as `predict --json`.
- `GET /health`, `GET /model` (labels, input size, preprocessing, training metrics, version); `/docs`.

Requests are micro-batched: images arriving within a short window (`wait_ms`) are run together, up to
`max_batch`, in one worker thread, so the event loop never blocks on inference. Limits: upload bytes and
pixels (413), content sniffed from the bytes (415 for non-images, whatever the name or content type claim),
corrupt images (400), request timeout (504). Uploaded file names are echoed, never used as paths. An API key
(header `X-API-Key`, `Authorization: Bearer KEY` or `?api_key=`) is checked on every request when set, and
is required to bind anything but loopback.

Example:
    >>> app = create_app("runs/cd")  # doctest: +SKIP
    >>> # uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import os
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import SettingError
from ..inference.portable import BasePredictor
from ..inference.portable import top_k as top_labels
from ..runs.folder import RunFolder

try:  # the optional extra transferlab[serve]; names at module level so that FastAPI can read the annotations
    from fastapi import FastAPI, File, HTTPException, Request, UploadFile
    from fastapi.responses import HTMLResponse, JSONResponse
except ImportError:  # pragma: no cover - the error comes when an app is made
    FastAPI = None  # type: ignore[assignment,misc]

__all__ = ["ServeConfig", "create_app", "MicroBatcher", "check_bind"]

API_KEY_ENV = "TRANSFERLAB_API_KEY"


@dataclass(frozen=True)
class ServeConfig:
    """Service settings.

    Attributes:
        max_batch: Most images run together.
        wait_ms: How long the first image of a batch waits for others (0 with batching off).
        batching: Micro-batching on (True) or one request at a time (False).
        max_upload_mb: Largest request body and largest single file.
        max_pixels: Largest image (width x height); bigger is refused with 413 before decoding.
        max_files: Most images in one request.
        timeout_s: A request that waits longer for its result gets 504.
        top_k: Default labels per image (`?top_k=` overrides).
        api_key: Required on every request when set.
    """

    max_batch: int = 32
    wait_ms: float = 5.0
    batching: bool = True
    max_upload_mb: float = 20.0
    max_pixels: int = 40_000_000
    max_files: int = 64
    timeout_s: float = 30.0
    top_k: int = 3
    api_key: str | None = None


class MicroBatcher:
    """Collects single images from concurrent requests into batches for one inference thread.

    Example:
        >>> batcher = MicroBatcher(lambda images: np.zeros((len(images), 2)), max_batch=8, wait_ms=2)
    """

    def __init__(self, infer: Callable[[list[Any]], np.ndarray], max_batch: int = 32, wait_ms: float = 5.0) -> None:
        self.infer = infer
        self.max_batch = max(1, int(max_batch))
        self.wait = max(0.0, wait_ms) / 1000
        self.queue: asyncio.Queue | None = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="transferlab-infer")
        self.batches: list[int] = []  # sizes of the batches run (for tests and statistics)
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, images: list[Any]) -> np.ndarray:
        """Probabilities [len(images), C] of these images, computed with whatever else is waiting."""
        assert self.queue is not None, "MicroBatcher.start() was not awaited"
        loop = asyncio.get_running_loop()
        futures = []
        for image in images:
            future = loop.create_future()
            await self.queue.put((image, future))
            futures.append(future)
        return np.stack(await asyncio.gather(*futures))

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            deadline = loop.time() + self.wait
            while len(batch) < self.max_batch:
                remaining = deadline - loop.time()
                if remaining <= 0 and self.queue.empty():
                    break
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), max(remaining, 0)) if remaining > 0
                                 else self.queue.get_nowait())
                except (TimeoutError, asyncio.QueueEmpty):
                    break
            live = [(image, future) for image, future in batch if not future.cancelled()]
            if not live:
                continue
            self.batches.append(len(live))
            try:
                probs = await loop.run_in_executor(self.executor, self.infer, [image for image, _ in live])
            except Exception as e:  # noqa: BLE001 - handed to the waiting requests
                for _, future in live:
                    if not future.done():
                        future.set_exception(e)
                continue
            for (_, future), row in zip(live, probs):
                if not future.done():
                    future.set_result(row)


def check_bind(host: str, api_key: str | None) -> None:
    """Refuses to bind beyond loopback without an API key.

    Raises:
        ValueError: A non-loopback host and no key.
    """
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not api_key:
        raise SettingError(f"Serving on {host!r} makes the model reachable from other machines; pass --api-key KEY (or "
                         f"set {API_KEY_ENV}) so that every request must present it, or keep the default host "
                         "127.0.0.1.")


def _model_info(source: str | os.PathLike[str], predictor: BasePredictor) -> dict[str, Any]:
    from .._version import __version__

    folder = Path(source)
    metrics = RunFolder(folder).metrics() or RunFolder(folder.parent).metrics()  # a run, or an export inside one
    pre = predictor.preprocessing
    return {"labels": list(predictor.labels), "input_size": int(pre["image_size"]), "preprocessing": pre,
            "training_metrics": metrics, "engine": predictor.engine_name,
            "transferlab_version": __version__, "source": folder.name}


def _decode(data: bytes, name: str, config: ServeConfig, predictor: BasePredictor) -> Image.Image:
    """Sniffs, checks and decodes one upload; raises HTTPException with 413/415/400."""
    if len(data) > config.max_upload_mb * 2**20:
        raise HTTPException(413, f"'{name}' is {len(data) / 2**20:.1f} MB; the limit is {config.max_upload_mb} MB.")
    if not data:
        raise HTTPException(400, f"'{name}' is empty (0 bytes).")
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only: the format comes from the bytes
    except UnidentifiedImageError:
        raise HTTPException(415, f"'{name}' is not an image (its content is not JPEG, PNG, WebP, GIF, BMP, TIFF...), "
                                 "whatever its name or content type say.") from None
    except Exception as e:  # noqa: BLE001
        raise HTTPException(400, f"'{name}' could not be read as an image: {e}") from None
    w, h = image.size
    if w * h > config.max_pixels:
        raise HTTPException(413, f"'{name}' is {w}x{h} = {w * h:,} pixels; the limit is {config.max_pixels:,}.")
    try:
        return predictor.decode(data)  # the same decode as predict: EXIF rotation, transparency, 16-bit, CMYK
    except Image.DecompressionBombError:
        raise HTTPException(413, f"'{name}' is too large to decode safely.") from None
    except Exception as e:  # noqa: BLE001 - truncated or corrupt data
        raise HTTPException(400, f"'{name}' is a corrupt or truncated image: {e}") from None


def create_app(source: str | os.PathLike[str], config: ServeConfig = ServeConfig(), predictor: Any = None) -> Any:
    """The FastAPI application for a run, bundle or ONNX export folder."""
    from contextlib import asynccontextmanager

    if FastAPI is None:
        raise SettingError("Serving needs FastAPI and uvicorn: `pip install transferlab[serve]`.")
    from starlette.concurrency import run_in_threadpool

    from ..inference.predictor import load_predictor

    predictor = predictor or load_predictor(source)
    labels = list(predictor.labels)
    info = _model_info(source, predictor)
    lock = threading.Lock()

    def infer(images: list[Image.Image]) -> np.ndarray:
        with lock:
            return np.asarray(predictor.image_probabilities(images))

    batcher = MicroBatcher(infer, config.max_batch if config.batching else 1, config.wait_ms if config.batching else 0)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="transferlab", version=info["transferlab_version"], lifespan=lifespan,
                  description=f"Image classifier: {', '.join(labels[:20])}{' ...' if len(labels) > 20 else ''}")
    app.state.batcher = batcher

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable) -> Any:
        if config.api_key:
            given = (request.headers.get("x-api-key") or request.query_params.get("api_key")
                     or request.headers.get("authorization", "").removeprefix("Bearer ").strip())
            if not given or not secrets.compare_digest(given.encode(), config.api_key.encode()):
                return JSONResponse({"detail": "Missing or wrong API key: send it as the X-API-Key header."}, 401)
        length = request.headers.get("content-length")
        limit = config.max_upload_mb * 2**20 * min(config.max_files, 4) + 2**20
        if length and length.isdigit() and int(length) > limit:
            return JSONResponse({"detail": f"The request body is {int(length) / 2**20:.1f} MB; the limit is "
                                           f"{limit / 2**20:.0f} MB."}, 413)
        return await call_next(request)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "labels": len(labels), "batches_run": len(batcher.batches)}

    @app.get("/model")
    async def model() -> dict[str, Any]:
        return info

    @app.post("/predict")
    async def predict(files: list[UploadFile] = File(...), top_k: int | None = None) -> list[dict[str, Any]]:  # noqa: B008
        if not files:
            raise HTTPException(400, "Send one or more images as multipart field 'files'.")
        if len(files) > config.max_files:
            raise HTTPException(413, f"{len(files)} files in one request; the limit is {config.max_files}.")
        k = max(1, min(int(top_k or config.top_k), len(labels)))
        images, names = [], []
        for f in files:
            data = await f.read(int(config.max_upload_mb * 2**20) + 1)
            name = f.filename or f"upload-{len(names)}"
            images.append(await run_in_threadpool(_decode, data, name, config, predictor))
            names.append(name)
        try:
            probs = await asyncio.wait_for(batcher.submit(images), timeout=config.timeout_s)
        except TimeoutError:
            raise HTTPException(504, f"The model did not answer within {config.timeout_s} s; try again.") from None
        return [{"path": name, "top": top_labels(row, labels, k)} for name, row in zip(names, probs)]

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return PAGE.replace("__TITLE__", f"transferlab — {info['source']}")

    return app


PAGE = """<!DOCTYPE html>
<html lang="ko"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>__TITLE__</title><link rel="icon" href="data:,">
<style>
body{font-family:system-ui,'Noto Sans KR',sans-serif;max-width:900px;margin:2em auto;padding:0 1em;color:#222}
#drop{border:2px dashed #89a;border-radius:10px;padding:2em;text-align:center;background:#f7f9fb;cursor:pointer}
#drop.over{background:#e8f0fe}.result{display:flex;gap:1em;margin:1em 0;align-items:flex-start}
.result img{width:160px;height:160px;object-fit:cover;border-radius:6px;border:1px solid #ddd}
.bars{flex:1}.row{margin:.3em 0}.name{font-size:.95em}.bar{background:#e5e9f0;border-radius:4px;height:14px}
.fill{background:#3b82f6;height:14px;border-radius:4px}.err{color:#b91c1c}small{color:#667}
</style></head><body>
<h1>이미지 분류 <small>Image classification</small></h1>
<p>이미지를 끌어다 놓거나 선택하세요. <small>Drop images here or choose them.</small></p>
<div id="drop" tabindex="0">📷 이미지 선택 / Choose images
<input id="files" type="file" accept="image/*" multiple hidden></div>
<p><small id="status"></small></p>
<div id="results"></div>
<script>
const params = new URLSearchParams(location.search);
const key = params.get("api_key");
const drop = document.getElementById("drop"), input = document.getElementById("files");
const status = document.getElementById("status"), results = document.getElementById("results");
drop.addEventListener("click", () => input.click());
drop.addEventListener("dragover", e => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", e => { e.preventDefault(); drop.classList.remove("over"); send(e.dataTransfer.files); });
input.addEventListener("change", () => send(input.files));
async function send(files) {
  if (!files.length) return;
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  status.textContent = "분류 중… / Classifying…";
  const headers = key ? {"X-API-Key": key} : {};
  const response = await fetch("predict?top_k=3", {method: "POST", body: form, headers});
  const data = await response.json();
  status.textContent = "";
  if (!response.ok) { results.prepend(message(data.detail || response.statusText)); return; }
  data.forEach((item, i) => results.prepend(card(files[i], item)));
}
function message(text) { const p = document.createElement("p"); p.className = "err";
  p.textContent = "오류 / Error: " + text; return p; }
function card(file, item) {
  const div = document.createElement("div"); div.className = "result";
  const img = document.createElement("img"); img.src = URL.createObjectURL(file); img.alt = item.path;
  const bars = document.createElement("div"); bars.className = "bars";
  const title = document.createElement("div"); title.textContent = item.path; title.style.fontWeight = "600";
  bars.appendChild(title);
  for (const t of item.top) {
    const row = document.createElement("div"); row.className = "row";
    const name = document.createElement("div"); name.className = "name label";
    name.textContent = t.label + " — " + (100 * t.probability).toFixed(1) + "%";
    const bar = document.createElement("div"); bar.className = "bar";
    const fill = document.createElement("div"); fill.className = "fill";
    fill.style.width = (100 * t.probability).toFixed(1) + "%";
    bar.appendChild(fill); row.appendChild(name); row.appendChild(bar); bars.appendChild(row);
  }
  div.appendChild(img); div.appendChild(bars); return div;
}
</script></body></html>
"""


def app_from_env() -> Any:
    """App factory for `serve --workers N` (uvicorn starts N processes, each calling this)."""
    import json

    return create_app(os.environ["TRANSFERLAB_SERVE_MODEL"],
                      ServeConfig(**json.loads(os.environ.get("TRANSFERLAB_SERVE_CONFIG", "{}"))))
