"""Advice under a time budget: which strategy gives the best accuracy within B minutes on this machine.

Over 400 lines: the probes' clock, the simulation of a budgeted run and the forecast read the same measurements
(the per-phase step, epoch and validation costs), so they stay in one owner.

Nothing is assumed about the machine or the data: every candidate strategy trains for real, through `fit`,
on a probe of the user's own images (a few hundred training images drawn per class, and a share of the
validation images), with a clock on Lightning's hooks. From the probes:

- time: per phase, the seconds of a training step (batch), the other seconds of an epoch (loader start-up,
  checkpoints) and of its validation, measured by hooks on every batch; on the full data set each phase is
  simulated as `train --max-minutes` runs it (Lightning's timer stops after the first batch past the phase's
  share of the budget, inside an epoch too; `two-phase` gives each phase half), which gives its optimizer
  steps; set-up (caches made before training, e.g. frozen features) scales per image, plus the fixed cost of
  a run;
- accuracy, by optimizer steps: a phase that takes S steps on the full data reads the probe's best validation
  accuracy within its first S / (probe batches per epoch) epochs (at least one, at most all); its error is then
  multiplied by the error ratio of the full data set to the probe's, read off a learning curve of a linear probe
  on frozen features (cross-validated at growing numbers of images, read as a power law; the same ratio for every
  strategy). Scaling the error, not adding an accuracy gain, keeps strategies near 100% apart (an added gain
  capped at 1.0 tied them).

Probes run with a temporary cache home, so their set-up is measured cold (and the user's caches are not
filled with probe files). Before `full` and `two-phase` are probed, two training steps of the whole model on
random images estimate their epoch (no decoding, no validation): a strategy whose single epoch would take
over `SKIP_MARGIN` times the time it has (it would see a tenth of the images once) is skipped without a probe.

It sits in workflows/ because it runs `fit` (training/ stays below it; `training.advise` gives the
measurements it starts from).

Example:
    >>> advice = advise_within("my_photos", "10m")  # doctest: +SKIP
    >>> advice.strategy, [(f["strategy"], f["accuracy"]) for f in advice.forecasts]  # doctest: +SKIP
    ('freeze', [('freeze', 0.917), ('unfreeze-last=2', 0.745), ('two-phase', None), ('full', None)])
"""

from __future__ import annotations

import csv
import math
import os
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback

from ..errors import SettingError
from ..training.strategies import advised_candidates, get_spec, plan_phases

__all__ = ["Forecast", "advise_within", "forecast", "probe", "plan", "choose", "parse_budget", "STRATEGIES"]

STRATEGIES = advised_candidates()  # every strategy the advice may propose (`StrategySpec.advised_as`)
PROBE_TRAIN, PROBE_VAL = 256, 256
CAVEAT = ("checked on three small data sets (600-1,438 training images) with 1, 10 and 30 minutes: the advised "
          "strategy was within 1 point of the best one each time (docs/results.md). The predictions come from "
          "short trial runs, so strategies that need many epochs can be under-predicted; when it matters, train "
          "the two best with the same --max-minutes and compare")
SKIP_MARGIN = 10  # skipped unprobed: one epoch's training steps take 10x the time it has (it would see a tenth)
MAX_BUDGET = 7 * 24 * 3600  # a week: more is a typo, and would overflow the time arithmetic
PROBE_FIXED_SECONDS = 6.0  # a probe's cost besides its images: building the model, Lightning's set-up, the report


def parse_budget(text: str | float) -> float:
    """A time budget in seconds from '90s', '10m', '1.5h' or a number of minutes.

    Example:
        >>> parse_budget("10m"), parse_budget("90s"), parse_budget(2)
        (600.0, 90.0, 120.0)
    """
    match = re.fullmatch(r"\s*(\d{1,9}(?:\.\d{1,9})?)\s*([smh]?)\s*", str(text).lower())
    seconds = float(match.group(1)) * {"s": 1, "m": 60, "": 60, "h": 3600}[match.group(2)] if match else 0.0
    if not 0 < seconds <= MAX_BUDGET:
        shown = str(text) if len(str(text)) <= 40 else str(text)[:37] + "..."
        raise SettingError(f"--budget must be a time from a few seconds to a week, such as 90s, 10m or 1.5h (minutes "
                           f"without a unit); got {shown!r}.")
    return seconds


