"""The Python API's contracts: fit takes Lightning callbacks and loggers, leaves no global state changed; the CLI
maps only transferlab's own errors to a clean exit 2 and shows every other exception as a bug."""

from __future__ import annotations

import csv
import logging
import warnings

from typer.testing import CliRunner

from transferlab.cli import app

from .conftest import TINY_MODEL, make_dataset

runner = CliRunner()


def _global_state() -> tuple:
    return (list(warnings.filters), list(logging.getLogger("lightning.pytorch.utilities.rank_zero").filters),
            logging.getLogger("lightning.pytorch").level, logging.getLogger("lightning").level)


def test_fit_takes_callbacks_and_loggers_and_restores_global_state(tmp_path, tiny_weights):
    from lightning.pytorch.callbacks import Callback
    from lightning.pytorch.loggers import CSVLogger

    from transferlab import TrainConfig, fit
    from transferlab.training.advise import advise

    class EpochCounter(Callback):
        def __init__(self) -> None:
            self.epochs: list[int] = []

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            self.epochs.append(trainer.current_epoch)

    root = make_dataset(tmp_path / "data")
    ours = [f for f in warnings.filters if "does not have many workers" in str(f[1])]  # pytest.ini's own
    counter = EpochCounter()
    mine = CSVLogger(save_dir=str(tmp_path / "extra"), name="mine")
    result = fit(TrainConfig(data=str(root), out=str(tmp_path / "run"), model=TINY_MODEL, weights=str(tiny_weights),
                             epochs=3, patience=0, lr=0.01, image_size=32, num_workers=0),
                 quiet=True, callbacks=[counter], logger=mine)
    assert counter.epochs == [0, 1, 2]
    with open(tmp_path / "extra" / "mine" / "version_0" / "metrics.csv", newline="") as f:
        logged = [r for r in csv.DictReader(f) if r.get("val_accuracy")]
    history = result.run_dir / "history.csv"
    with open(history, newline="") as f:
        rows = list(csv.DictReader(f))
    # the user's logger saw the same per-epoch validation accuracy as the run's own history.csv
    assert [round(float(r["val_accuracy"]), 5) for r in logged] == [round(float(r["val_accuracy"]), 5) for r in rows]
    # none of fit's quietening is left behind (Lightning's own import-time filters may be new: not ours)
    assert [f for f in warnings.filters if "does not have many workers" in str(f[1])] == ours
    assert not any("Tip:" in repr(f) for f in logging.getLogger("lightning.pytorch.utilities.rank_zero").filters)
    before = _global_state()  # everything Lightning imports is imported now: the next runs must change nothing
    advise(root, TINY_MODEL, str(tiny_weights), lr_test=True)
    assert _global_state() == before
    fit(TrainConfig(data=str(root), out=str(tmp_path / "run2"), model=TINY_MODEL, weights=str(tiny_weights),
                    epochs=1, image_size=32, num_workers=0), quiet=True)
    assert _global_state() == before


def test_cli_clean_message_for_user_errors_and_a_traceback_for_bugs(monkeypatch, tmp_path):
    import transferlab.models.table as table
    from transferlab.errors import SettingError

    def user_error(names=None):
        raise SettingError("The 'x' parameter must be 'y'.")

    monkeypatch.setattr(table, "catalog_rows", user_error)
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 2 and "Error: The 'x' parameter must be 'y'." in result.output
    assert "Traceback" not in result.output

    def bug(names=None):
        return {}["missing"]  # a genuine bug deep inside: KeyError

    monkeypatch.setattr(table, "catalog_rows", bug)
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 1
    assert "Traceback" in result.output and "KeyError" in result.output and "report" in result.output
    # a ValueError from inside a library is a bug too, not "bad input"
    monkeypatch.setattr(table, "catalog_rows", lambda names=None: int("not a number"))
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 1 and "ValueError" in result.output
