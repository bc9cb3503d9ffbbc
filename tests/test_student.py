"""What a student of the course sees: the numbers a run reports, file permissions, the pictures' axes."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from transferlab.cli import app

from .conftest import TINY_MODEL, make_dataset, run_in_notebook

runner = CliRunner()


@pytest.fixture(scope="module")
def frozen_run(tmp_path_factory, tiny_weights):
    """A two-class run with a frozen base and a Dense(16) head, through the CLI (its console output kept)."""
    root = make_dataset(tmp_path_factory.mktemp("student") / "data", n_train=10, n_val=4)
    out = root.parent / "run"
    old = os.umask(0o022)
    try:
        result = runner.invoke(app, ["train", str(root), "--model", TINY_MODEL, "--weights", str(tiny_weights),
                                     "--epochs", "3", "--head-hidden", "16", "--image-size", "32", "--num-workers",
                                     "0", "--out", str(out)])
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    return root, out, result.output


def test_config_records_the_parameters_the_frozen_phase_trains(frozen_run):
    """Worked out by hand: the head is Dense(256 -> 16) + Dense(16 -> 2); the frozen base trains nothing."""
    import timm

    _, out, output = frozen_run
    base = sum(p.numel() for p in timm.create_model(TINY_MODEL, num_classes=0).parameters())
    head = 256 * 16 + 16 + 16 * 2 + 2
    params = yaml.safe_load((out / "config.yaml").read_text())["parameters"]
    assert params == {"total": base + head, "trainable": head, "non_trainable": base,
                      "phases": [{"phase": 1, "strategy": "freeze", "trainable": head}]}
    assert f"{head:,} of {base + head:,} parameters trainable" in output  # the console says the same


def test_run_files_are_readable_by_others_under_the_usual_umask(frozen_run):
    _, out, _ = frozen_run
    for name in ("config.yaml", "history.csv", "metrics.json", "model.safetensors", "labels.json", "report.html",
                 "best.ckpt", "last.ckpt", "history.png"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name


def test_report_shows_wall_time_as_a_duration(frozen_run):
    _, out, _ = frozen_run
    html = (out / "report.html").read_text()
    seconds = json.loads((out / "metrics.json").read_text())["wall_seconds"]
    # a duration, not the raw number of seconds (another metric may well read 0.2500 elsewhere in the report)
    assert re.search(r"wall time<b>\d+\.\d s</b>", html) and f"wall time<b>{seconds:.4f}" not in html


def test_two_class_evaluation_reports_no_trivial_top_k(frozen_run, tmp_path):
    root, out, _ = frozen_run
    result = runner.invoke(app, ["evaluate", str(out), str(root / "validation"), "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout[result.stdout.index("{"):])
    assert not [k for k in metrics if k.startswith("top")]  # top-2 of 2 classes is always 1.0
    text = runner.invoke(app, ["evaluate", str(out), str(root / "validation"), "--out", str(tmp_path)])
    assert text.exit_code == 0 and "top2" not in text.output and "Accuracy " in text.output


def test_compare_has_whole_epochs_and_says_what_was_trained(frozen_run, tmp_path):
    from transferlab.evaluation.compare import compare_runs
    from transferlab.evaluation.displays import CompareDisplay
    from transferlab.runs.folder import RunFolder

    _, out, _ = frozen_run
    rows = compare_runs([out], tmp_path)
    assert rows[0]["model"] == TINY_MODEL and rows[0]["strategy"] == "freeze" and rows[0]["data"] == "data"
    display = CompareDisplay({"run": RunFolder(out).history()}).plot()
    ticks = [t for t in display.ax_[0].get_xticks() if 1 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert "| model | strategy | data |" in (tmp_path / "compare.md").read_text()


@pytest.mark.parametrize("width", [80, 200])
def test_models_table_never_cuts_a_name(width, monkeypatch):
    from transferlab.models.catalog import CATALOG

    monkeypatch.setenv("COLUMNS", str(width))
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    assert all(entry.name in result.output for entry in CATALOG)
    assert all(len(line) <= width for line in result.output.splitlines())
    if width >= 140:  # room for the exact counts the course asks students to check
        assert "3,453,121" in result.output and "Left out" not in result.output
    else:
        assert "Left out at this width" in result.output


def _keras_table(name: str) -> dict:
    from transferlab.models.keras_layers import keras_tables

    return keras_tables()[name]


def test_keras_layer_143_is_the_course_layer_and_trains_what_keras_trains():
    """`base_model.layers[143:]` is Keras' conv5 stage: the same layers train here as in Keras. Keras' side is
    worked out from Keras 3's own layer table: its weights from index 143, less BatchNormalization's moving
    statistics, less its convolutions' biases (PyTorch's ResNet has none), must equal our count, and our count
    must equal torchvision's ResNet50 last stage (a third implementation)."""
    import torchvision

    from transferlab.applications import ResNet50

    base = ResNet50(include_top=False, weights=None)
    assert base.layers[143].name == "conv5_block1_1_conv" and base.layers[143].counterpart.name == "layer4.0.conv1"
    assert len(base.layers) == len(_keras_table("ResNet50")["layers"]) == 175
    base.trainable = False
    for layer in base.layers[143:]:
        layer.trainable = True
    ours = sum(p.numel() for p in base.trainable_weights)
    layers = _keras_table("ResNet50")["layers"][143:]
    bn_channels = sum(la["weights"] // 4 for la in layers if la["class"] == "BatchNormalization")
    keras_trainable = sum(la["weights"] for la in layers) - 2 * bn_channels
    conv_biases = bn_channels  # every convolution feeds one BatchNormalization of its width
    assert keras_trainable == 14_976_000 and conv_biases == 11_264
    assert ours == keras_trainable - conv_biases == 14_964_736
    assert ours == sum(p.numel() for p in torchvision.models.resnet50().layer4.parameters())


def test_unfreeze_from_keras_index_on_the_command_line():
    result = runner.invoke(app, ["layers", "resnet50", "--strategy", "unfreeze-from=keras:143", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["trainable"] == 14_964_736 + 2048 * 2 + 2
    first = next(r for r in doc["layers"] if r["trainable"])
    assert first["name"] == "layer4.0.conv1"
    bad = runner.invoke(app, ["layers", "resnet50", "--strategy", "unfreeze-from=keras:999"])
    assert bad.exit_code == 2 and "has 175 layers" in bad.output


def test_include_top_false_counts_like_keras():
    """Without the top there is no classifier; count_params() counts weights the Keras way (parameters plus the
    moving statistics), checked against torchvision's ResNet50 and Keras 3's own numbers."""
    import torchvision

    from transferlab.applications import ResNet50

    base = ResNet50(include_top=False, weights=None)
    reference = torchvision.models.resnet50()
    params = sum(p.numel() for n, p in reference.named_parameters() if not n.startswith("fc."))
    moving = sum(b.numel() for n, b in reference.named_buffers() if n.endswith(("running_mean", "running_var")))
    assert sum(p.numel() for p in base.parameters()) == params == 23_508_032
    assert base.count_params() == params + moving
    keras = _keras_table("ResNet50")
    assert (keras["count_params"], keras["non_trainable"]) == (23_587_712, 53_120)
    assert sum(w.numel() for w in base.non_trainable_weights) == keras["non_trainable"]
    assert base.output_shape == (None, 7, 7, 2048)  # Keras' channels-last order
    text = base.summary(print_fn=lambda s: None)
    assert "Total params: 23,561,152" in text and "Non-trainable params: 53,120" in text
    assert "Keras' ResNet50 counts 23,587,712" in text and "biases (+26,560 weights)" in text
    with pytest.raises(ValueError, match="torch.compile"):
        base.compile(optimizer="adam", loss="binary_crossentropy")


def test_keras_indices_map_for_every_keras_family_or_say_why_not():
    """Loops over the registry: every Keras family's layers align with the PyTorch model (its first layer with
    weights is our first), or keras:N refuses with what to use instead."""
    import torch

    from transferlab.errors import SettingError
    from transferlab.models import create_model
    from transferlab.models.catalog import CATALOG
    from transferlab.models.keras_layers import align, keras_index_to_layer

    exact = {"ResNet50", "ResNet101", "ResNet152", "ResNet50V2", "ResNet101V2", "ResNet152V2", "VGG16", "VGG19",
             "Xception", "InceptionV3", "InceptionResNetV2",
             "DenseNet121", "DenseNet169", "DenseNet201", "MobileNet", "MobileNetV2", "MobileNetV3Large",
             "MobileNetV3Small", *(f"EfficientNetB{i}" for i in range(8))}
    for entry in [e for e in CATALOG if e.keras and e.keras.isidentifier()]:
        with torch.device("meta"):
            base = create_model(entry.name, num_classes=0, weights="none")
        layers = _keras_table(entry.keras)["layers"]
        if entry.keras in exact:
            from transferlab.models.transfer import base_layers

            mapping = align(base, layers)
            ours_first = next(la.index for la in base_layers(base) if any(True for _ in la.module.parameters(False)))
            assert len(mapping) >= 0.95 * sum(1 for la in layers if la["weights"]), entry.keras
            first = min(i for ours in mapping.values() for i in ours)
            assert keras_index_to_layer(base, entry.keras, 0) == first == ours_first, entry.keras
        else:
            with pytest.raises(SettingError, match="unfreeze-from=NAME"):
                keras_index_to_layer(base, entry.keras, 0)


def test_every_command_takes_quiet(frozen_run, tmp_path):
    """-q/--quiet on every command: nothing on stdout, the files still written."""
    from transferlab.cli import app as cli

    root, out, _ = frozen_run
    image = str(next((root / "validation" / "cats").glob("*.png")))
    runs = {
        "models": ["models", "-q"],
        "layers": ["layers", TINY_MODEL, "-q"],
        "predict": ["predict", str(out), image, "--out", str(tmp_path / "p.csv"), "-q"],
        "compare": ["compare", str(out), "--out", str(tmp_path / "cmp"), "-q"],
        "data info": ["data", "info", str(root), "-q"],
        "evaluate": ["evaluate", str(out), str(root / "validation"), "--out", str(tmp_path / "ev"), "-q"],
    }
    for name, args in runs.items():
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, (name, result.output)
        assert result.stdout.strip() == "", (name, result.stdout)
    assert (tmp_path / "p.csv").is_file() and (tmp_path / "cmp" / "compare.md").is_file()
    for command in cli.registered_commands:  # and every command lists the option
        name = command.name or command.callback.__name__
        help_text = runner.invoke(cli, [name, "--help"]).output
        assert "--quiet" in help_text, name


def test_keras_families_count_like_keras_3():
    """Our include_top=False bases against Keras 3's own counts (keras_tables.json), family by family: exact where
    the architectures are the same, and differing only by what the docs name where they are not."""
    import torch

    from transferlab.applications import application
    from transferlab.models.catalog import CATALOG

    exact = {"VGG16", "VGG19", "Xception", "DenseNet121", "DenseNet169", "DenseNet201", "MobileNet", "MobileNetV2",
             "MobileNetV3Large", "MobileNetV3Small", "ConvNeXtTiny"}
    for entry in CATALOG:
        if not (entry.keras and entry.keras.isidentifier()):
            continue
        keras = _keras_table(entry.keras)
        with torch.device("meta"):
            base = application(entry.name, include_top=False, weights=None)
        ours = base.count_params()
        if entry.keras in exact:
            assert ours == keras["count_params"], entry.keras
        elif entry.keras in ("ResNet50", "ResNet101", "ResNet152"):  # one bias per convolution, one BN per conv
            assert keras["count_params"] - ours == keras["non_trainable"] // 2, entry.keras
        elif entry.keras.startswith("EfficientNetB"):  # Keras' Normalization layer: mean, variance, count
            assert keras["count_params"] - ours == 7, entry.keras


def test_preprocess_input_uses_the_models_own_statistics():
    import numpy as np
    from timm.data import resolve_data_config

    from transferlab.applications import ResNet50, preprocess_input
    from transferlab.models import create_model

    images = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3)).astype(np.uint8)  # Keras: N, H, W, C
    cfg = resolve_data_config({}, model=create_model("resnet50", weights="none"))
    mean, std = np.array(cfg["mean"]), np.array(cfg["std"])
    expected = ((images / 255.0 - mean) / std).transpose(0, 3, 1, 2)
    got = ResNet50.preprocess_input(images)
    assert got.shape == (2, 3, 5, 7) and np.allclose(got.numpy(), expected, atol=1e-5)
    assert np.allclose(preprocess_input(images[0], model="resnet50").numpy(), expected[:1], atol=1e-5)
    with pytest.raises(ValueError, match="channels last"):
        ResNet50.preprocess_input(np.zeros((3, 5, 7)))


def test_classify_and_predict_never_cut_a_word_at_80_columns(frozen_run, tiny_weights, monkeypatch):
    root, out, _ = frozen_run
    images = sorted(str(p) for p in (root / "validation").rglob("*.png"))[:3]
    monkeypatch.setenv("COLUMNS", "80")
    for args in (["classify", *images, "--top-k", "3", "--model", TINY_MODEL, "--weights", str(tiny_weights)],
                 ["predict", str(out), *images, "--top-k", "2"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
        words = [w.strip(",()") for w in " ".join(lines).split()]
        # every label and every image name appears whole (wrapping only between words)
        for r in json.loads(runner.invoke(app, [*args, "--json"]).stdout):
            assert any(word.endswith(Path(r["path"]).name) for word in words)
            for t in r["top"]:
                assert all(part in words for part in t["label"].replace(",", "").split())


@pytest.mark.parametrize("family", ["Xception", "DenseNet121", "MobileNetV2", "MobileNetV3Small", "VGG16",
                                    "EfficientNetB0", "InceptionV3", "InceptionResNetV2"])
def test_keras_layers_from_the_middle_train_what_keras_trains(family):
    """`layers[N:]` from the middle of Keras' list: our trainable count equals Keras' (its weights from N, less
    BatchNormalization's moving statistics, from Keras 3's own table). Keras' Inception BatchNormalization has no
    scale (3 vectors per channel) where PyTorch's has one: then ours is larger by exactly one weight per channel.
    The command line's `unfreeze-from=keras:N` trains the same parameters as the Python loop."""
    import torch

    from transferlab import applications
    from transferlab.models import build_classifier
    from transferlab.models.catalog import CATALOG
    from transferlab.training.strategies import apply_strategy

    base = getattr(applications, family)(include_top=False, weights=None)
    table = _keras_table(family)["layers"]
    weighted = [la["index"] for la in table if la["weights"]]
    n = weighted[len(weighted) // 2]
    base.trainable = False
    for layer in base.layers[n:]:
        layer.trainable = True
    vectors = 3 if family.startswith("Inception") else 4
    channels = sum(la["weights"] // vectors for la in table[n:] if la["class"] == "BatchNormalization")
    keras_trainable = sum(la["weights"] for la in table[n:]) - 2 * channels
    ours = sum(p.numel() for p in base.trainable_weights)
    assert ours == keras_trainable + (channels if vectors == 3 else 0)
    name = next(e.name for e in CATALOG if e.keras == family)
    with torch.device("meta"):
        model = apply_strategy(build_classifier(name, num_classes=2, weights="none"), f"unfreeze-from=keras:{n}")
    head = sum(p.numel() for p in model.head.parameters())
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == ours + head


def _strip_terminal(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07", "", text).replace("\r", "\n")


@pytest.mark.heavy
def test_epoch_lines_stay_in_a_terminal_beside_the_live_bar(tmp_path, tiny_weights):
    """In a real (pseudo-)terminal the progress bar is live and each epoch still leaves its own line."""
    import pty
    import subprocess
    import sys

    data = make_dataset(tmp_path / "data", n_train=10, n_val=4)
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm-256color"}
    proc = subprocess.Popen([sys.executable, "-m", "transferlab", "train", str(data), "--model", TINY_MODEL,
                             "--weights", str(tiny_weights), "--epochs", "3", "--patience", "0", "--image-size", "32",
                             "--num-workers", "0", "--no-feature-cache", "--out", str(tmp_path / "run")],
                            stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=120)
    os.close(leader)
    text = _strip_terminal(b"".join(chunks).decode("utf-8", "replace"))
    assert proc.returncode == 0, text[-2000:]
    for epoch in (1, 2, 3):
        assert re.search(rf"^Epoch {epoch}/3  loss \d\.\d{{3}}  accuracy", text, re.M), text[-3000:]


def test_a_notebook_run_prints_no_lightning_noise(tmp_path, tiny_weights):
    """In Jupyter the epochs are one growing table (tests/test_notebook_api.py), and Lightning's start-up lines
    ("GPU available", ...) are not printed."""
    data = make_dataset(tmp_path / "data", n_train=10, n_val=4)
    outputs = run_in_notebook(
        "import transferlab\n"
        f"transferlab.fit(transferlab.TrainConfig(data={str(data)!r}, out={str(tmp_path / 'run')!r}, "
        f"model={TINY_MODEL!r}, weights={str(tiny_weights)!r}, epochs=3, patience=0, image_size=32, num_workers=0))")
    texts = [_strip_terminal(o.get("text") or o.get("data", {}).get("text/plain", "")) for o in outputs]
    table = next(t for t in texts if t.startswith("Epoch 1/3"))
    assert [line.split()[1] for line in table.splitlines()] == ["1/3", "2/3", "3/3"]
    assert not any("GPU available" in t for t in texts)


def test_train_help_is_readable_at_80_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = runner.invoke(app, ["train", "--help"])
    assert result.exit_code == 0
    text = result.output
    assert "…" not in text and all(len(line) <= 80 for line in text.splitlines())
    flat = " ".join(text.split())
    assert "Maximum number of epochs; default 10" in flat and "[default: 32]" in flat  # defaults shown
    for panel in ("Data", "Model and strategy", "Optimisation", "Speed", "Augmentation (Keras names)", "Run folder"):
        assert f"─ {panel} ─" in text
    assert "--no-feature-cache" in text and "--horizontal-flip" in text  # the flag that changes the default
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.output.startswith("transferlab ")


def test_hidden_opposite_flags_still_work(tmp_path, tiny_weights):
    """`--feature-cache` (default on) and `--no-horizontal-flip` are hidden from the help but accepted, to override
    a YAML config."""
    data = make_dataset(tmp_path / "data", n_train=4, n_val=2)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("feature_cache: false\naugment: {horizontal_flip: true}\n")
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(data), "--config", str(cfg), "--feature-cache", "--no-horizontal-flip",
                                 "--model", TINY_MODEL, "--weights", str(tiny_weights), "--epochs", "1",
                                 "--image-size", "32", "--num-workers", "0", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["feature_cache"] is True and saved["augment"]["horizontal_flip"] is False


def test_two_phase_says_what_phase_2_does_and_advise_is_quiet(tmp_path, tiny_weights):
    import subprocess
    import sys

    data = make_dataset(tmp_path / "data", n_train=8, n_val=4)
    proc = subprocess.run([sys.executable, "-m", "transferlab", "train", str(data), "--model", TINY_MODEL, "--weights",
                           str(tiny_weights), "--strategy", "two-phase", "--epochs", "1", "--finetune-epochs", "1",
                           "--image-size", "32", "--num-workers", "0", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    flat = " ".join(proc.stderr.split())
    assert "Phase 2 fine-tunes the unfrozen layers at lr 0.0001 (lr / 10)" in flat
    assert "The loss often rises for an epoch when layers unfreeze" in flat
    assert "Phase 1, epoch 1/1" in flat and "Phase 2, epoch 1/1" in flat
    advice = subprocess.run([sys.executable, "-m", "transferlab", "advise", str(data), "--model", TINY_MODEL,
                             "--weights", str(tiny_weights)], capture_output=True, text=True, timeout=300)
    assert advice.returncode == 0, advice.stderr[-2000:]
    noise = advice.stdout + advice.stderr
    for raw in ("Warning", "warnings.warn", "Failed to compute suggestion", "GPU available", "LOCAL_RANK"):
        assert raw not in noise, raw


def test_the_courses_keras_calls_work_on_the_facade():
    """The course's first cells, as a student types them: Keras' constructors with the top return a model with
    Keras' layers (177 for ResNet50, index 143 = conv5_block1_1_conv, the top `avg_pool` + `predictions`), summary
    with Keras' names and output shapes, get_layer, trainable, count_params, predict and decode_predictions, and
    each family's own preprocess_input."""
    import numpy as np
    from timm.data import resolve_data_config

    from transferlab.applications import EfficientNetLite0, ResNet50
    from transferlab.applications.efficientnet_lite import preprocess_input as lite_preprocess
    from transferlab.applications.resnet50 import decode_predictions, preprocess_input
    from transferlab.errors import SettingError
    from transferlab.models import create_model

    model = ResNet50(include_top=True, weights=None)
    assert len(model.layers) == 177 and model.layers[143].name == "conv5_block1_1_conv"
    assert [la.name for la in model.layers[-2:]] == ["avg_pool", "predictions"]
    assert model.get_layer("predictions").counterpart.module is model.model.fc
    assert model.get_layer(index=143) is model.layers[143]
    with pytest.raises(SettingError, match="Did you mean 'predictions'"):
        model.get_layer("prediction")
    printed = []
    text = model.summary(print_fn=printed.append)
    assert printed == [text]
    # PyTorch's ResNet (v1.5) strides at the block's 3x3 convolution, Keras' at its first 1x1: this 1x1 still sees
    # 14x14 here (7x7 in Keras); the output of the stage is 7x7 in both
    assert any(line.startswith("conv5_block1_1_conv (Conv2D)") and "(None, 14, 14, 512)" in line
               for line in text.splitlines())
    assert any(line.startswith("conv5_block3_out (Activation)") or line.startswith("conv5_block3_3_bn")
               and "(None, 7, 7, 2048)" in line for line in text.splitlines())
    assert any(line.startswith("predictions (Dense)") and "(None, 1000)" in line and "2,049,000" in line
               for line in text.splitlines())
    # Keras' own count of ResNet50 with its top: 25,636,712 (its convolutions have biases: 26,560 more weights)
    assert model.count_params() == 25_636_712 - 26_560
    model.trainable = False
    for layer in model.layers[143:]:
        layer.trainable = True
    frozen = sum(p.numel() for p in model.model.layer3.parameters() if p.requires_grad)
    assert frozen == 0 and all(p.requires_grad for p in model.model.fc.parameters())
    images = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3)).astype(np.float32)
    x = preprocess_input(images)
    cfg = resolve_data_config({}, model=create_model("resnet50", weights="none"))
    assert np.allclose(x.numpy(), ((images / 255 - cfg["mean"]) / cfg["std"]).transpose(0, 3, 1, 2), atol=1e-5)
    assert not np.allclose(lite_preprocess(images).numpy(), x.numpy())  # the family's own statistics
    preds = model.predict(x)
    assert preds.shape == (2, 1000) and np.allclose(preds.sum(1), 1.0, atol=1e-5)
    assert np.allclose(model.predict(images), preds, atol=1e-5)  # raw 0..255 pixels are normalised the same way
    decoded = decode_predictions(preds, top=3)
    assert [len(row) for row in decoded] == [3, 3] and all(p1 >= p2 for (_, _, p1), (_, _, p2) in
                                                           zip(decoded[0], decoded[0][1:]))
    with pytest.raises(SettingError, match="ResNet50.preprocess_input"):
        __import__("transferlab.applications", fromlist=["preprocess_input"]).preprocess_input(images)
    # the bundled ImageNet weights: a photo of a cat is called a cat, as `transferlab classify` calls it
    lite = EfficientNetLite0(weights="imagenet")
    photo = Path(__file__).resolve().parents[1] / "src" / "transferlab" / "data" / "samples" / "chelsea.jpg"
    top = decode_predictions(lite.predict([str(photo)]), top=1)[0][0]
    classified = json.loads(runner.invoke(app, ["classify", str(photo), "--top-k", "1", "--json"]).stdout)
    assert top[0] == classified[0]["top"][0]["wnid"] and "cat" in top[1]


def test_layers_keeps_every_name_whole_at_80_columns():
    """The names `unfreeze-from=NAME` needs are never cut (the other columns fold instead)."""
    from transferlab.models import build_classifier
    from transferlab.models.transfer import base_layers

    result = runner.invoke(app, ["layers", "efficientnet_lite0"], env={"COLUMNS": "80"})
    assert result.exit_code == 0 and "…" not in result.output
    words = set(result.output.split())
    names = [layer.name for layer in base_layers(build_classifier("efficientnet_lite0", 2, weights="none").features)]
    assert all(name in words for name in names), [n for n in names if n not in words][:5]


def test_augment_help_describes_every_option():
    result = runner.invoke(app, ["augment", "--help"], env={"COLUMNS": "100"})
    text = " ".join(result.output.split())
    for words in ("none, course, flip, light or strong", "YAML with an 'augment' block", "Images in the grid",
                  "Random seed", "PNG file to write", "Model whose preprocessing to use"):
        assert words in text, words
