"""`transferlab serve`: a trained model as a web service (FastAPI + uvicorn); its options are `ServeConfig`'s."""

from __future__ import annotations

import inspect
import os
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

from ..serve.config import API_KEY_ENV, ServeConfig
from ._common import user_errors
from ._settings_options import given_settings, settings_parameters

PANELS = {
    "Address": ("host", "port", "workers", "api_key"),
    "Inference": ("max_batch", "wait_ms", "batching", "top_k"),
    "Limits": ("max_upload_mb", "max_total_upload_mb", "max_pixels", "decode_slots", "max_files", "timeout_s",
               "client_timeout", "max_connections"),
}


def _serve(model: Path, *, quiet: bool = False, **options: Any) -> None:
    """Serve a page (drop images, see labels) and a JSON API: POST /predict, GET /health, GET /model, /docs.

    Example: transferlab serve runs/cd --port 8000   (then open http://127.0.0.1:8000)
    """
    settings = given_settings(options, {f.name for f in fields(ServeConfig)})
    settings.setdefault("api_key", os.environ.get(API_KEY_ENV) or None)
    config = ServeConfig(**settings)  # every value checked (ranges, finite numbers) before anything starts
    from ..serve.app import run_server

    run_server(model, config, quiet=quiet)


_parameters = [
    inspect.Parameter("model", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Annotated[
        Path, typer.Argument(help="Run folder, bundle folder or ONNX export folder.")]),
    *settings_parameters(ServeConfig, PANELS),
    inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
        bool, typer.Option("--quiet", "-q", help="Log warnings and errors only (no access log).")]),
]
_serve.__signature__ = inspect.Signature(_parameters)  # type: ignore[attr-defined]
_serve.__annotations__ = {p.name: p.annotation for p in _parameters}
serve = user_errors(_serve)
serve.__name__ = "serve"
