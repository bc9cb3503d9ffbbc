"""Training jobs of the studio: each in its own process, one at a time per project, followed through an
append-only event log that outlives the page and the server.

A job is a folder `PROJECT/.studio/jobs/<id>/` holding `job.json` (what to do, the process id), `events.jsonl`
(one JSON event per line, written only by the job's process: event *n* is line *n*, so a page that reloads asks
for the events after the last one it saw) and `log.txt` (the process's output). Stop sends SIGTERM, which training
turns into Ctrl+C: the best model so far is kept, and Resume continues from the last checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .._io import write_json
from ..errors import SettingError
from .project import Project

__all__ = ["Jobs", "TERMINAL", "read_events"]

TERMINAL = ("done", "failed", "stopped")  # the last event of a job that ended on its own terms


class JobBusy(SettingError):
    """A job is already running in this project."""


def read_events(path: Path, after: int = 0) -> list[dict[str, Any]]:
    """The events after the `after`-th (each with its number as "id"); a line still being written is left for
    the next read."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except OSError:
        return []
    out = []
    for number, line in enumerate(lines, 1):
        if number <= after:
            continue
        if not line.endswith("\n"):
            break
        try:
            out.append({**json.loads(line), "id": number})
        except ValueError:
            out.append({"type": "log", "message": "unreadable event", "id": number})
    return out


def _alive(pid: int, job_dir: Path) -> bool:
    """Whether the process `pid` still runs this job (a reused process id running something else does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            return str(job_dir).encode() in cmdline.read_bytes()
        except OSError:
            return True
    return True


class Jobs:
    """The jobs of one project; the server owns one.

    Example:
        >>> jobs = Jobs(Project("my-photos"))  # doctest: +SKIP
        >>> job = jobs.start({"strategy": "freeze", "epochs": 5})  # doctest: +SKIP
    """

    def __init__(self, project: Project) -> None:
        self.project = project
        self.root = project.studio_dir / "jobs"
        self._children: dict[str, subprocess.Popen] = {}

    def job_dir(self, job_id: str) -> Path:
        if not job_id.isalnum():
            raise SettingError(f"No job {job_id[:40]!r}.")
        return self.root / job_id

    def all(self) -> list[dict[str, Any]]:
        if not self.root.is_dir():
            return []
        return sorted((self.state(p.name) for p in self.root.iterdir() if (p / "job.json").is_file()),
                      key=lambda j: j["id"], reverse=True)

    def latest(self, modes: tuple[str, ...] = ("train", "resume")) -> dict[str, Any] | None:
        """The newest job of these modes (training by default; exports are followed apart)."""
        return next((j for j in self.all() if j["mode"] in modes), None)

    def running(self) -> dict[str, Any] | None:
        return next((j for j in self.all() if j["status"] == "running"), None)

    def state(self, job_id: str) -> dict[str, Any]:
        """The job as the page shows it: its settings, run folder, status, the last epoch and the result."""
        folder = self.job_dir(job_id)
        try:
            job = json.loads((folder / "job.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise SettingError(f"No job {job_id[:40]!r}.") from None
        events = read_events(folder / "events.jsonl")
        ended = next((e for e in reversed(events) if e["type"] in TERMINAL), None)
        child = self._children.get(job_id)
        if child is not None:
            child.poll()  # reaps an ended child
        if ended is not None:
            status = ended["type"]
        elif _alive(int(job.get("pid") or 0), folder) if job.get("pid") else False:
            status = "running"
        else:
            status = "interrupted"  # the process ended without a last word: killed, or the machine went down
        run = Path(job["run"])
        resumable = status in ("stopped", "interrupted") and (run / "last.ckpt").is_file()
        return {**job, "status": status, "resumable": resumable, "events": len(events),
                "result": ended if ended is not None else None}

    def start(self, settings: dict[str, Any], mode: str = "train", run: str | None = None) -> dict[str, Any]:
        """Starts a job in a new process; refuses while another job of this project runs."""
        busy = self.running()
        if busy is not None:
            raise JobBusy(f"A job is already running ({busy['id']}, {busy['mode']}). Wait for it or stop it first: "
                          "one job at a time keeps the computer responsive.")
        job_id = time.strftime("%Y%m%d%H%M%S") + f"{int(time.time() * 1000) % 1000:03d}"
        folder = self.job_dir(job_id)
        if mode == "resume":
            if run is None or not (self.project.runs_dir / run / "last.ckpt").is_file():
                raise SettingError(f"Run {str(run)[:60]!r} has no checkpoint to resume from.")
            run_dir = self.project.runs_dir / run
        elif mode == "export":
            if run is None or "/" in run or not (self.project.runs_dir / run / "model.safetensors").is_file():
                raise SettingError(f"Run {str(run)[:60]!r} has no finished model to export.")
            run_dir = self.project.runs_dir / run
        else:
            run_dir = self.project.new_run_dir(str(settings["model"]).replace(":", "_").replace("/", "_"))
        folder.mkdir(parents=True)
        job = {"id": job_id, "mode": mode, "settings": settings, "run": str(run_dir),
               "project": str(self.project.root), "created": time.time()}
        write_json(folder / "job.json", job)
        log = open(folder / "log.txt", "ab")  # noqa: SIM115 - the child writes it; closed below once handed over
        try:
            child = subprocess.Popen([sys.executable, "-m", "transferlab.studio.worker", str(folder)],
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        finally:
            log.close()
        self._children[job_id] = child
        job["pid"] = child.pid
        write_json(folder / "job.json", job)
        self.project.journal("job", id=job_id, mode=mode, run=run_dir.name)
        return self.state(job_id)

    def stop(self, job_id: str) -> dict[str, Any]:
        """Asks the job to stop (SIGTERM: training keeps the best model so far and can be resumed)."""
        state = self.state(job_id)
        if state["status"] != "running":
            return state
        try:
            os.kill(int(state["pid"]), signal.SIGTERM)
        except ProcessLookupError:
            pass
        return state

    def wait(self, job_id: str, timeout: float = 600) -> dict[str, Any]:
        """Blocks until the job has ended (tests and scripts)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state(job_id)
            if state["status"] != "running":
                return state
            time.sleep(0.2)
        raise TimeoutError(f"job {job_id} still running after {timeout} s")
