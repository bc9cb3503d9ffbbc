"""A web service for a trained model: FastAPI, micro-batched inference, safe by default.

- `GET /` a small page (Korean and English): drop or choose images, see each with its top labels as bars.
- `POST /predict` (multipart, field `files`, one or many images) -> the same JSON as `predict --json`.
- `GET /health`, `GET /model` (labels, input size, preprocessing, training metrics, version); `/docs`.

Requests are micro-batched: images arriving within a short window (`wait_ms`) are run together, up to
`max_batch`, in one worker thread, so the event loop never blocks on inference. Limits: upload bytes and
pixels (413), content sniffed from the bytes (415 for non-images, whatever the name or content type claim),
corrupt images (400), request timeout (504). Uploaded file names are echoed, never used as paths. An API key
(header `X-API-Key` or `Authorization: Bearer KEY`; never `?api_key=`, which logs would keep) is checked on every
request when set, and is required to bind anything but loopback.

Example:
    >>> app = create_app("runs/cd")  # doctest: +SKIP
    >>> # uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SettingError
from ..inference.portable import BasePredictor
from ..inference.portable import top_k as top_labels
from ..runs.folder import RunFolder
from .batcher import MicroBatcher
from .config import API_KEY_ENV, ServeConfig
from .limits import BodyLimit, RequestCap, UploadBudget, body_limit_bytes
from .page import PAGE
from .uploads import decode_upload

try:  # the optional extra transferlab[serve]; names at module level so that FastAPI can read the annotations
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import HTMLResponse, JSONResponse
except ImportError:  # pragma: no cover - the error comes when an app is made
    FastAPI = None  # type: ignore[assignment,misc]

__all__ = ["ServeConfig", "create_app", "MicroBatcher", "check_bind"]



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
    return {"labels": list(predictor.labels), "input_size": pre.image_size, "preprocessing": pre.to_dict(),
            "training_metrics": metrics, "engine": predictor.engine_name,
            "transferlab_version": __version__, "source": folder.name}


def create_app(source: str | os.PathLike[str], config: ServeConfig = ServeConfig(), predictor: Any = None) -> Any:
    """The FastAPI application for a run, bundle or ONNX export folder."""
    from contextlib import asynccontextmanager

    if FastAPI is None:
        raise SettingError("Serving needs FastAPI and uvicorn: `pip install transferlab[serve]`.")
    from starlette.concurrency import run_in_threadpool

    from ..inference.loading import load_predictor

    predictor = predictor or load_predictor(source)
    labels = list(predictor.labels)
    info = _model_info(source, predictor)
    lock = threading.Lock()

    def infer(inputs: list[np.ndarray]) -> np.ndarray:
        with lock:
            return np.asarray(predictor.batch_probabilities(np.stack(inputs)))

    gate = threading.BoundedSemaphore(max(1, config.decode_slots))

    batcher = MicroBatcher(infer, config.max_batch if config.batching else 1, config.wait_ms if config.batching else 0)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="transferlab", version=info["transferlab_version"], lifespan=lifespan,
                  description=f"Image classifier: {', '.join(labels[:20])}{' ...' if len(labels) > 20 else ''}",
                  docs_url=None, redoc_url=None)  # FastAPI's pages load Swagger UI from a CDN: ours loads nothing
    app.state.batcher = batcher
    app.add_middleware(BodyLimit, limit=body_limit_bytes(config.max_upload_mb, config.max_files),
                       budget=UploadBudget(int(config.max_total_upload_mb * 2**20)))
    app.add_middleware(RequestCap, limit=config.max_connections)  # outermost: a refused request reads nothing

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable) -> Any:
        if config.api_key:
            given = (request.headers.get("x-api-key")
                     or request.headers.get("authorization", "").removeprefix("Bearer ").strip())
            if "api_key" in request.query_params:  # URLs end up in access logs and browser histories
                return JSONResponse({"detail": "Send the API key as the X-API-Key header (or Authorization: Bearer "
                                               "KEY), never in the URL, where logs would keep it."}, 401)
            if not given or not secrets.compare_digest(given.encode(), config.api_key.encode()):
                return JSONResponse({"detail": "Missing or wrong API key: send it as the X-API-Key header."}, 401)
        length = request.headers.get("content-length")
        limit = body_limit_bytes(config.max_upload_mb, config.max_files)  # declared size: refused before reading
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

    @app.post("/predict", openapi_extra=PREDICT_OPENAPI)
    async def predict(request: Request, top_k: int | None = None) -> list[dict[str, Any]]:
        """Classify images: multipart form fields `file` or `files` (one or many, in order), or one image as
        the raw request body (Content-Type image/*). Example: `curl -F file=@cat.jpg http://HOST/predict`.
        A single bad image is answered with its status (413/415/400); in a request of several, each bad one gets
        its own `{"path", "error", "status"}` entry and the others are classified."""
        uploads = await _uploads(request, config.max_upload_mb)
        if not uploads:
            raise HTTPException(400, "Send one or more images: multipart field 'file' or 'files' (curl -F "
                                     "file=@cat.jpg URL), or the image itself as the body (curl --data-binary "
                                     "@cat.jpg -H 'Content-Type: image/jpeg' URL).")
        if len(uploads) > config.max_files:
            raise HTTPException(413, f"{len(uploads)} files in one request; the limit is {config.max_files}.")
        k = max(1, min(int(top_k or config.top_k), len(labels)))
        images, answers = [], []
        for name, data in uploads:
            try:
                images.append(await run_in_threadpool(decode_upload, data, name, config, predictor, gate))
                answers.append({"path": name})
            except HTTPException as e:
                if len(uploads) == 1:
                    raise  # one image: its status is the answer's
                answers.append({"path": name, "error": e.detail, "status": e.status_code})  # the others still run
        try:
            probs = await asyncio.wait_for(batcher.submit(images), timeout=config.timeout_s) if images else []
        except TimeoutError:
            raise HTTPException(504, f"The model did not answer within {config.timeout_s} s; try again.") from None
        rows = iter(probs)
        return [a if "error" in a else {**a, "top": top_labels(next(rows), labels, k)} for a in answers]

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    async def docs() -> str:
        return api_page(app.openapi())

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return PAGE.replace("__TITLE__", html.escape(f"transferlab — {info['source']}")).replace(
            "__CLASSES__", html.escape(", ".join(labels)))

    return app


async def _uploads(request: Any, max_upload_mb: float) -> list[tuple[str, bytes]]:
    """(name, bytes) of every image in the request, in the order sent: the files of a multipart form, whatever
    their field names (`file`, `files`, ...), or the raw body of an image/* or octet-stream request."""
    from fastapi import HTTPException

    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    limit = int(max_upload_mb * 2**20) + 1
    if kind == "multipart/form-data":
        form = await request.form()
        out = []
        for _, value in form.multi_items():
            if hasattr(value, "read"):  # an UploadFile; text fields are ignored
                out.append((value.filename or f"upload-{len(out)}", await value.read(limit)))
        return out
    if kind.startswith("image/") or kind == "application/octet-stream":
        return [("upload", await request.body())]
    raise HTTPException(415, f"Content-Type {kind or '(none)'} is not an upload: send multipart/form-data (curl -F "
                             "file=@cat.jpg URL) or the image bytes with Content-Type image/jpeg, image/png, ...")


PREDICT_OPENAPI = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "file": {"type": "string", "format": "binary", "description": "one image"},
        "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                  "description": "one or more images, answered in this order"}}}},
    "image/*": {"schema": {"type": "string", "format": "binary"}}}}}


def app_from_env() -> Any:
    """App factory for `serve --workers N` (uvicorn starts N processes, each calling this)."""
    import json

    return create_app(os.environ["TRANSFERLAB_SERVE_MODEL"],
                      ServeConfig(**json.loads(os.environ.get("TRANSFERLAB_SERVE_CONFIG", "{}"))))


def api_page(schema: dict[str, Any]) -> str:
    """/docs: the API's endpoints from its OpenAPI schema, as one self-contained page (nothing loads from elsewhere;
    /openapi.json has the whole schema)."""
    rows = []
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            text = operation.get("description") or operation.get("summary") or ""
            rows.append(f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                        f"<td>{html.escape(text)}</td></tr>")
    info = schema.get("info", {})
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
            "content='width=device-width,initial-scale=1'><title>transferlab API</title><link rel='icon' "
            "href='data:,'><style>body{font-family:system-ui,sans-serif;max-width:900px;margin:2em auto;padding:0 "
            "1em}td{vertical-align:top;padding:.3em .6em;border-bottom:1px solid #ddd}</style></head><body>"
            f"<h1>{html.escape(str(info.get('title', 'API')))} {html.escape(str(info.get('version', '')))}</h1>"
            f"<p>{html.escape(str(info.get('description', '')))}</p><table>{''.join(rows)}</table>"
            "<p>The whole schema: <a href='openapi.json'>openapi.json</a>. Example: <code>curl -F file=@cat.jpg "
            "http://HOST/predict</code></p></body></html>")


def check_port(host: str, port: int) -> None:
    """Refuses, before anything is loaded, a port another program listens on (uvicorn would log a traceback and
    exit 3)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as e:
            raise SettingError(f"Cannot serve on {host}:{port}: {e.strerror or e}. Another program (or another "
                               f"`transferlab serve`) uses it: stop it, or pass another --port, e.g. --port "
                               f"{port + 1 if port < 65535 else 8000}.") from None


def run_server(source: str | os.PathLike[str], config: ServeConfig, quiet: bool = False) -> None:
    """`transferlab serve`: checks the address (an API key off loopback, a free port), then runs uvicorn with the
    connection limits (`serve.connections`) and an access log that never shows query strings."""
    import json

    import uvicorn

    from .connections import uvicorn_limits

    check_bind(config.host, config.api_key)
    check_port(config.host, config.port)
    limits = uvicorn_limits(client_timeout=config.client_timeout, max_connections=config.max_connections)
    level = "warning" if quiet else "info"
    common = dict(host=config.host, port=config.port, log_level=level, access_log=not quiet,
                  log_config=_log_config(), **limits)
    if config.workers > 1:  # uvicorn's worker processes import the app by factory
        os.environ["TRANSFERLAB_SERVE_MODEL"] = str(source)
        os.environ["TRANSFERLAB_SERVE_CONFIG"] = json.dumps(config.__dict__)
        uvicorn.run("transferlab.serve.app:app_from_env", factory=True, workers=config.workers, **common)
    else:
        uvicorn.run(create_app(source, config), **common)


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, with the access log's request line cut at the query string (`?api_key=...` and other
    secrets sent in a URL stay out of the log)."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"no_query": {"()": "transferlab.serve.app.NoQueryString"}}
    config["handlers"]["access"]["filters"] = ["no_query"]
    return config


class NoQueryString:
    """A logging filter for uvicorn's access log: the path without its query string."""

    def filter(self, record: Any) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0] + "?…", *args[3:])
        return True
