"""The course notebooks (examples/notebooks/) run in QUICK mode, offline, and assert what they teach; they are
committed without outputs; an executed one renders its plots and epoch table inline."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

FOLDER = Path(__file__).resolve().parents[1] / "examples" / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("*.ipynb"))
HANGUL = re.compile("[\uac00-\ud7a3]")


_EXECUTED: dict[str, nbformat.NotebookNode] = {}


def execute(path: Path, cwd: Path) -> nbformat.NotebookNode:
    """Runs a copy of the notebook in `cwd` (its runs/ and data/ go there) with the kernel of this Python; kept
    for the rendering test, so that no notebook runs twice."""
    if path.name not in _EXECUTED:
        notebook = nbformat.read(path, as_version=4)
        client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                         resources={"metadata": {"path": str(cwd)}})
        client.execute()
        _EXECUTED[path.name] = notebook
    return _EXECUTED[path.name]


def test_every_part_of_the_course_has_a_notebook():
    names = [p.name for p in NOTEBOOKS]
    assert names == ["01_cats_vs_dogs.ipynb", "02_imagenet_classification.ipynb", "03_cifar10.ipynb",
                     "04_regularization.ipynb", "05_huggingface.ipynb"]


def test_committed_notebooks_are_what_tools_notebooks_writes(tmp_path):
    """The cells are written in tools/notebooks.py; the committed files must not drift from it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("notebooks_tool", FOLDER.parents[1] / "tools" / "notebooks.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    for written in tool.write(tmp_path):
        assert written.read_text(encoding="utf-8") == (FOLDER / written.name).read_text(encoding="utf-8"), (
            f"{written.name} differs from tools/notebooks.py: run `python tools/notebooks.py`")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_committed_without_outputs_and_start_korean_then_quick(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"{path.name}: strip the outputs"
    first, params = notebook["cells"][0], notebook["cells"][1]
    text = "".join(first["source"])
    assert first["cell_type"] == "markdown" and HANGUL.search(text)
    assert HANGUL.search(text).start() < text.index("English")  # Korean first, as the course
    assert params["cell_type"] == "code" and "".join(params["source"]).startswith("QUICK = True")


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_quick_mode(path, tmp_path):
    """Executes the notebook as `make test` ships it (QUICK = True): any error or failed assert fails the test."""
    notebook = execute(path, tmp_path)
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    html_outputs = [o for c in notebook.cells for o in c.get("outputs", []) if "text/html" in o.get("data", {})]
    if path.name != "04_regularization.ipynb":  # training notebooks show their results inline
        assert any("data:image/" in o["data"]["text/html"] for o in html_outputs)


@pytest.mark.slow
@pytest.mark.heavy
def test_executed_notebook_renders_its_plots_and_epoch_table_in_a_browser(tmp_path):
    """nbconvert's HTML of the executed Exercise 1, opened in headless Chromium: the pictures decode, the epoch
    tables have a row per epoch, the result cards are there."""
    from nbconvert import HTMLExporter

    from .browser import browser_page, chromium_or_skip

    executable = chromium_or_skip()
    notebook = execute(FOLDER / "01_cats_vs_dogs.ipynb", tmp_path)
    html, _ = HTMLExporter().from_notebook_node(notebook)
    page_file = tmp_path / "01.html"
    page_file.write_text(html, encoding="utf-8")
    with browser_page(executable) as (page, errors):
        page.goto(page_file.as_uri())
        decoded = page.eval_on_selector_all("img", "els => els.filter(e => e.complete && e.naturalWidth > 0).length")
        rows = page.eval_on_selector_all("table.transferlab-epochs tbody tr", "els => els.length")
        text = page.inner_text("body")
        page.screenshot(path=str(tmp_path / "01.png"), full_page=True)
    # augment preview, 3 runs x (history + confusion matrix + misclassified), plot_history grid, predictions, evaluate
    assert decoded >= 12
    assert rows == 3 + 3 + 4  # course CNN 3 epochs, freeze 3, two-phase 2 + 2
    assert "best val_accuracy" in text and "3,453,121 parameters" in text
    # the template's CDN scripts cannot load on a closed network; nothing else may fail
    assert not [e for e in errors if "ERR_NAME_NOT_RESOLVED" not in e and "ERR_INTERNET_DISCONNECTED" not in e]
