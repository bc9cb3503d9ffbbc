"""The notebook-facing Python API: keyword `train`, results that display themselves, pictures with `ax=`,
experiment trackers (TensorBoard, MLflow, CSV) and the Hugging Face export that timm loads back."""

from __future__ import annotations

import base64
import csv
import io
import re

import numpy as np
import pytest
import torch
from PIL import Image

from .conftest import TINY_MODEL, make_dataset, run_in_notebook


def _history(run_dir):
    with open(run_dir / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def _images(html: str) -> list[Image.Image]:
    """The pictures inlined in an HTML output (base64 PNG/JPEG)."""
    return [Image.open(io.BytesIO(base64.b64decode(data)))
            for data in re.findall(r"data:image/(?:png|jpeg);base64,([A-Za-z0-9+/=]+)", html)]


def test_keyword_train_is_the_same_run_as_fit_with_a_config(tmp_path, tiny_weights):
    """`train(data, model=..., epochs=..., lr=...)` and `fit(TrainConfig(...))` train the same numbers."""
    import transferlab

    data = make_dataset(tmp_path / "data", n_train=8, n_val=4)
    common = dict(weights=str(tiny_weights), lr=0.01, image_size=32, num_workers=0, patience=0)
    a = transferlab.train(data, model=TINY_MODEL, epochs=2, out=tmp_path / "a", quiet=True, **common)
    b = transferlab.fit(transferlab.TrainConfig(data=str(data), model=TINY_MODEL, epochs=2, out=str(tmp_path / "b"),
                                                **common), quiet=True)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in _history(a.run_dir)]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in _history(b.run_dir)]
    assert len(strip) == 2 and a.metrics["best_val_accuracy"] == b.metrics["best_val_accuracy"]


def test_keyword_train_takes_a_recipe_file_and_keywords_override_it(tmp_path, tiny_weights):
    import transferlab

    data = make_dataset(tmp_path / "data", n_train=4, n_val=2)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"model: {TINY_MODEL}\nepochs: 3\nlr: 0.02\nbatch_size: 4\n")
    result = transferlab.train(data, config=recipe, epochs=1, weights=str(tiny_weights), image_size=32,
                               num_workers=0, out=tmp_path / "run", quiet=True)
    assert (result.config.model, result.config.epochs, result.config.lr, result.config.batch_size) == (
        TINY_MODEL, 1, 0.02, 4)
    assert len(result.history) == 1


def test_keyword_train_names_the_right_setting_when_one_is_misspelt(tmp_path):
    import transferlab

    with pytest.raises(transferlab.TransferlabError, match="Did you mean 'epochs'"):
        transferlab.train(tmp_path, epoch=3)
    with pytest.raises(transferlab.TransferlabError, match="'logger'.*tensorboard"):
        transferlab.train(tmp_path, logger="tensorbord")


def test_a_run_result_displays_its_metrics_history_and_report(tiny_run):
    """The HTML a notebook shows: the metric cards of metrics.json, the history plot and the confusion matrix,
    as pictures that decode (no link to a file the notebook's reader does not have)."""
    import transferlab

    _, run = tiny_run
    result = transferlab.load_run(run)
    html = result._repr_html_()
    best = result.metrics["best_val_accuracy"]
    assert f"{best:.4f}" in html and "best val_accuracy" in html
    pictures = _images(html)
    assert len(pictures) >= 2 and all(p.size[0] > 100 for p in pictures)
    history = Image.open(run / "history.png")
    assert any(p.size == history.size for p in pictures)  # history.png itself, inlined
    assert "file://" not in html and "src='history.png'" not in html


def test_evaluation_displays_and_its_pictures_match_scikit_learn(tiny_run):
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    import transferlab

    root, run = tiny_run
    result = transferlab.evaluate(run, root / "test")
    expected = confusion_matrix(result.targets.numpy(), result.probabilities.argmax(1).numpy(),
                                labels=range(len(result.labels)))
    fig, ax = plt.subplots()
    display = result.plot_confusion_matrix(normalize=False, ax=ax)
    assert display.ax_ is ax and display.figure_ is fig  # drawn where the student asked
    assert np.array_equal(display.matrix, expected)
    html = result._repr_html_()
    assert f"{result.metrics['accuracy']:.4f}" in html and len(_images(html)) == 2
    assert display._repr_png_().startswith(b"\x89PNG")
    assert "could not be read" in html  # the broken file in test/ is reported, not hidden
    plt.close(fig)


