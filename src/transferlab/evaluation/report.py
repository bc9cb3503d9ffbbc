"""report.html: one self-contained page per run (images embedded), written at the end of training and
after `evaluate`.

It shows the settings, the data (class counts, skipped files), the history plots, the final metrics, the
confusion matrix, per-class accuracy, the ROC curve (two classes), the misclassified images, the timings
and the environment. No scripts, no external files: it opens anywhere, offline, and can be mailed.

Example:
    >>> write_report("runs/cd")  # doctest: +SKIP
    PosixPath('runs/cd/report.html')
"""

from __future__ import annotations

import base64
import html
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from .._io import write_text
from ..runs.folder import RunFolder

__all__ = ["write_report"]

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI','Noto Sans KR',sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}td,th{border:1px solid #ddd;padding:.25em .6em;
text-align:left}th{background:#f4f6f8}td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;height:auto;border:1px solid #eee;margin:.4em 0}.muted{color:#666;font-size:.9em}
.cards{display:flex;flex-wrap:wrap;gap:.8em}.card{border:1px solid #ddd;border-radius:6px;padding:.5em 1em;
min-width:9em}.card b{display:block;font-size:1.4em}details pre{background:#f7f7f7;padding:.6em;overflow:auto}
"""


def _img(path: Path, alt: str) -> str:
    if not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _table(rows: list[list[Any]], header: list[str] | None = None) -> str:
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>")
    for row in rows:
        cells = []
        for v in row:
            num = isinstance(v, (int, float)) and not isinstance(v, bool)
            text = f"{v:.4f}" if isinstance(v, float) else str(v)
            cells.append(f'<td class="num">{text}</td>' if num else f"<td>{html.escape(text)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "".join(out) + "</table>"


def _duration(seconds: float) -> str:
    """'42.1 s', '3 min 05 s', '1 h 02 min'.

    Example:
        >>> _duration(10.26), _duration(185), _duration(3720)
        ('10.3 s', '3 min 05 s', '1 h 02 min')
    """
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _metric_cards(metrics: dict[str, Any], keys: list[tuple[str, str]]) -> str:
    cards = []
    for key, label in keys:
        value = metrics.get(key)
        if value is None:
            continue
        if key.endswith("seconds"):
            text = _duration(float(value))
        elif isinstance(value, float):
            text = f"{value:.4f}"
        else:
            text = html.escape(str(value))
        cards.append(f'<div class="card">{html.escape(label)}<b>{text}</b></div>')
    return '<div class="cards">' + "".join(cards) + "</div>"


def _eval_section(folder: Path, prefix: str, title: str) -> str:
    metrics = _read_json(folder / f"{prefix}eval_metrics.json")
    if not metrics:
        return ""
    k = next((key for key in metrics if key.startswith("top") and key.endswith("_accuracy")), None)
    source = html.escape(str(metrics.get("source")))
    parts = [f"<h2>{html.escape(title)}</h2>",
             f'<p class="muted">Evaluated on {source} — {metrics.get("images")} images in '
             f'{_duration(float(metrics.get("seconds") or 0))}.</p>',
             _metric_cards(metrics, [("accuracy", "accuracy"), *([(k, k.replace("_", " "))] if k else []),
                                     ("loss", "loss"), ("roc_auc", "ROC AUC"),
                                     ("expected_calibration_error", "calibration error (ECE)")])]
    if metrics.get("tta"):
        tta = metrics["tta"]
        kind = html.escape(str(tta.get("kind", "flip")))
        parts.append(f"<p>With test-time augmentation ({kind}): accuracy <b>{tta['accuracy']:.4f}</b>, loss "
                     f"{tta['loss']:.4f} (reported separately; the figures below are without it).</p>")
    per_class = metrics.get("per_class", {})
    rows = [[name, m["precision"], m["recall"], m["f1"], m["support"]] for name, m in per_class.items()]
    for avg in ("macro_avg", "weighted_avg"):
        if avg in metrics:
            rows.append([avg.replace("_", " "), metrics[avg]["precision"], metrics[avg]["recall"],
                         metrics[avg]["f1"], metrics.get("images", "")])
    parts.append(_table(rows, ["class", "precision", "recall", "F1", "support"]))
    for name, alt in (("confusion_matrix", "confusion matrix"), ("per_class", "per-class accuracy"),
                      ("roc", "ROC curve"), ("misclassified", "misclassified images")):
        parts.append(_img(folder / f"{prefix}{name}.png", alt))
    if metrics.get("skipped"):
        parts.append(f"<p>{len(metrics['skipped'])} image(s) could not be read and were left out.</p>")
    return "".join(parts)


def write_report(run_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None,
                 eval_dir: str | os.PathLike[str] | None = None) -> Path:
    """Builds report.html from the files of a run folder (and an evaluation's files in `eval_dir`).

    Args:
        run_dir: The run folder (config.yaml, metrics.json, history, data_report.json, ...).
        out: The HTML file; default `run_dir/report.html`.
        eval_dir: Where `evaluate` wrote its files, when not the run folder.
    """
    folder = RunFolder(run_dir)
    run = folder.path
    eval_folder = Path(eval_dir) if eval_dir else run
    config = folder.config()
    metrics = folder.metrics()
    data = folder.data_report()
    environment = config.pop("environment", {}) if isinstance(config, dict) else {}
    title = f"transferlab run: {run.name}"
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<meta name='viewport' content='width=device-width,initial-scale=1'><style>{CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p class='muted'>Model {html.escape(str(config.get('model', '?')))}, strategy "
             f"{html.escape(str(config.get('strategy', '?')))}, data {html.escape(str(config.get('data', '?')))}. "
             f"Report written {datetime.now().isoformat(timespec='seconds')}.</p>"]
    if metrics:
        parts.append("<h2>Result</h2>")
        parts.append(_metric_cards(metrics, [("best_val_accuracy", "best val_accuracy"),
                                             ("best_val_loss", "best val_loss"), ("best_epoch", "best epoch"),
                                             ("epochs_run", "epochs run"), ("wall_seconds", "wall time")]))
    if (run / "history.png").is_file():
        parts.append("<h2>Training history</h2>" + _img(run / "history.png", "training history"))
    parts.append(_eval_section(eval_folder, "", "Evaluation"))
    counts = data.get("counts") if isinstance(data, dict) else None
    if counts:
        classes = list(next(iter(counts.values())).keys())
        rows = [[c, *[counts[s].get(c, 0) for s in counts]] for c in classes]
        parts.append("<h2>Data</h2>" + _table(rows, ["class", *counts.keys()]))
    for warning in (data.get("warnings") or []) if isinstance(data, dict) else []:
        parts.append(f'<p class="warning"><b>Warning:</b> {html.escape(str(warning))}</p>')
    skipped = data.get("skipped") if isinstance(data, dict) else None
    if skipped:
        parts.append(f"<p>{len(skipped)} file(s) skipped:</p>"
                     + _table([[s.get("path", ""), s.get("reason", "")] for s in skipped[:50]], ["file", "reason"]))
    rows = folder.history()
    if rows:
        seconds = [float(r["seconds"]) for r in rows if r.get("seconds") is not None]
        parts.append("<h2>Timings</h2>" + _table(
            [["epochs", len(rows)], ["time per epoch (median)", _duration(sorted(seconds)[len(seconds) // 2])
                                     if seconds else ""], ["training in all", _duration(sum(seconds))]]))
    if config:
        parts.append("<h2>Settings</h2><details open><summary>config.yaml</summary><pre>"
                     + html.escape(yaml.safe_dump(config, sort_keys=False, allow_unicode=True)) + "</pre></details>")
    if environment:
        parts.append("<h2>Environment</h2>" + _table([[k, v] for k, v in environment.items()]))
    parts.append("</body></html>\n")
    return write_text(Path(out) if out else run / "report.html", "".join(parts))
