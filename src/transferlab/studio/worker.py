"""The process of one studio job: `python -m transferlab.studio.worker JOB_DIR`.

It trains (or resumes) with the library's own `train` / `resume`, appends one event per epoch to
JOB_DIR/events.jsonl, then scores the validation images with the run's own predictor (the answers `predict`
gives) so that the page can show which images were confused, and ends with one terminal event: done, stopped or
failed. The server never trains: a page stays fast while this process works.
"""

from __future__ import annotations

import json
import math
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from .jobs import Jobs
from .project import Project

__all__ = ["EventLog", "main"]


class EventLog:
    """Appends events, one JSON line each, flushed at once (the server reads them while the job runs)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def emit(self, kind: str, **data: Any) -> None:
        """Appends one event; NaN and infinite numbers (a diverging run) become null, which JSON can hold."""
        data = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in data.items()}
        line = json.dumps({"type": kind, "time": round(time.time(), 3), **data}, ensure_ascii=False,
                          default=str, allow_nan=False)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()


def _epoch_callback(events: EventLog) -> Any:
    import lightning as L
    from lightning.pytorch.callbacks import Callback

    from ..runs.history import metric_row
    from ..training.callbacks.history import HistoryCallback

    class EpochEvents(Callback):
        """One event per epoch: the numbers of history.csv, the phase and how many epochs the phase allows."""

        def __init__(self) -> None:
            self.phase, self.offset, self.started = 1, 0, time.perf_counter()

        def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            history = next((c for c in trainer.callbacks if isinstance(c, HistoryCallback)), None)
            if history is not None:
                self.phase, self.offset = history.phase, history.offset
            events.emit("phase", phase=self.phase, max_epochs=trainer.max_epochs, first_epoch=self.offset + 1)

        def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self.started = time.perf_counter()

        def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            row = metric_row(trainer.callback_metrics)
            events.emit("epoch", phase=self.phase, epoch=self.offset + trainer.current_epoch + 1,
                        phase_epoch=trainer.current_epoch + 1, max_epochs=trainer.max_epochs,
                        seconds=round(time.perf_counter() - self.started, 3), **row)

    return EpochEvents()


def validation_predictions(run_dir: Path, project_root: Path) -> dict[str, Any]:
    """Every validation image of the run with its true label, the label the run's predictor gives, and the
    probabilities of both (the confusion matrix's cells and the most confidently wrong images)."""
    from .._io import file_digest
    from ..inference.loading import load_predictor
    from ..runs.folder import RunFolder

    rows = [r for r in RunFolder(run_dir).split_rows() if r.get("split") == "validation"]
    predictor = load_predictor(run_dir, engine="pytorch")
    labels = list(predictor.labels)
    probs, _, failed = predictor.predict_proba([r["path"] for r in rows], batch_size=32)
    out = []
    for i, row in enumerate(rows):
        if i in failed or row["label"] not in labels:
            continue
        truth, guess = labels.index(row["label"]), int(probs[i].argmax())
        try:
            path = Path(row["path"]).resolve().relative_to(project_root).as_posix()
        except ValueError:
            path = row["path"]
        out.append({"path": path, "digest": file_digest(row["path"]), "label": row["label"], "predicted": labels[guess],
                    "confidence": round(float(probs[i][guess]), 4), "p_label": round(float(probs[i][truth]), 4)})
    return {"labels": labels, "images": out}


EXPORTS = ("bundle", "onnx", "hf")  # what the page offers to download, each as one .zip
MAX_PROBABILITY_DIFF = 1e-3  # an export answers like the studio: same labels, probabilities within this


def export_zip(project: Project, jobs: Jobs, run_dir: Path, fmt: str) -> dict[str, Any]:
    """Exports a run with the library's own export (its parity report), checks the result against the answers
    the studio showed for the run's validation images, and packs it as one .zip in PROJECT/.studio/exports/."""
    import zipfile

    from .._io import atomic_path
    from ..deploy.export import export_hf, export_model
    from ..errors import ParityError
    from ..inference.loading import load_predictor
    from ..runs.files import BUNDLE_FILES
    from .results import predictions_of

    if fmt == "bundle":
        folder, files, report = run_dir, [run_dir / name for name in BUNDLE_FILES], {}
    else:
        report = export_hf(run_dir) if fmt == "hf" else export_model(run_dir, "onnx")
        folder = Path(report["folder"]) if "folder" in report else run_dir / f"export-{fmt}"
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    check = {"library_parity": report.get("parity")}
    shown = (predictions_of(project, run_dir.name, jobs) or {"images": []})["images"]
    if fmt in ("bundle", "onnx") and shown:  # the file's own reader on the images the page showed
        predictor = load_predictor(folder, engine="pytorch" if fmt == "bundle" else "auto")
        paths = [str(project.root / i["path"]) for i in shown]
        probs, _, failed = predictor.predict_proba(paths)
        labels = list(predictor.labels)
        keep = [k for k in range(len(shown)) if k not in failed]
        agree = sum(labels[int(probs[k].argmax())] == shown[k]["predicted"] for k in keep)
        diff = max((abs(float(probs[k].max()) - shown[k]["confidence"]) for k in keep), default=0.0)
        check.update(images=len(keep), same_answers=agree, max_probability_diff=round(diff, 6),
                     engine=predictor.engine_name)
        if agree != len(keep) or diff > MAX_PROBABILITY_DIFF:
            raise ParityError(f"The {fmt} export answers differently from the studio on {len(keep) - agree} of "
                                f"{len(keep)} validation images (max |Δprobability| {diff:.2g}); it is not "
                                "offered. Train again, or export with the command line to inspect it.")
    target = project.studio_dir / "exports" / f"{run_dir.name}-{fmt}.zip"
    with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in files:
            archive.write(file, f"{run_dir.name}-{fmt}/{file.relative_to(folder).as_posix()}")
    return {"file": target.name, "size_mb": round(target.stat().st_size / 2**20, 2), "check": check}


def main(job_dir: str) -> int:
    folder = Path(job_dir)
    job = json.loads((folder / "job.json").read_text(encoding="utf-8"))
    events = EventLog(folder / "events.jsonl")
    run_dir, project = Path(job["run"]), Path(job["project"])
    events.emit("started", mode=job["mode"], run=run_dir.name)
    from ..errors import TransferlabError

    try:
        from ..training.api import train
        from ..training.fit import resume

        if job["mode"] == "export":
            fmt = job["settings"]["format"]
            events.emit("exporting", format=fmt)
            done = export_zip(Project(project), Jobs(Project(project)), run_dir, fmt)
            events.emit("done", run=run_dir.name, export=done)
            return 0
        callback = _epoch_callback(events)
        if job["mode"] == "resume":  # the chart shows the whole run: the epochs trained before come first
            from ..runs.folder import RunFolder

            for row in RunFolder(run_dir).history():
                events.emit("epoch", replayed=True, phase=int(row.get("phase") or 1), epoch=int(row["epoch"]),
                            **{k: row.get(k) for k in ("loss", "accuracy", "val_loss", "val_accuracy", "seconds")})
            result = resume(run_dir, quiet=False, callbacks=[callback])
        else:
            result = train(str(project), out=str(run_dir), quiet=False, callbacks=[callback], **job["settings"])
        events.emit("scoring")
        predictions = validation_predictions(run_dir, project)
        from .._io import write_json

        write_json(folder / "predictions.json", predictions)
        metrics = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float, str, bool)) or v is None}
        events.emit("done", run=run_dir.name, metrics=metrics)
        return 0
    except KeyboardInterrupt:
        events.emit("stopped", run=run_dir.name, resumable=(run_dir / "last.ckpt").is_file())
        return 0
    except TransferlabError as e:
        events.emit("failed", message=str(e))
        return 1
    except Exception as e:  # noqa: BLE001 - the page says what happened; the log holds the traceback
        traceback.print_exc()
        events.emit("failed", message=f"{type(e).__name__}: {str(e)[:500]} (details in {folder / 'log.txt'})")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