def test_predictions_show_each_image_with_its_top_label(tiny_run):
    import transferlab

    root, run = tiny_run
    predictions = transferlab.predict(run, [root / "test" / "cats"])
    html = predictions._repr_html_()
    readable = [p for p in predictions if "top" in p]
    assert len(_images(html)) == len(readable) == len(predictions) - 1  # broken.jpg: a caption, no picture
    broken = next(p for p in predictions if "error" in p)
    assert "broken.jpg" in html and broken["error"][:20] in html
    for p in readable:
        assert f"<b>{p['top'][0]['label']} {p['top'][0]['probability']:.1%}</b>" in html


def test_plot_history_draws_into_the_given_axes(tiny_run):
    import matplotlib.pyplot as plt

    import transferlab

    _, run = tiny_run
    result = transferlab.load_run(run)
    fig, axes = plt.subplots(1, 2)
    assert result.plot_history(ax=axes) is axes  # the caller's axes: their figure, shown once
    epochs = len(result.history)
    loss_lines = [line for line in axes[0].get_lines() if len(line.get_xdata()) == epochs]
    assert len(loss_lines) == 2  # train and validation loss, one point per epoch
    assert list(loss_lines[1].get_ydata()) == [float(r["val_loss"]) for r in result.history]
    with pytest.raises(transferlab.TransferlabError, match="two Axes"):
        result.plot_history(ax=axes[0])
    plt.close(fig)


