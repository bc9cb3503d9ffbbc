"""Starting the studio: the address checks of `serve` (loopback unless a token; a free port), then uvicorn."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ..errors import SettingError
from .app import create_app, new_token
from .project import Project, remember

__all__ = ["run_studio"]


def run_studio(project: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 8765,
               token: str | None = None, allowed: list[str | os.PathLike[str]] | None = None,
               open_browser: bool = True, quiet: bool = False) -> None:
    """Serves the studio for `project` until Ctrl+C; prints the address (with the token, when there is one)."""
    import uvicorn

    from ..serve.app import _log_config, check_bind, check_port

    if token == "new":
        token = new_token()
    if token is not None and len(token) < 12:
        raise SettingError("--token must have at least 12 characters (or pass --token new for a random one).")
    try:
        check_bind(host, token)
    except SettingError:
        raise SettingError(f"The studio on {host!r} would be reachable from other machines: pass --token new (every "
                           "request must then carry it), or keep the default host 127.0.0.1.") from None
    check_port(host, port)
    missing = [str(a) for a in allowed or [] if not Path(a).expanduser().is_dir()]
    if missing:
        raise SettingError(f"--allow {missing[0]!r} is not a folder. Pass folders whose images may be imported.")
    folder = Project(Path(project))
    app = create_app(folder, token=token, allowed=list(allowed or []))
    remember(folder)
    shown = host
    address = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    if not quiet:
        print(f"transferlab studio: {folder.root}\nOpen {address}  (Ctrl+C stops the studio; a training job goes "
              "on and the page finds it again)", flush=True)
    if open_browser:
        import webbrowser

        threading.Timer(1.0, lambda: webbrowser.open(address)).start()
    uvicorn.run(app, host=host, port=port, log_level="warning", log_config=_log_config())
