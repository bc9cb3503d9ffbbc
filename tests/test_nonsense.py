"""Every option of every command, given nonsense (nan, inf, 0, -1, a word, a 400-digit number), gets a clean answer:
a message and exit 2, never a traceback or "Internal error". The work each command would do is replaced by a stand-in
that says it was reached, so that values that are fine do not start real work."""

from __future__ import annotations

import contextlib

import pytest
import typer
from typer.testing import CliRunner

from transferlab.cli import app
from transferlab.errors import TransferlabError

NONSENSE = ["nan", "inf", "0", "-1", "abc", "9" * 400]
# what each command does once its input is accepted (module, attribute): replaced by `_reached`
WORK = [("transferlab.training.fit", "fit"), ("transferlab.training.fit", "resume"),
        ("transferlab.inference.loading", "load_predictor"), ("transferlab.evaluation.metrics", "evaluate"),
        ("transferlab.deploy.export", "export_model"), ("transferlab.serve.app", "run_server"),
        ("transferlab.training.advise", "advise"), ("transferlab.workflows.budget", "advise_within"),
        ("transferlab.workflows.benchmark", "benchmark_models"), ("transferlab.evaluation.grids", "augment_preview"),
        ("transferlab.data.download", "get_dataset"), ("transferlab.data.info", "data_info"),
        ("transferlab.data.shards", "write_shards"), ("transferlab.workflows.study", "regularization_study"),
        ("transferlab.inference.classify", "classify"), ("transferlab.inference.classify", "imagenet_predictor"),
        ("transferlab.models", "build_classifier"), ("transferlab.models", "create_model"),
        ("transferlab.cli.demo", "_run_demo")]


class Reached(TransferlabError):
    exit_code = 3


def _reached(*args, **kwargs):
    raise Reached("the command's work was reached")


def _commands():
    group = typer.main.get_command(app)

    def walk(g, prefix):
        for name, command in g.commands.items():
            if hasattr(command, "commands"):
                yield from walk(command, [*prefix, name])
            else:
                yield [*prefix, name], command

    for path, command in walk(group, []):
        arguments = [p for p in command.params if type(p).__name__ == "TyperArgument"]
        options = [p for p in command.params if type(p).__name__ == "TyperOption" and not p.hidden
                   and not getattr(p, "is_flag", False) and p.name not in ("out", "config", "resume", "plot", "help")]
        yield path, len(arguments), options


CASES = [(path, n, option.opts[0], value) for path, n, options in _commands() for option in options
         for value in NONSENSE]


@pytest.fixture
def no_work(monkeypatch):
    import importlib

    for module, name in WORK:
        with contextlib.suppress(ImportError, AttributeError):
            if hasattr(importlib.import_module(module), name):
                monkeypatch.setattr(f"{module}.{name}", _reached)


@pytest.mark.parametrize(("path", "arguments", "flag", "value"), CASES,
                         ids=[f"{' '.join(p)} {f} {v[:8]}" for p, _, f, v in CASES])
def test_nonsense_in_any_option_is_answered_cleanly(tmp_path, no_work, path, arguments, flag, value):
    image = tmp_path / "x.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(image)
    args = [*path, *([str(image)] * arguments), flag, value]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "100"})
    text = result.output
    assert "Traceback" not in text and "Internal error" not in text, text
    assert result.exit_code in (2, 3), (result.exit_code, text)  # refused (2) or accepted, reaching the work (3)


def _run_cli(*args: str, env: dict | None = None):
    """The CLI in a fresh interpreter; prints, at exit, whether torch was loaded."""
    import os
    import subprocess
    import sys

    code = ("import atexit, sys\natexit.register(lambda: print('torch loaded:', 'torch' in sys.modules))\n"
            "from transferlab.cli import main\nsys.argv = ['transferlab', *sys.argv[1:]]\nmain()")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("args", [["train", "no/such/folder"], ["train", "{data}", "--epochs", "abc"],
                                  ["train", "{data}", "--rotation-range", "abc"],
                                  ["train", "{data}", "--strategy", "frozen"], ["train", "--resume", "no/such/run"],
                                  ["train", "{data}", "--config", "{yaml}"], ["serve", "run", "--port", "0"]])
