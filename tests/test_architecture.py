"""The package's structure: import contracts (import-linter), no cycles, lazy loading, module sizes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "transferlab"


def test_import_contracts_hold():
    """The layer contracts in pyproject.toml ([tool.importlinter]) are kept."""
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    result = subprocess.run([sys.executable, "-c", code, "--config", str(ROOT / "pyproject.toml")],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_no_import_cycles():
    """No module imports (directly or through others, function-level imports included) a module that imports it."""
    import grimp

    graph = grimp.build_graph("transferlab")
    cycles = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if graph.find_shortest_chain(importer=imported, imported=module):
                cycles.add(tuple(sorted((module, imported))))
    assert not cycles, f"import cycles: {sorted(cycles)}"


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("code", [
    "import transferlab; transferlab.__version__",
    "import transferlab.inference; transferlab.inference.Predictor",
    "import transferlab.serve; transferlab.serve.create_app",
    "import transferlab.evaluation.metrics",
    "import transferlab.cli",
])
def test_inference_serving_and_the_cli_load_no_lightning(code):
    loaded = _loaded_after(code)
    assert "lightning" not in loaded and "pytorch_lightning" not in loaded
    # the settings and the strategy registry (torch-free) generate `train --help`; nothing else of training loads
    assert not {m for m in loaded if m.startswith("transferlab.training.")} - {"transferlab.training.config",
                                                                               "transferlab.training.strategies"}


@pytest.mark.parametrize("code", ["import transferlab", "import transferlab.cli",
                                  "import transferlab.inference.onnx_reader", "import transferlab.models.table",
                                  "from transferlab.inference import load_predictor, predict",
                                  "import transferlab.cli.predict"])
def test_help_root_and_the_onnx_reader_load_no_torch(code):
    """`transferlab --help`, `transferlab models`, the exported ONNX reader and the choice of an engine (so that a
    run with a current ONNX export is predicted without torch) need no torch."""
    assert "torch" not in _loaded_after(code)


def test_lazy_names_resolve_to_their_owners():
    import transferlab
    from transferlab.inference.predictor import Predictor
    from transferlab.training.config import TrainConfig

    assert transferlab.Predictor is Predictor and transferlab.TrainConfig is TrainConfig
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        transferlab.nope  # noqa: B018


def test_no_module_over_400_lines_without_a_reason():
    """A module longer than 400 lines says why at its top ("Over 400 lines: ...")."""
    long = []
    for path in PACKAGE.rglob("*.py"):
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > 400 and not any("Over 400 lines:" in line for line in lines[:30]):
            long.append(f"{path.relative_to(PACKAGE)} ({len(lines)} lines)")
    assert not long, long