def budget_words(seconds: float) -> str:
    """A budget in minutes as the advice says it.

    Example:
        >>> budget_words(60), budget_words(600), budget_words(90)
        ('1 minute', '10 minutes', '1.5 minutes')
    """
    minutes = seconds / 60
    return f"{minutes:g} minute{'' if minutes == 1 else 's'}"


@dataclass
class Forecast:
    """One strategy under the budget: epochs that fit, predicted wall seconds and validation accuracy."""

    strategy: str
    fits: bool
    epochs: int = 0
    finetune_epochs: int | None = None
    seconds: float | None = None
    accuracy: float | None = None
    why: str = ""
    probe: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Clock(Callback):
    """Times each phase: every training batch, every epoch and the validation inside it (sanity checks excluded)."""

    def __init__(self) -> None:
        self.phases: list[dict[str, Any]] = []

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self.phases.append({"start": time.perf_counter(), "epochs": [], "batches": [], "val": []})

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self.phases[-1]["epochs"].append(time.perf_counter())
        self.phases[-1]["batches"].append([])
        self.phases[-1]["val"].append(0.0)

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self._batch = time.perf_counter()

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.phases[-1]["batches"][-1].append(time.perf_counter() - self._batch)

    def on_validation_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.sanity_checking and self.phases:
            self._val = time.perf_counter()

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.sanity_checking and self.phases:
            self.phases[-1]["val"][-1] += time.perf_counter() - self._val

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self.phases[-1]["end"] = time.perf_counter()