def test_typos_are_answered_before_torch_loads(tmp_path, args):
    """A missing folder, a bad value or a bad config file is answered without loading torch (seconds on a laptop):
    what `--help` costs, not what training costs."""
    from .conftest import make_dataset

    data = make_dataset(tmp_path / "data", n_train=2, n_val=1)
    (tmp_path / "bad.yaml").write_text("epochs: ten\n")
    args = [a.format(data=data, yaml=tmp_path / "bad.yaml") for a in args]
    result = _run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert "torch loaded: False" in result.stdout, result.stdout
    assert "Error:" in result.stderr and "Traceback" not in result.stderr


def test_keras_spellings_are_the_same_settings(tmp_path):
    """`learning_rate=`, `--learning-rate`, `factor:` and `validation_split:` are Keras' names of lr,
    plateau_factor and val_split; a typo of either spelling is answered with the close names."""
    from transferlab.errors import SettingError
    from transferlab.training.config import TrainConfig

    config = TrainConfig.from_dict({"learning_rate": 3e-4, "factor": 0.5, "validation_split": 0.3}).validate()
    assert (config.lr, config.plateau_factor, config.val_split) == (3e-4, 0.5, 0.3)
    with pytest.raises(SettingError, match="Did you mean 'learning_rate'"):
        TrainConfig.from_dict({"learnin_rate": 1e-3})
    with pytest.raises(SettingError, match="given twice"):
        TrainConfig.from_dict({"lr": 1e-3, "learning_rate": 1e-4})
    result = CliRunner().invoke(app, ["train", str(tmp_path / "none"), "--learning-rate", "abc"])
    assert result.exit_code == 2 and "'lr'" in result.output  # the option reached the lr setting


def test_every_schedule_parameter_is_a_setting_with_its_effect(tmp_path):
    """decay_rate/decay_steps drive 'step' and 'exponential' (Keras' ExponentialDecay per epoch: rate ** (1 / steps)
    each epoch); plateau_factor/plateau_patience drive 'plateau'. The rates are worked out by hand."""
    import torch

    from transferlab.training.config import TrainConfig
    from transferlab.training.optim import build_scheduler

    def rates(config: TrainConfig, epochs: int) -> list[float]:
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        scheduler = build_scheduler(optimizer, config, epochs, 10)["lr_scheduler"]["scheduler"]
        out = []
        for _ in range(epochs):
            out.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return out

    exp = rates(TrainConfig(lr_schedule="exponential", decay_rate=0.5, decay_steps=2).validate(), 5)
    assert exp == pytest.approx([0.5 ** (e / 2) for e in range(5)])
    step = rates(TrainConfig(lr_schedule="step", decay_rate=0.2, decay_steps=2).validate(), 5)
    assert step == pytest.approx([1, 1, 0.2, 0.2, 0.04])
    defaults = rates(TrainConfig(lr_schedule="exponential").validate(), 3)
    assert defaults == pytest.approx([1, 0.9, 0.81])  # the documented default: x0.9 per epoch
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    config = TrainConfig(lr_schedule="plateau", plateau_factor=0.5, plateau_patience=1, monitor="val_loss")
    plateau = build_scheduler(optimizer, config.validate(), 5, 10)["lr_scheduler"]["scheduler"]
    for loss in (1.0, 1.0, 1.0):  # no improvement after the first: after patience 1, the rate halves
        plateau.step(loss)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5)


@pytest.mark.parametrize(("code", "words"), [("ENOSPC", "The disk is full"), ("EROFS", "read-only file system"),
                                             ("EACCES", "No permission")])
def test_the_machines_refusals_are_messages_not_bugs(tmp_path, monkeypatch, code, words):
    """A full disk, a read-only file system or a missing permission while writing a run: a message that names
    the file and what to do, exit 2, no traceback."""
    import errno

    from .conftest import TINY_MODEL, make_dataset

    data = make_dataset(tmp_path / "data", n_train=4, n_val=2)

    def refuse(path, text):
        raise OSError(getattr(errno, code), "refused", str(path))

    monkeypatch.setattr("transferlab._io.write_text", refuse)
    monkeypatch.setattr("transferlab.runs.folder.write_text", refuse)
    monkeypatch.setattr("transferlab.runs.history.write_text", refuse)
    result = CliRunner().invoke(app, ["train", str(data), "--model", TINY_MODEL, "--weights", "none", "--epochs",
                                      "1", "--image-size", "32", "--num-workers", "0", "--out",
                                      str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert words in result.output and "Traceback" not in result.output and "Internal error" not in result.output