def test_a_notebook_shows_each_history_plot_once_and_its_log_lines_whole(tiny_run, tmp_path):
    """Executed and rendered to HTML as a student sees it: plot_history into the student's axes, and alone, each
    show one picture; training's log lines are plain text, underscores and long lines whole (rich's HTML put them in
    a scrolling <pre> that cut long lines and hid underscores)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    exporter = pytest.importorskip("nbconvert").HTMLExporter
    root, run = tiny_run
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in (
        "%matplotlib inline\nimport matplotlib.pyplot as plt\nimport transferlab\n"
        f"result = transferlab.load_run({str(run)!r})\nfig, axes = plt.subplots(1, 2)\nresult.plot_history(ax=axes)",
        "result.plot_history()",
        f"r = transferlab.train({str(root)!r}, model={TINY_MODEL!r}, weights='none', strategy='full', epochs=1, "
        f"image_size=32, num_workers=0, out={str(tmp_path / 'nb_run')!r})")]
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    for cell in notebook.cells[:2]:
        assert sum("image/png" in o.get("data", {}) for o in cell.outputs) == 1, cell.outputs
    html, _ = exporter().from_notebook_node(notebook)
    line = f"Model {TINY_MODEL} ("
    assert line in html  # the underscore kept, in a plain output stream
    streams = [o for o in notebook.cells[2].outputs if o.get("output_type") == "stream"]
    assert any(line in o["text"] for o in streams) and "\x1b[" not in "".join(o["text"] for o in streams)
    assert "overflow-x:auto" not in "".join(str(o.get("data", {}).get("text/html", ""))
                                           for o in notebook.cells[2].outputs)


def test_augment_preview_returns_the_same_figure_for_the_same_seed(tmp_path):
    import transferlab

    data = make_dataset(tmp_path / "data", n_train=6, n_val=2)
    image = next((data / "train" / "cats").iterdir())

    def pixels(fig):
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return np.asarray(Image.open(buffer))

    a = transferlab.augment_preview(image, {"rotation_range": 40, "horizontal_flip": True}, model=TINY_MODEL,
                                    count=4, seed=3)
    b = transferlab.augment_preview(image, {"rotation_range": 40, "horizontal_flip": True}, model=TINY_MODEL,
                                    count=4, seed=3)
    c = transferlab.augment_preview(image, {"rotation_range": 40, "horizontal_flip": True}, model=TINY_MODEL,
                                    count=4, seed=4)
    assert len([ax for ax in a.axes if ax.images]) == 4
    assert np.array_equal(pixels(a), pixels(b)) and not np.array_equal(pixels(a), pixels(c))
    assert "rotation_range=40" in a._suptitle.get_text()
    folder = transferlab.augment_preview(data, "none", model=TINY_MODEL, count=4)
    titles = [ax.get_title() for ax in folder.axes if ax.images]
    assert len(titles) == 4 and set(titles) <= {"cats", "dogs"}  # a folder: training images with their labels


def test_epoch_table_grows_in_place_in_a_notebook(tmp_path, tiny_weights):
    """In Jupyter each phase's epochs are rows of one table, updated in place (like fastai), drawn below that
    phase's header line: phase 2's rows never appear above "Phase 2"."""
    data = make_dataset(tmp_path / "data", n_train=8, n_val=4)
    outputs = run_in_notebook(
        "import transferlab\n"
        f"transferlab.train({str(data)!r}, model={TINY_MODEL!r}, weights={str(tiny_weights)!r}, epochs=2, "
        f"finetune_epochs=2, strategy='two-phase', patience=0, image_size=32, num_workers=0, "
        f"out={str(tmp_path / 'run')!r})")
    where = {i: o for i, o in enumerate(outputs) if "transferlab-epochs" in o.get("data", {}).get("text/html", "")}
    assert len(where) == 2  # one table per phase, each updated in place
    tables = list(where.values())
    assert all(t["data"]["text/html"].count("<tr>") == 1 + 2 for t in tables)  # header + 2 epochs
    history = _history(tmp_path / "run")
    for row, table in zip(history, [tables[0]] * 2 + [tables[1]] * 2):
        assert f"{float(row['val_loss']):.4f}" in table["data"]["text/html"]
    for k, table in enumerate(tables, start=1):
        assert table["data"]["text/plain"].splitlines()[0].startswith(f"Phase {k}, epoch 1/2")
    header = next(i for i, o in enumerate(outputs) if "Phase 2: strategy" in str(o.get("data", o.get("text"))))
    first, second = sorted(where)
    assert first < header < second  # the second table below its header
    assert not any(o.get("output_type") == "error" for o in outputs)


@pytest.mark.parametrize("strategy", ["freeze", "two-phase"])
def test_tensorboard_and_csv_trackers_get_each_epoch_and_the_lr(tmp_path, tiny_weights, strategy):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    import transferlab

    data = make_dataset(tmp_path / "data", n_train=8, n_val=4)
    result = transferlab.train(data, model=TINY_MODEL, weights=str(tiny_weights), epochs=2, finetune_epochs=2,
                               strategy=strategy, lr_schedule="cosine", image_size=32, num_workers=0, patience=0,
                               logger=["tensorboard", "csv"], out=tmp_path / "run", quiet=True)
    history = _history(result.run_dir)
    events = EventAccumulator(str(result.run_dir / "tensorboard")).Reload()
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        points = events.Scalars(key)
        assert [p.step for p in points] == [int(r["epoch"]) for r in history]  # steps continue across phases
        assert [p.value for p in points] == pytest.approx([float(r[key]) for r in history], rel=1e-6)
    with open(result.run_dir / "csv" / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val_accuracy")]
    assert [float(r["val_accuracy"]) for r in rows] == pytest.approx([float(r["val_accuracy"]) for r in history])


def test_mlflow_tracker_records_the_run(tmp_path, tiny_weights, monkeypatch):
    pytest.importorskip("mlflow")
    pytest.importorskip("sqlalchemy")
    from urllib.parse import quote

    from mlflow.tracking import MlflowClient

    import transferlab

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    data = make_dataset(tmp_path / "data", n_train=8, n_val=4)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    out = tmp_path / "run 1?#%41"  # characters a URI would read as a query, a fragment and an escape
    result = transferlab.train(data, model=TINY_MODEL, weights=str(tiny_weights), epochs=2, image_size=32,
                               num_workers=0, patience=0, logger="mlflow", out=out, quiet=True)
    assert (out / "mlflow.db").is_file() and not list((tmp_path / "cwd").iterdir())  # nothing beside the run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "data", out.name]
    client = MlflowClient("sqlite:///" + quote(str(result.run_dir / "mlflow.db")))
    run = client.search_runs([client.get_experiment_by_name("transferlab").experiment_id])[0]
    values = [m.value for m in sorted(client.get_metric_history(run.info.run_id, "val_loss"), key=lambda m: m.step)]
    assert values == pytest.approx([float(r["val_loss"]) for r in _history(result.run_dir)])
    assert run.data.params["model"] == TINY_MODEL and run.info.status == "FINISHED"


def test_an_mlflow_store_that_cannot_be_opened_is_named_before_training(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    pytest.importorskip("sqlalchemy")
    from typer.testing import CliRunner

    from transferlab.cli import app

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nosuchscheme://nowhere/x")
    data = make_dataset(tmp_path / "data", n_train=4, n_val=2)
    result = CliRunner().invoke(app, ["train", str(data), "--model", TINY_MODEL, "--weights", "none", "--epochs", "1",
                                      "--image-size", "32", "--num-workers", "0", "--logger", "mlflow", "--out",
                                      str(tmp_path / "run"), "-q"])
    assert result.exit_code == 2, result.output
    assert "cannot open the tracking store" in result.output and "MLFLOW_TRACKING_URI" in result.output
    assert "Epoch" not in result.output and "Traceback" not in result.output


def test_cli_logger_option_reaches_the_tracker(tmp_path, tiny_weights):
    pytest.importorskip("tensorboard")
    from typer.testing import CliRunner

    from transferlab.cli import app

    data = make_dataset(tmp_path / "data", n_train=4, n_val=2)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(data), "--model", TINY_MODEL, "--weights", str(tiny_weights),
                                      "--epochs", "1", "--image-size", "32", "--num-workers", "0",
                                      "--logger", "tensorboard", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    bad = CliRunner().invoke(app, ["train", str(data), "--logger", "wandb", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "tensorboard" in bad.output
    import re

    text = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).output
    shown = " ".join(re.sub("[│╭╮╰╯─]", " ", text).split())  # the words, wherever the panel's frame wraps them
    assert "pip install 'transferlab[tracking]'" in shown  # brackets in help texts are not taken for styles


def test_hf_export_loads_back_in_timm_with_the_same_predictions(tiny_run, tmp_path):
    """`export --format hf` writes timm's Hugging Face layout; timm alone (no transferlab code) loads it and
    classifies the test images as `predict` does."""
    import json

    import timm
    from typer.testing import CliRunner

    from transferlab.cli import app
    from transferlab.inference import load_predictor

    root, run = tiny_run
    out = tmp_path / "hf"
    result = CliRunner().invoke(app, ["export", str(run), "--format", "hf", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} >= {"config.json", "model.safetensors", "README.md"}
    config = json.loads((out / "config.json").read_text())
    predictor = load_predictor(run, engine="fp32")
    assert config["label_names"] == predictor.labels and config["architecture"] == TINY_MODEL
    pre = predictor.preprocessing
    assert config["pretrained_cfg"]["mean"] == pytest.approx(list(pre.mean))
    assert config["pretrained_cfg"]["input_size"] == [3, pre.image_size, pre.image_size]
    card = (out / "README.md").read_text()
    metrics = json.loads((run / "metrics.json").read_text())
    assert "library_name: timm" in card and str(metrics["best_val_accuracy"]) in card

    model = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    data_config = timm.data.resolve_data_config({}, model=model)
    assert data_config["input_size"] == (3, pre.image_size, pre.image_size)
    images = sorted(p for p in (root / "test").rglob("*.png"))
    x = torch.as_tensor(np.stack([predictor.preprocess(predictor.decode(p)) for p in images]))
    expected = predictor.predict(images, top_k=1)
    with torch.no_grad():
        probabilities = model(x).softmax(-1).numpy()
    assert probabilities == pytest.approx(predictor.batch_probabilities(x.numpy()), abs=1e-5)
    labels = [config["label_names"][i] for i in probabilities.argmax(-1)]
    assert labels == [e["top"][0]["label"] for e in expected]


def test_hf_export_refuses_a_head_timm_cannot_hold(tmp_path, tiny_weights):
    import transferlab
    from transferlab.deploy.export import export_model

    data = make_dataset(tmp_path / "data", n_train=4, n_val=2)
    result = transferlab.train(data, model=TINY_MODEL, weights=str(tiny_weights), epochs=1, image_size=32,
                               num_workers=0, head_hidden=[8], out=tmp_path / "run", quiet=True)
    with pytest.raises(transferlab.TransferlabError, match="head_hidden.*--format onnx"):
        export_model(result.run_dir, "hf")


def test_every_picture_draws_into_axes_the_caller_gives():
    """The pictures the CLI writes as files are functions and Displays that draw into a student's own axes."""
    import matplotlib.pyplot as plt

    from transferlab.evaluation.displays import CompareDisplay, plot_accuracy_vs_speed

    fig, axes = plt.subplots(1, 3)
    runs = {"a": [{"epoch": 1, "val_accuracy": 0.5, "val_loss": 0.7}, {"epoch": 2, "val_accuracy": 0.75,
                                                                       "val_loss": 0.5}]}
    display = CompareDisplay(runs).plot(ax=axes[:2])
    assert display.figure_ is fig
    assert list(axes[0].get_lines()[0].get_ydata()) == [0.5, 0.75]
    assert list(axes[1].get_lines()[0].get_ydata()) == [0.7, 0.5]
    assert plot_accuracy_vs_speed([{"model": "m", "top1": 0.7, "latency_ms_median": 3.0, "parameters": 1e6}],
                                  ax=axes[2]) is fig
    assert axes[2].collections[0].get_offsets().tolist() == [[3.0, 70.0]]
    plt.close(fig)


