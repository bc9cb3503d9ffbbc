"""The studio's web app: one page (Korean and English) over a JSON API, on the library's own engine.

- `GET /` the page; `GET /assets/<file>` its script and style, shipped in the package (nothing from elsewhere).
- `GET /api/project` classes (counts, a few images), runs and the latest job; `POST /api/classes` a new class;
  `POST /api/classes/<name>/images` a batch of images (multipart `files`, at most `MAX_FILES` per request: the
  page sends thousands in batches); `GET /api/image?path=` one image of the project.
- `GET /api/checks` the data checks of `transferlab data info` (counts, imbalance, unreadable files, duplicates,
  train/validation leakage).
- `POST /api/train`, `POST /api/jobs/<id>/stop`, `POST /api/jobs/<id>/resume`; `GET /api/jobs/<id>/events` the
  job's events as Server-Sent Events (a page that reloads sends `Last-Event-ID` and continues where it was).
- `GET /api/runs/<name>` a finished run: its metrics, confusion matrix and validation images with the answers.
- `POST /api/try` top-3 answers of the newest finished run for uploaded images.

Every request that changes something must carry the header `X-Studio: 1` (a page on another site cannot send
it without the browser asking first), and, when the studio was started with a token, the token.

Example:
    >>> app = create_app("my-photos")  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import json
import secrets
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import TransferlabError
from .edits import move_image, remove_class, remove_image, rename_class, undo
from .jobs import TERMINAL, Jobs, read_events
from .page import page_html
from .project import Project, recent_projects
from .results import run_result
from .worker import EXPORTS

try:  # the optional extra transferlab[serve]
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
    from fastapi.sse import EventSourceResponse, ServerSentEvent
except ImportError:  # pragma: no cover - the error comes when an app is made
    FastAPI = None  # type: ignore[assignment,misc]

__all__ = ["create_app", "MAX_FILES", "MAX_REQUEST_MB"]

MAX_FILES = 100  # images per upload request (Starlette refuses more than 1,000 form parts)
MAX_REQUEST_MB = 64  # bytes per upload request: the page splits larger batches
ASSETS = ("studio.js", "studio.css")
SETTINGS = ("model", "strategy", "epochs", "lr", "augment", "image_size", "patience")  # what the page may send


def studio_defaults(given: dict[str, Any] | None = None) -> dict[str, Any]:
    """The one-button first model: `train`'s own defaults (its model, its epochs) with the strategy that trains a
    new head on cached features; `given` (the app's `defaults`) over them."""
    from ..training.config import TrainConfig
    from ..training.strategies import DEFAULT_EPOCHS

    model = TrainConfig.__dataclass_fields__["model"].default
    return {"model": model, "strategy": "freeze", "epochs": DEFAULT_EPOCHS, **(given or {})}


def _settings(body: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The training settings a page sent, over the studio's defaults, converted and checked as `train` checks
    them (TrainConfig: the same messages), before a process starts; a name the page may not send is refused."""
    from ..training.config import TrainConfig

    unknown = sorted(set(body) - set(SETTINGS))
    if unknown:
        raise HTTPException(400, f"Unknown setting(s) {', '.join(map(repr, unknown))}; the studio takes "
                                 f"{', '.join(SETTINGS)}.")
    settings = {**defaults, **{k: v for k, v in body.items() if v not in (None, "")}}
    try:
        config = TrainConfig.from_dict({"data": ".", **settings}).validate()
    except TransferlabError as e:
        raise HTTPException(400, str(e)) from None
    return {key: getattr(config, key) for key in settings}


def create_app(project: str | Path | Project, token: str | None = None,
               defaults: dict[str, Any] | None = None, allowed: list[str | Path] | None = None) -> Any:
    """The studio app for one project folder (created when missing).

    Args:
        project: The project folder.
        token: A secret every request must carry (header X-Studio-Token, or the cookie the address sets).
        defaults: `train` settings under what the page sends (e.g. {"model": "efficientnet_lite1"}).
        allowed: Folders of this computer whose images the page may import (read only), besides uploads.
    """
    if FastAPI is None:
        from ..errors import SettingError

        raise SettingError("transferlab studio needs the web extra: pip install 'transferlab[serve]'.")
    project = project if isinstance(project, Project) else Project(project)
    project.root.mkdir(parents=True, exist_ok=True)
    jobs = Jobs(project)
    start_from = studio_defaults(defaults)
    roots = [Path(a).expanduser().resolve() for a in allowed or []]
    app = FastAPI(title="transferlab studio", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.project, app.state.jobs = project, jobs
    predictors: dict[str, Any] = {}

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        if token is not None and not _token_ok(request, token):
            return JSONResponse({"detail": "This studio needs its token: open the address it printed."}, 401)
        if request.method not in ("GET", "HEAD") and request.headers.get("x-studio") != "1":
            return JSONResponse({"detail": "Missing the X-Studio header: changes come from the studio's page."},
                                403)
        if request.url.path.startswith("/api/classes/") and request.url.path.endswith("/images"):
            length = request.headers.get("content-length")
            if length is None or not length.isdigit() or int(length) > MAX_REQUEST_MB * 2**20:
                return JSONResponse({"detail": f"Send images in batches of at most {MAX_REQUEST_MB} MB "
                                               f"(with a Content-Length)."}, 413)
        response = await call_next(request)
        if token is not None and request.query_params.get("token") == token:
            response.set_cookie("studio_token", token, httponly=True, samesite="strict")
        return response

    @app.exception_handler(TransferlabError)
    async def user_error(request: Request, exc: TransferlabError) -> Any:
        return JSONResponse({"detail": str(exc)}, 400)

    @app.get("/", response_class=HTMLResponse)
    def index() -> Any:
        return HTMLResponse(page_html(project.name), headers={"Cache-Control": "no-store"})

    @app.get("/assets/{name}")
    def asset(name: str) -> Any:
        if name not in ASSETS:
            raise HTTPException(404, "No such file.")
        text = resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return Response(text, media_type=kind, headers={"Cache-Control": "no-cache"})

    @app.get("/api/project")
    def state() -> Any:
        return {"name": project.name, "root": str(project.root), "layout": project.layout,
                "classes": project.classes(), "runs": project.runs(), "job": jobs.latest(),
                "defaults": start_from,
                "export": jobs.latest(("export",)), "allowed": [str(r) for r in roots], "exports": EXPORTS,
                "recent": [p for p in recent_projects() if p != str(project.root)]}

    @app.post("/api/import")
    async def import_folder(request: Request) -> Any:
        body = await _json(request)
        folder = Path(str(body.get("folder") or "")).expanduser()
        real = folder.resolve() if folder.is_absolute() else None
        if real is None or not any(real == r or r in real.parents for r in roots):
            where = ", ".join(map(str, roots)) or "none: start the studio with --allow FOLDER"
            raise HTTPException(403, f"Import only from the folders allowed at start ({where}); got "
                                     f"{str(folder)[:120]!r}.")
        if not real.is_dir():
            raise HTTPException(400, f"{str(folder)[:120]!r} is not a folder.")
        if real == project.root or project.root in real.parents or real in project.root.parents:
            raise HTTPException(400, "Choose a folder outside the project (and not one that holds it).")
        label = body.get("label") or None
        return await asyncio.to_thread(project.import_folder, real, label)

    @app.post("/api/images/move")
    async def move(request: Request) -> Any:
        body = await _json(request)
        return await asyncio.to_thread(move_image, project, str(body.get("path", "")), str(body.get("label", "")))

    @app.post("/api/images/remove")
    async def remove(request: Request) -> Any:
        body = await _json(request)
        return await asyncio.to_thread(remove_image, project, str(body.get("path", "")))

    @app.post("/api/undo")
    def undo_last() -> Any:
        return undo(project)

    @app.post("/api/runs/{name}/export")
    async def export(name: str, request: Request) -> Any:
        fmt = str((await _json(request)).get("format", ""))
        if fmt not in EXPORTS:
            raise HTTPException(400, f"Format must be one of {', '.join(EXPORTS)}; got {fmt[:20]!r}.")
        return _started(lambda: jobs.start({"format": fmt}, mode="export", run=name))

    @app.get("/api/exports/{name}")
    def download(name: str) -> Any:
        file = project.studio_dir / "exports" / name
        if "/" in name or "\\" in name or not name.endswith(".zip") or not file.is_file():
            raise HTTPException(404, "No such export.")
        return FileResponse(file, filename=name, media_type="application/zip")

    @app.post("/api/classes")
    async def add_class(request: Request) -> Any:
        body = await _json(request)
        return {"name": project.add_class(str(body.get("name", "")))}

    @app.post("/api/classes/{label}/rename")
    async def rename(label: str, request: Request) -> Any:
        body = await _json(request)
        return await asyncio.to_thread(rename_class, project, label, str(body.get("name", "")))

    @app.post("/api/classes/{label}/remove")
    def remove_a_class(label: str) -> Any:
        return remove_class(project, label)

    @app.post("/api/classes/{label}/images")
    async def add_images(label: str, request: Request) -> Any:
        form = await request.form(max_files=MAX_FILES, max_fields=10)
        files = [(f.filename or "image", await f.read()) for f in form.getlist("files") if hasattr(f, "read")]
        if not files:
            raise HTTPException(400, "No images in the request (multipart field 'files').")
        return await asyncio.to_thread(project.add_images, label, files)

    @app.get("/api/image")
    def image(path: str) -> Any:
        from ..data.images import is_image_file

        file = project.inside(path)
        if not file.is_file() or not is_image_file(file):
            raise HTTPException(404, "No such image in the project.")
        return FileResponse(file, headers={"Cache-Control": "max-age=3600"})

    @app.get("/api/augment-preview")
    async def augment_preview(augment: str = "course", seed: int = 0) -> Any:
        """Six training images as the augmentation changes them (the picture `transferlab augment` draws)."""
        from ..data.augment import PRESETS

        if augment not in PRESETS:
            raise HTTPException(400, f"Augmentation must be one of {', '.join(PRESETS)}; got {augment[:20]!r}.")
        png = await asyncio.to_thread(_preview_png, project.root, augment, str(start_from["model"]),
                                      int(seed) % 10_000)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.get("/api/checks")
    def checks() -> Any:
        return project.checks()

    @app.post("/api/train")
    async def train(request: Request) -> Any:
        settings = await asyncio.to_thread(_settings, await _json(request), start_from)
        return _started(lambda: jobs.start(settings))

    @app.post("/api/jobs/{job_id}/stop")
    def stop(job_id: str) -> Any:
        return jobs.stop(job_id)

    @app.post("/api/jobs/{job_id}/resume")
    def resume(job_id: str) -> Any:
        job = jobs.state(job_id)
        if not job["resumable"]:
            raise HTTPException(409, "This job cannot be resumed: it finished, or it saved no checkpoint.")
        return _started(lambda: jobs.start(job["settings"], mode="resume", run=Path(job["run"]).name))

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str) -> Any:
        return jobs.state(job_id)

    @app.get("/api/jobs/{job_id}/events", response_class=EventSourceResponse)
    async def events(job_id: str, request: Request) -> Any:
        folder = jobs.job_dir(job_id)
        if not (folder / "job.json").is_file():
            raise HTTPException(404, f"No job {job_id!r}.")
        after = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
        seen = int(after) if after.isdigit() else 0
        while True:
            for event in read_events(folder / "events.jsonl", seen):
                seen = event["id"]
                yield ServerSentEvent(data=event, id=str(event["id"]), event=event["type"])
                if event["type"] in TERMINAL:
                    return
            if await request.is_disconnected():
                return
            status = (await asyncio.to_thread(jobs.state, job_id))["status"]
            if status == "interrupted" and not read_events(folder / "events.jsonl", seen):
                yield ServerSentEvent(data={"type": "interrupted"}, event="interrupted")
                return
            await asyncio.sleep(0.25)

    @app.get("/api/runs/{name}")
    def run(name: str) -> Any:
        return run_result(project, name, jobs)

    @app.post("/api/try")
    async def try_images(request: Request) -> Any:
        finished = [r for r in project.runs() if r["finished"]]
        if not finished:
            raise HTTPException(409, "Train a model first: there is no finished run to ask.")
        form = await request.form(max_files=20, max_fields=5)
        files = [(f.filename or "image", await f.read()) for f in form.getlist("files") if hasattr(f, "read")]
        return await asyncio.to_thread(_answers, project, finished[0]["name"], files, predictors)

    return app


def _preview_png(root: Path, augment: str, model: str, seed: int) -> bytes:
    import io

    from ..evaluation.grids import augment_preview

    figure = augment_preview(root, augment, model=model, count=6, seed=seed)  # the model's own input size
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=72)
    return buffer.getvalue()


def _answers(project: Project, run: str, files: list[tuple[str, bytes]], cache: dict[str, Any]) -> dict[str, Any]:
    """Top-3 answers of the run's own predictor (the one `predict` uses) for uploaded image bytes."""
    from ..inference.loading import load_predictor
    from .project import inspect_image

    if run not in cache:
        cache.clear()
        cache[run] = load_predictor(project.runs_dir / run)
    predictor = cache[run]
    results = []
    for name, data in files:
        problem, _ = inspect_image(data)
        if problem:
            results.append({"name": name, "error": problem})
            continue
        top = predictor.predict_images([predictor.decode(data)], top_k=min(3, len(predictor.labels)))[0]
        results.append({"name": name, "top": top})
    return {"run": run, "results": results}


def _started(start: Any) -> Any:
    from .jobs import JobBusy

    try:
        return start()
    except JobBusy as e:
        raise HTTPException(409, str(e)) from None


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise HTTPException(400, "The request body must be JSON.") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "The request body must be a JSON object.")
    return body


def _token_ok(request: Any, token: str) -> bool:
    given = (request.headers.get("x-studio-token") or request.cookies.get("studio_token")
             or request.query_params.get("token") or "")
    return secrets.compare_digest(given.encode(), token.encode())


def new_token() -> str:
    return secrets.token_urlsafe(24)

