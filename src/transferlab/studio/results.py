"""A finished run as the studio shows it: metrics, the confusion matrix counted from the run's own answers on its
validation images (so that every cell opens exactly its images), and what changed since the run before."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..data.folder import _is_run
from ..errors import SettingError
from .project import Project

__all__ = ["run_result", "predictions_of", "compare_runs"]


def predictions_of(project: Project, run: str, jobs: Any) -> dict[str, Any] | None:
    """The validation answers the job that trained (or last resumed) `run` wrote, or None."""
    for job in jobs.all():
        path = jobs.job_dir(job["id"]) / "predictions.json"
        if Path(job["run"]).name == run and job["mode"] in ("train", "resume") and path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    return None


def compare_runs(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What a new run changed on the images both runs checked (matched by content, so a moved image is the same
    image): `fixed` were wrong and are right, `broke` were right and are wrong; each judged against the label the
    image had in that run (a corrected label makes a right answer count).

    Example:
        >>> a = {"images": [{"digest": "1", "label": "cat", "predicted": "dog"},
        ...                 {"digest": "2", "label": "dog", "predicted": "dog"}]}
        >>> b = {"images": [{"digest": "1", "label": "cat", "predicted": "cat"},
        ...                 {"digest": "2", "label": "dog", "predicted": "cat"}]}
        >>> {k: len(v) if isinstance(v, list) else v for k, v in compare_runs(a, b).items()}
        {'common': 2, 'fixed': 1, 'broke': 1}
    """
    old = {i["digest"]: i for i in before["images"] if i.get("digest")}
    fixed, broke, common = [], [], 0
    for item in after["images"]:
        prev = old.get(item.get("digest"))
        if prev is None:
            continue
        common += 1
        was, now = prev["predicted"] == prev["label"], item["predicted"] == item["label"]
        if now and not was:
            fixed.append(item)
        elif was and not now:
            broke.append(item)
    return {"common": common, "fixed": fixed, "broke": broke}


def run_result(project: Project, name: str, jobs: Any) -> dict[str, Any]:
    """A run as the page shows it: metrics.json, the validation images with the run's answers (most confidently
    wrong first), the confusion matrix counted from them, and the comparison with the previous finished run."""
    run = project.runs_dir / str(name)
    if "/" in str(name) or "\\" in str(name) or not _is_run(run):
        raise SettingError(f"No run {str(name)[:60]!r} in this project.")
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8")) if (run / "metrics.json").is_file() \
        else {}
    result: dict[str, Any] = {"name": run.name, "metrics": metrics, "labels": [], "matrix": [], "images": [],
                              "changes": None}
    predictions = predictions_of(project, run.name, jobs)
    if not predictions:
        return result
    labels = predictions["labels"]
    matrix = [[0] * len(labels) for _ in labels]
    for item in predictions["images"]:
        matrix[labels.index(item["label"])][labels.index(item["predicted"])] += 1
    images = sorted(predictions["images"], key=lambda i: (i["label"] == i["predicted"], -i["confidence"]))
    result.update(labels=labels, matrix=matrix, images=images,
                  accuracy=sum(matrix[i][i] for i in range(len(labels))) / max(1, len(images)))
    older = [r["name"] for r in project.runs() if r["finished"] and r["modified"] < run.stat().st_mtime]
    for previous in older:
        before = predictions_of(project, previous, jobs)
        if before:
            changes = compare_runs(before, predictions)
            result["changes"] = {"previous": previous, "common": changes["common"],
                                 "fixed": [i["path"] for i in changes["fixed"]],
                                 "broke": [i["path"] for i in changes["broke"]]}
            break
    return result