def test_korean_class_names_draw_as_letters_or_warn_with_the_fix(monkeypatch):
    """Plots of Korean class names use a font that has Hangul (the optional NanumGothic of `transferlab[korean]`,
    or a system font); without one, a warning says what to install instead of silent boxes."""
    import warnings

    import matplotlib.pyplot as plt

    from transferlab.evaluation import displays, fonts

    pytest.importorskip("koreanize_matplotlib")
    monkeypatch.setattr(fonts, "_font_state", {})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = displays.ConfusionMatrixDisplay([[3, 1], [0, 4]], ["고양이", "강아지"]).plot().figure_
        fig.canvas.draw()
    assert fonts.hangul_font() is not None
    assert not [w for w in caught if "missing from font" in str(w.message)]  # every glyph found
    plt.close(fig)

    monkeypatch.setattr(fonts, "_font_state", {})
    monkeypatch.setattr(fonts, "_HANGUL_FONTS", ())
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.warns(UserWarning, match=r"transferlab\[korean\]"):
        displays.PerClassDisplay({"고양이": {"recall": 1.0}, "강아지": {"recall": 0.5}})


def test_a_reopened_run_evaluates_its_own_validation_split_like_evaluate_does(tiny_run):
    """`load_run(folder).evaluate()` scores the validation images split.csv lists, the same numbers as
    `transferlab.evaluate(folder, DATA/validation)`, and `.predict(one_path)` takes a single image."""
    import transferlab

    root, run = tiny_run
    result = transferlab.load_run(run)
    own = result.evaluate()
    direct = transferlab.evaluate(run, root / "validation")
    assert sorted(s.path for s in own.samples) == sorted(s.path for s in direct.samples)
    assert own.metrics["confusion_matrix"] == direct.metrics["confusion_matrix"]
    image = next((root / "validation" / "cats").glob("*.png"))
    assert [p["path"] for p in result.predict(image)] == [str(image)]
