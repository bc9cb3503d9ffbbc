"""Fixing the data from the page: move an image to another class (relabel), remove it (into the project's trash),
and undo, newest first. Every change is a line of PROJECT/.studio/journal.jsonl; nothing is deleted: a removed
image waits in PROJECT/.studio/trash/ (hidden, so never read as data) until the user empties it by hand."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ..data.images import is_image_file
from ..errors import SettingError
from .project import Project, _free_name, class_name

__all__ = ["move_image", "remove_image", "rename_class", "remove_class", "undo", "journal"]

UNDOABLE = ("move", "remove", "rename_class", "remove_class")


def journal(project: Project) -> list[dict[str, Any]]:
    """The journal's entries, oldest first (each with its line number as "id")."""
    path = project.studio_dir / "journal.jsonl"
    if not path.is_file():
        return []
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            out.append({**json.loads(line), "id": number})
        except ValueError:
            continue
    return out


def _class_image(project: Project, relative: str) -> Path:
    """An image file of a class folder (not of a run, the trash or anything else) from its project path."""
    path = project.inside(relative)
    classes = {d.resolve() for d in project.class_dirs()}
    if project.layout == "split":
        validation = project.root / "validation"
        classes |= {d.resolve() for d in validation.iterdir() if d.is_dir()} if validation.is_dir() else set()
    if not path.is_file() or not is_image_file(path) or not any(c in path.parents for c in classes):
        raise SettingError(f"{str(relative)[:80]!r} is not an image of a class of this project (it may have been "
                           "moved or removed already: reload the page).")
    return path


def move_image(project: Project, relative: str, label: str) -> dict[str, Any]:
    """Moves an image into the class `label` (in split layout, within its split): a new label, not a copy."""
    source = _class_image(project, relative)
    name = class_name(label)
    if not project.class_folder(name).is_dir():
        raise SettingError(f"Class {name!r} does not exist. Create it first.")
    split_root = project.root / "validation" if project.layout == "split" and \
        (project.root / "validation") in source.parents else project.data_root
    folder = split_root / name
    if source.parent == folder:
        raise SettingError(f"{relative!r} is already in class {name!r}.")
    folder.mkdir(parents=True, exist_ok=True)
    target = _free_name(folder / source.name)
    os.replace(source, target)
    project.forget_digests()
    entry = {"from": project.relative(source), "to": project.relative(target), "label": name}
    project.journal("move", **entry)
    return entry


def remove_image(project: Project, relative: str) -> dict[str, Any]:
    """Moves an image into PROJECT/.studio/trash/<time>/<its path>: out of the data, kept for undo."""
    source = _class_image(project, relative)
    target = _free_name(project.studio_dir / "trash" / time.strftime("%Y%m%d-%H%M%S") / project.relative(source))
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)
    project.forget_digests()
    entry = {"from": project.relative(source), "to": project.relative(target)}
    project.journal("remove", **entry)
    return entry


def _class_folders(project: Project, label: str) -> list[Path]:
    """A class's folders: PROJECT/<class>, or train/<class> and validation/<class> in split layout."""
    name = class_name(label)
    folders = [project.class_folder(name)]
    if project.layout == "split":
        folders.append(project.root / "validation" / name)
    if not folders[0].is_dir():
        raise SettingError(f"Class {name!r} does not exist.")
    return [f for f in folders if f.is_dir()]


def rename_class(project: Project, label: str, new: str) -> dict[str, Any]:
    """Renames a class (its folders); refuses a name another class has."""
    folders = _class_folders(project, label)
    name = class_name(new)
    taken = {p.name.lower() for p in project.class_dirs()} - {folders[0].name.lower()}
    if name.lower() in taken:
        raise SettingError(f"Class {name!r} already exists: move its images instead, or choose another name.")
    moves = [(f, f.with_name(name)) for f in folders]
    for source, target in moves:
        os.replace(source, target)
    project.forget_digests()
    entry = {"moves": [[project.relative(s), project.relative(t)] for s, t in moves], "label": folders[0].name,
             "new": name}
    project.journal("rename_class", **entry)
    return entry


def remove_class(project: Project, label: str) -> dict[str, Any]:
    """Moves a class's folders, images and all, into the trash (undo brings them back)."""
    folders = _class_folders(project, label)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    moves = []
    for folder in folders:
        target = _free_name(project.studio_dir / "trash" / stamp / project.relative(folder))
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(folder, target)
        moves.append([project.relative(folder), project.relative(target)])
    project.forget_digests()
    project.journal("remove_class", moves=moves, label=folders[0].name)
    return {"label": folders[0].name, "moves": moves}


def undo(project: Project) -> dict[str, Any]:
    """Reverses the newest change not yet undone: an image moved or removed (it goes back; a name taken
    meanwhile gets a new one), a class renamed or removed."""
    entries = journal(project)
    undone = {e.get("of") for e in entries if e["action"] == "undo"}
    last = next((e for e in reversed(entries) if e["action"] in UNDOABLE and e["id"] not in undone), None)
    if last is None:
        raise SettingError("Nothing to undo: no image or class was moved, renamed or removed.")
    moves = last.get("moves") or [[last["from"], last["to"]]]
    missing = [to for _, to in moves if not (project.root / to).exists()]
    if missing:
        raise SettingError(f"Cannot undo: {missing[0]!r} is no longer there (moved or deleted outside the studio).")
    taken = [origin for origin, _ in moves if last["action"] in ("rename_class", "remove_class")
             and (project.root / origin).exists()]
    if taken:
        raise SettingError(f"Cannot undo: {taken[0]!r} exists again. Rename it first.")
    backs = []
    for origin, to in reversed(moves):
        back = _free_name(project.root / origin)
        back.parent.mkdir(parents=True, exist_ok=True)
        os.replace(project.root / to, back)
        backs.append(project.relative(back))
    project.forget_digests()
    entry = {"of": last["id"], "undid": last["action"], "path": backs[-1]}
    project.journal("undo", **entry)
    return entry
