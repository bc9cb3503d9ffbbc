"""`transferlab serve`: a trained model as a web service (FastAPI + uvicorn)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ..errors import SettingError
from ._common import user_errors


@user_errors
def serve(
    model: Annotated[Path, typer.Argument(help="Run folder, bundle folder or ONNX export folder.")],
    host: Annotated[str, typer.Option(help="Address to bind; other than loopback needs --api-key.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (1-65535).", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes (each loads the model).")] = 1,
    api_key: Annotated[str | None, typer.Option(help="Required on every request (or TRANSFERLAB_API_KEY).")] = None,
    max_batch: Annotated[int, typer.Option(help="Most images run together (micro-batching).")] = 32,
    wait_ms: Annotated[float, typer.Option(help="Micro-batching window in milliseconds.")] = 5.0,
    no_batching: Annotated[bool, typer.Option("--no-batching", help="One request at a time.")] = False,
    max_upload_mb: Annotated[float, typer.Option(help="Largest upload per image.")] = 20.0,
    max_pixels: Annotated[int, typer.Option(help="Largest image (width x height); bigger ones get 413 before "
                                                  "decoding. With --decode-slots it bounds decoding memory "
                                                  "(about 4 bytes per pixel per slot).")] = 24_000_000,
    decode_slots: Annotated[int, typer.Option(help="Images decoded at the same time, across requests.")] = 2,
    timeout_s: Annotated[float, typer.Option(help="Request timeout in seconds (504).")] = 30.0,
    client_timeout: Annotated[float, typer.Option(help=(
        "Seconds a client has to send its whole request (headers and upload); stalled connections are closed."))
    ] = 20.0,
    max_connections: Annotated[int, typer.Option(help="Open connections at once; more are answered 503.")] = 512,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Log warnings and errors only (no access log).")] = False,
) -> None:
    """Serve a page (drop images, see labels) and a JSON API: POST /predict, GET /health, GET /model, /docs.

    Example: transferlab serve runs/cd --port 8000   (then open http://127.0.0.1:8000)
    """
    import uvicorn

    from ..serve.app import API_KEY_ENV, ServeConfig, check_bind, create_app
    from ..serve.connections import uvicorn_limits

    level = "warning" if quiet else "info"
    key = api_key or os.environ.get(API_KEY_ENV)
    check_bind(host, key)
    if client_timeout <= 0 or max_connections < 1:
        raise SettingError("--client-timeout must be > 0 seconds and --max-connections at least 1 (e.g. 20 and 256).")
    limits = uvicorn_limits(client_timeout=client_timeout, max_connections=max_connections)
    if max_pixels < 1 or decode_slots < 1:
        raise SettingError("--max-pixels and --decode-slots must be at least 1 (e.g. 24000000 and 2).")
    config = ServeConfig(max_batch=max_batch, wait_ms=wait_ms, batching=not no_batching, max_upload_mb=max_upload_mb,
                         timeout_s=timeout_s, api_key=key, max_pixels=max_pixels, decode_slots=decode_slots)
    if workers > 1:  # uvicorn's worker processes import the app by factory
        os.environ["TRANSFERLAB_SERVE_MODEL"] = str(model)
        os.environ["TRANSFERLAB_SERVE_CONFIG"] = __import__("json").dumps(config.__dict__)
        uvicorn.run("transferlab.serve.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level=level, access_log=not quiet, **limits)
    else:
        uvicorn.run(create_app(model, config), host=host, port=port, log_level=level, access_log=not quiet, **limits)