def _probe_split(data: str | os.PathLike[str], folder: Path, seed: int) -> tuple[Path, dict[str, int]]:
    """A CSV index (path, label, split) of a probe drawn per class from the data's own split."""
    import random

    from ..data.sources import load_image_folder

    splits = load_image_folder(data, seed=seed)
    k = len(splits.classes)
    rng = random.Random(seed)

    def pick(samples: list, total: int) -> list:
        chosen = []
        for c in range(k):
            members = [s for s in samples if s.label == c]
            chosen += rng.sample(members, min(len(members), max(2, total // k)))
        return chosen

    train = pick(splits.train, max(PROBE_TRAIN, 32 * k))
    val = pick(splits.validation, max(PROBE_VAL, 16 * k))
    index = folder / "probe.csv"
    with open(index, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "split"])
        for split, samples in (("train", train), ("validation", val)):
            writer.writerows([str(Path(s.path).resolve()), splits.classes[s.label], split] for s in samples)
    sizes = {"train": len(splits.train), "validation": len(splits.validation), "probe_train": len(train),
             "probe_validation": len(val), "classes": k}
    return index, sizes


def _run_probe(index: Path, out: Path, strategy: str, model: str, weights: str | None, seed: int,
               max_minutes: float | None = None) -> dict[str, Any]:
    from ..training.config import TrainConfig
    from ..training.fit import fit

    spec = get_spec(strategy)
    settings: dict[str, Any] = {name: spec.probe_epochs for name in spec.epoch_settings}  # each phase's epochs
    clock = _Clock()
    start = time.perf_counter()
    config = TrainConfig(data=str(index), out=str(out), model=model, weights=weights, strategy=strategy, patience=0,
                         seed=seed, max_minutes=max_minutes, **settings)
    result = fit(config, overwrite=True, quiet=True, callbacks=[clock])
    wall = time.perf_counter() - start
    phases = []
    for number, phase in enumerate(clock.phases, start=1):
        marks = [*phase["epochs"], phase["end"]]
        rows = [r for r in result.history if int(r.get("phase") or 1) == number]
        epochs = [b - a for a, b in zip(marks, marks[1:])]
        phases.append({"epochs": len(phase["epochs"]), "epoch_seconds": epochs, "batches": len(phase["batches"][0]),
                       **_step_costs(phase["batches"], phase["val"], epochs),
                       "val_accuracy": [r.get("val_accuracy") for r in rows]})
    first, last = clock.phases[0]["start"] - start, start + wall - clock.phases[-1]["end"]
    between = sum(b["start"] - a["end"] for a, b in zip(clock.phases, clock.phases[1:]))
    return {"wall": wall, "setup": first + between, "report": last, "batch_size": config.batch_size,
            "phases": phases}


def _step_costs(batches: list[list[float]], val: list[float], epochs: list[float]) -> dict[str, float]:
    """A phase's epoch as Lightning runs it: `step` seconds per training batch (the median of every batch but the
    first of each epoch, which waits for the loader), `overhead` seconds per epoch besides its batches and its
    validation (loader start-up, checkpoints; the median over epochs), and its validation seconds (the median)."""
    steady = [t for epoch in batches for t in epoch[1:]] or [t for epoch in batches for t in epoch]
    step = statistics.median(steady)
    overhead = statistics.median(max(0.0, e - v - step * len(b)) for e, v, b in zip(epochs, val, batches))
    return {"step": step, "overhead": overhead, "val": statistics.median(val)}


@contextmanager
def _cache_home(folder: Path) -> Iterator[None]:
    """$TRANSFERLAB_HOME set to `folder` for the block, restored after."""
    before = os.environ.get("TRANSFERLAB_HOME")
    os.environ["TRANSFERLAB_HOME"] = str(folder)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TRANSFERLAB_HOME", None)
        else:
            os.environ["TRANSFERLAB_HOME"] = before


def _model_seconds(model: str, weights: str | None, classes: int) -> tuple[float, float]:
    """(forward, training step) seconds per image of the whole model on random images, at `train`'s default batch
    size and memory format (fp32, Adam): what extraction and `full` cost per image before decoding."""
    import torch

    from ..data.transforms import preprocessing_from_model
    from ..models import build_classifier
    from ..training.config import TrainConfig

    defaults = TrainConfig()
    net = build_classifier(model, classes, weights=weights).train()
    size, batch = preprocessing_from_model(net).image_size, defaults.batch_size
    x, y = torch.randn(batch, 3, size, size), torch.arange(batch) % classes
    if defaults.channels_last:
        net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-5)
    steps = []
    for _ in range(3):  # the first step warms up
        start = time.perf_counter()
        optimizer.zero_grad()
        out = net(x)
        if out.shape[-1] == 1:  # a sigmoid head (the course CNN on two classes)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(out.squeeze(-1), (y % 2).float())
        else:
            loss = torch.nn.functional.cross_entropy(out, y)
        loss.backward()
        optimizer.step()
        steps.append(time.perf_counter() - start)
    net.eval()
    with torch.inference_mode():
        start = time.perf_counter()
        net(x)
        forward = time.perf_counter() - start
    return forward / batch, min(steps[1:]) / batch


def _learning_curve_error_ratio(features: Any, labels: Any, probe_n: int, full_n: int) -> tuple[float, list]:
    """How much the full training set cuts a linear probe's error against `probe_n` images: err(full_n) /
    err(probe_n), from cross-validated accuracies at growing subsets of the measured features (5-fold: each point
    trains on 4/5 of its images), read as a power law (log error linear in log images) between points and beyond
    the last two; errors below half an image are read as half an image. At most 1 (more images never hurt)."""
    import torch

    from ..training.advise import linear_probe_accuracy

    available = len(labels)
    sizes = sorted({min(n, available) for n in (probe_n, 2 * probe_n, 4 * probe_n, available)})
    order = torch.randperm(available, generator=torch.Generator().manual_seed(0))
    curve = [(n * 4 / 5, linear_probe_accuracy(features[order[:n]], labels[order[:n]])) for n in sizes if n >= 10]
    if len(curve) < 2 or full_n <= probe_n:
        return 1.0, curve
    floor = 0.5 / available

    def log_error(n: float) -> float:
        pairs = list(zip(curve, curve[1:]))
        (na, aa), (nb, ab) = next(((a, b) for a, b in pairs if n <= b[0]), pairs[-1])
        ea, eb = math.log(max(1 - aa, floor)), math.log(max(1 - ab, floor))
        return ea + (eb - ea) * math.log(n / na) / math.log(nb / na)

    return min(1.0, math.exp(log_error(full_n) - log_error(probe_n))), curve


def forecast(data: str | os.PathLike[str], budget_seconds: float, model: str = "efficientnet_lite0",
             weights: str | None = None, features: Any = None, labels: Any = None, seed: int = 42,
             strategies: tuple[str, ...] = STRATEGIES, deadline: float | None = None,
             say: Callable[[str], None] | None = None) -> tuple[list[Forecast], dict[str, Any]]:
    """Probes each strategy on `data` and predicts its epochs, wall seconds and accuracy within the budget.

    Args:
        data: The data folder (as for `train`).
        budget_seconds: Training time allowed (the training loops, as `train --max-minutes`).
        model: Model name.
        weights: As for `train`.
        features: Frozen features of measured training images (for the learning curve), with `labels`.
        labels: Their class indices.
        seed: Seed of the probe's draw and training.
        strategies: The candidates.
        deadline: When the advice must be done (`time.perf_counter()`); probes that would not end by then are not
            run.
        say: Gets one line per step (what is measured, each probe and its result).

    Returns:
        The forecasts (one per strategy) and the probes' facts (sizes, error ratio, the learning curve, the raw
        probes), from which `plan(facts, other_budget)` gives the forecasts for any smaller budget.
    """
    facts = probe(data, budget_seconds, model, weights, features, labels, seed, strategies, deadline, say)
    return plan(facts, budget_seconds), facts


def probe(data: str | os.PathLike[str], budget_seconds: float, model: str = "efficientnet_lite0",
          weights: str | None = None, features: Any = None, labels: Any = None, seed: int = 42,
          strategies: tuple[str, ...] = STRATEGIES, deadline: float | None = None,
          say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The measurements behind `forecast` (the arguments are the same); strategies clearly too slow for
    `budget_seconds` are not probed. With a `deadline` (a `time.perf_counter()` value), the probes are estimated
    first, the estimate is said, and a probe that would not end by the deadline is not run (its training is also
    stopped at the deadline); `say` gets one line per step."""
    say = say or (lambda line: None)
    with tempfile.TemporaryDirectory(prefix="tl-probe-") as tmp:
        index, sizes = _probe_split(data, Path(tmp), seed)
        ratio, curve = (1.0, [])
        if features is not None and labels is not None:
            ratio, curve = _learning_curve_error_ratio(features, labels, sizes["probe_train"], sizes["train"])
        facts: dict[str, Any] = {**sizes, "error_ratio": round(ratio, 4), "strategies": list(strategies),
                                 "learning_curve": [(round(n), round(a, 4)) for n, a in curve], "probes": {},
                                 "not_probed": {}}
        costs = _probe_costs(index, model, weights, sizes, strategies, facts)
        facts["probe_estimates"] = {k: round(v, 1) for k, v in costs.items()}
        left = (deadline - time.perf_counter()) if deadline is not None else None
        say("Probes: " + ", ".join(f"{s} about {costs[s]:.0f} s" for s in strategies if s in costs)
            + (f" ({left:.0f} s of the advice's time left)" if left is not None else ""))
        for number, strategy in enumerate(strategies, start=1):
            why = _skip(strategy, facts, budget_seconds) if get_spec(strategy).whole_model else ""
            left = (deadline - time.perf_counter()) if deadline is not None else None
            if not why and left is not None and costs[strategy] > left:
                why = (f"not probed: its trial would take about {costs[strategy]:.0f} s, and {max(0.0, left):.0f} s "
                       "of the advice's budget were left")
            if why:
                facts["not_probed"][strategy] = why
                say(f"Probe {number}/{len(strategies)}: {strategy}: {why}")
                continue
            say(f"Probe {number}/{len(strategies)}: {strategy} on {sizes['probe_train']} + {sizes['probe_validation']} "
                f"images (about {costs[strategy]:.0f} s)...")
            with _cache_home(Path(tmp) / "home"):
                result = _run_probe(index, Path(tmp) / strategy.replace("=", ""), strategy, model, weights, seed,
                                    max_minutes=max(left, 1.0) / 60 if left is not None else None)
            facts["probes"][strategy] = result
            accuracies = [a for p in result["phases"] for a in p["val_accuracy"] if a is not None]
            say(f"  {strategy}: {result['wall']:.0f} s, best validation accuracy "
                + (f"{max(accuracies):.3f}" if accuracies else "none (no epoch ended)"))
    return facts


def _probe_costs(index: Path, model: str, weights: str | None, sizes: dict[str, int], strategies: tuple[str, ...],
                 facts: dict[str, Any]) -> dict[str, float]:
    """Seconds each probe should take, from two quick measurements: a forward pass and a training step of the whole
    model per image (random inputs) and the decoding of a few of the images. A phase on cached features costs one
    pass over the probe's images; a phase from a stage boundary, that pass and its epochs of half the model; a
    whole-model phase, its epochs of training and validation."""
    import csv

    from ..data.images import load_rgb

    with open(index, newline="", encoding="utf-8") as f:
        paths = [row["path"] for row in csv.DictReader(f)][:8]
    start = time.perf_counter()
    for path in paths:
        load_rgb(path, min_size=256)
    decode = (time.perf_counter() - start) / max(1, len(paths))
    forward, step = _model_seconds(model, weights, sizes["classes"])
    facts["step_seconds"] = step
    n_t, n_v, per_image = sizes["probe_train"], sizes["probe_validation"], forward + decode
    costs = {}
    for strategy in strategies:
        total = PROBE_FIXED_SECONDS
        for phase in _phases_of(strategy):
            epochs = get_spec(strategy).probe_epochs
            if phase.strategy.spec.cache == "features":
                total += (n_t + n_v) * per_image
            elif phase.strategy.spec.cache == "boundary":
                total += (n_t + n_v) * per_image + epochs * n_t * step / 2
            else:
                total += epochs * (n_t * (step + decode) + n_v * per_image)
        costs[strategy] = total
    return costs


def _skip(strategy: str, facts: dict[str, Any], budget: float) -> str:
    """Why a whole-model strategy is clearly too slow for `budget` ('' when it is worth a probe)."""
    if not get_spec(strategy).whole_model or not facts.get("step_seconds"):
        return ""
    bound = facts["step_seconds"] * facts["train"]
    allowed = budget / _phase_count(strategy)  # each phase gets its share
    if bound <= SKIP_MARGIN * allowed:
        return ""
    return (f"one epoch of the whole model would take about {bound:.0f} s (its training steps alone), over "
            f"{SKIP_MARGIN:g}x the {allowed:.0f} s it would have")


def _phases_of(strategy: str) -> list[Any]:
    """The phases `train` would run for `strategy` with default settings (the spec's plan)."""
    from ..training.config import TrainConfig

    return plan_phases(TrainConfig(strategy=strategy, lr=get_spec(strategy).default_lr))


def _phase_count(strategy: str) -> int:
    return len(_phases_of(strategy))


def plan(facts: dict[str, Any], budget_seconds: float) -> list[Forecast]:
    """The forecasts for `budget_seconds` from `probe`'s facts (a budget no larger than the probed one)."""
    probes = facts["probes"]
    fixed = min((p["setup"] for p in probes.values()), default=0.0)  # a run's cost before any image is cached
    rows = []
    for strategy in facts["strategies"]:
        why = _skip(strategy, facts, budget_seconds)
        if why or strategy not in probes:
            rows.append(Forecast(strategy, False, why=why or facts.get("not_probed", {}).get(strategy, "not probed")))
            continue
        rows.append(_predict(strategy, probes[strategy], budget_seconds, facts["error_ratio"], fixed,
                             facts["probe_train"], facts["probe_validation"], facts["train"], facts["validation"]))
    return rows


def choose(rows: list[Forecast]) -> Forecast | None:
    """The advised forecast: the best predicted accuracy among those that fit (to 0.1 point; ties: faster)."""
    fitting = [r for r in rows if r.fits and r.accuracy is not None]
    return max(fitting, key=lambda r: (round(r.accuracy or 0.0, 3), -(r.seconds or 0.0)), default=None)


def _simulate(phase: dict[str, Any], share: float, max_epochs: int, batches: int, val: float) -> tuple[int, int, float]:
    """(training steps, epochs begun, seconds) of a phase on the full data as `train --max-minutes` runs it:
    Lightning's timer stops the phase after the first batch that ends past its share of the budget (inside an
    epoch too), and the epoch's validation still runs; `batches` per epoch, `val` seconds per validation."""
    t, steps, epochs = 0.0, 0, 0
    while epochs < max_epochs:
        epochs += 1
        t += phase["overhead"]
        left = max(1, math.ceil((share - t) / phase["step"])) if phase["step"] > 0 else batches
        if left < batches:  # the budget ends inside this epoch
            return steps + left, epochs, t + left * phase["step"] + val
        steps, t = steps + batches, t + batches * phase["step"] + val
        if t >= share:
            break
    return steps, epochs, t


def _predict(strategy: str, probe: dict[str, Any], budget: float, ratio: float, fixed: float, n_t: int, n_v: int,
             big_t: int, big_v: int) -> Forecast:
    """One strategy's forecast. Time: each phase simulated on the full data from the probe's step, per-epoch and
    validation costs (validation scales with the validation images). Accuracy by optimizer steps: a phase that
    takes S steps on the full data reads the probe's best validation accuracy within its first S / (probe batches
    per epoch) epochs (at least one, at most all), its error times the full data set's error ratio."""
    phases = probe["phases"]
    share = budget / len(phases)  # each phase gets its share of the budget
    batches = math.ceil(big_t / probe["batch_size"])  # the full data's batches per epoch
    runs = [_simulate(phase, share, get_spec(strategy).budget_epochs, batches, phase["val"] * big_v / n_v)
            for phase in phases]  # every phase's epochs are capped at the spec's budget_epochs
    setup = fixed + (probe["setup"] - fixed) * (big_t + big_v) / (n_t + n_v)
    # the final report scores the cached validation features when every phase trained a head on them (no image
    # pass); otherwise it runs the validation images again
    cached_report = all(p.strategy.spec.cache == "features" for p in _phases_of(strategy))
    report = probe["report"] * (1.0 if cached_report else big_v / n_v)
    reached = []  # the probe's accuracies within the steps each phase takes on the full data
    for (steps, _, _), phase in zip(runs, phases):
        reach = max(1, math.floor(steps / max(1, phase["batches"])))
        reached += [a for a in phase["val_accuracy"][:reach] if a is not None]
    facts = {"probe_epochs": [p["epochs"] for p in phases], "probe_val_accuracy": [p["val_accuracy"] for p in phases],
             "steps": [r[0] for r in runs], "step_seconds": [round(p["step"], 4) for p in phases],
             "setup_seconds": round(setup, 1), "probe_seconds": round(probe["wall"], 1)}
    accuracy = 1 - (1 - max(reached)) * ratio if reached else None
    seconds = setup + sum(r[2] for r in runs) + report
    return Forecast(strategy, accuracy is not None, runs[0][1], runs[1][1] if len(runs) > 1 else None,
                    round(seconds, 1), None if accuracy is None else round(accuracy, 4), probe=facts)


def advise_within(data: str | os.PathLike[str], budget: str | float, model: str = "efficientnet_lite0",
                  weights: str | None = None, max_images: int = 2000, quiet: bool = True, seed: int = 42,
                  say: Callable[[str], None] | None = None) -> Any:
    """`advise` under a time budget: the measurements of `training.advise.advise`, then every strategy probed
    and the one with the best predicted accuracy within `budget` advised (the table in `advice.forecasts`,
    the probes in `advice.measurements['probe']`, from which `plan` replans for a smaller budget).

    The advice itself takes no longer than the budget it advises on: the measurement uses at most 4 images per
    second of budget, and a probe that would not end within the budget is not run (the table says so).

    Args:
        data: The data folder (as for `train`).
        budget: '90s', '10m', '1.5h' or minutes: the training loops' time (as `train --max-minutes`).
        model: The model to advise for.
        weights: As for `train`.
        max_images: At most this many training images are measured for the learning curve.
        quiet: No progress bars.
        seed: Seed of the samples and the probes.
        say: Gets one line per step, as it happens (the CLI prints them, to a pipe too).

    Raises:
        SettingError: A malformed budget, or no strategy fits one epoch into it.
    """
    from ..training.advise import advise, similarity_words, train_command

    say = say or (lambda line: None)
    seconds = parse_budget(budget)
    start = time.perf_counter()
    deadline = start + seconds
    measured = min(max_images, max(100, int(seconds * 4)))
    say(f"Advising within {budget_words(seconds)}: measuring up to {measured} images, then probing each strategy "
        "on a few hundred of them...")
    advice = advise(data, model, weights, max_images=measured, quiet=quiet, lr_test=False, seed=seed)
    say(f"Measured {advice.measurements.get('measured_images', 0)} images in {time.perf_counter() - start:.0f} s.")
    pretrained = advice.features is not None
    candidates = advised_candidates(pretrained)  # without pretrained weights: only what trains from scratch
    rows, facts = forecast(data, seconds, advice.model, weights, advice.features, advice.labels, seed, candidates,
                           deadline, say)
    best = choose(rows)
    if best is None:
        raise SettingError(f"No strategy fits one epoch into a budget of {budget}: "
                           + "; ".join(f"{r.strategy}: {r.why}" for r in rows)
                           + ". Give a larger --budget or use fewer images.")
    minutes = seconds / 60
    reasons = [f"each strategy trained on {facts['probe_train']} training and {facts['probe_validation']} "
               f"validation images for a few epochs; scaled to all {facts['train']} + {facts['validation']} "
               f"images, {best.strategy} should reach the best validation accuracy within {budget_words(seconds)} "
               f"of training ({best.accuracy:.1%}; about {best.epochs} epochs fit)"]
    if "imagenet_confidence" in advice.measurements:
        reasons.append(similarity_words(advice.measurements))
    if facts["error_ratio"] < 1:
        reasons.append(f"with all {facts['train']} training images instead of the probe's {facts['probe_train']}, "
                       f"the mistakes should fall to about {facts['error_ratio']:.0%} of the probe's (how a simple "
                       "classifier on the frozen features improved with more images)")
    reasons += [f"{r.strategy} does not fit: {r.why}" for r in rows if not r.fits]
    reasons.append(CAVEAT)
    # the most epochs the forecast allowed, stopped by --max-minutes as its simulation was (a run capped at the
    # predicted epochs would stop early on a machine a little faster than the probes said)
    spec = get_spec(best.strategy)
    cap = spec.budget_epochs
    extra = "".join(f" --{name.replace('_', '-')} {cap}" for name in spec.epoch_settings[1:])
    advice.strategy, advice.epochs, advice.augment = best.strategy, cap, "none"
    advice.lr = spec.default_lr  # the probes trained with the strategy's default rate, as `train` resolves it
    advice.reasons, advice.forecasts, advice.budget_seconds = reasons, [r.to_dict() for r in rows], seconds
    advice.measurements["probe"] = facts
    advice.command = train_command(data, advice.model, best.strategy, advice.lr, cap, "none", weights,
                                   f"{extra} --max-minutes {minutes:g}")
    advice.seconds = round(advice.seconds + time.perf_counter() - start, 1)
    say(f"Advice ready in {time.perf_counter() - start:.0f} s (budget {budget_words(seconds)}).")
    return advice
