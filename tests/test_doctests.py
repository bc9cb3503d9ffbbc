"""The examples in the docstrings run: every `>>>` line of the package is executed (as scikit-learn runs its own
with --doctest-modules), so an example that drifts from the code fails here. Examples that need the network or data
the tests do not make say `# doctest: +SKIP`."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import transferlab

MODULES = sorted(m.name for m in pkgutil.walk_packages(transferlab.__path__, "transferlab.")
                 if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name, globs={**vars(module)}):
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples in {name} failed (output above)"
