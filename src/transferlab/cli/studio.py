"""`transferlab studio [PROJECT]`: the local web app (add images, check, train, inspect, try) on one folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import user_errors


@user_errors
def studio(
    project: Annotated[Path | None, typer.Argument(help="Project folder: class folders of images (new or existing); "
                                                       "default the last project opened, else ./studio-project.",
                                                  show_default=False)] = None,
    host: Annotated[str, typer.Option(help="Address to listen on; anything but loopback needs --token.")] =
    "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8765,
    token: Annotated[str | None, typer.Option(help="A secret every request must carry (printed in the address); "
                                                   "required off loopback. 'new' makes one.")] = None,
    allow: Annotated[list[Path] | None, typer.Option(help="A folder of this computer whose images the page may "
                                                          "import without uploading (repeatable; read only).")]
    = None,
    open_browser: Annotated[bool, typer.Option("--open/--no-open", help="Open the page in the browser.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors (the page still opens "
                                                              "unless --no-open).")] = False,
) -> None:
    """Open a project in your browser: add images to classes, check them, train, see the mistakes, try the model.

    Everything stays on this computer. PROJECT is a plain folder: PROJECT/<class>/*.jpg, runs in PROJECT/runs/.

    `transferlab train PROJECT` and notebooks read the same folder.

    Example: transferlab studio my-photos --allow ~/Pictures
    """
    from ..studio.project import recent_projects
    from ..studio.server import run_studio

    if project is None:
        recent = recent_projects()
        project = Path(recent[0]) if recent else Path("studio-project")

    run_studio(project, host=host, port=port, token=token, allowed=allow or [], open_browser=open_browser,
               quiet=quiet)
