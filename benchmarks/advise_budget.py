"""Validation of `transferlab advise --budget`: is the advised strategy within 1 point of the best one run?

The three data sets of benchmarks/advise_validation.py (CIFAR-10 cat/dog at 32 px, scikit-learn's 8x8 digits,
oriented gratings far from ImageNet). For each: `advise_within(data, LARGEST)` probes every strategy once;
the advice for each smaller budget is `budget.plan(probes, budget)` + `budget.choose` (what `advise --budget`
computes from the same measurements). Then every strategy runs for real with `--max-minutes B` and its most
epochs (freeze 20, unfreeze-last=2 10, two-phase 8 + 8, full 10; early stopping as by default), which is
also the advised command of that strategy. A run that ended before its time limit is reused for larger budgets (it
would run identically). Writes JSON and prints a table; docs/results.md quotes it. Run:

    .venv/bin/python benchmarks/advise_budget.py --cifar ../cifar10-jpg --budgets 1 10 30
    .venv/bin/python benchmarks/advise_budget.py --budgets 1 --runs-from benchmarks/results/advise_budget_rule1.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _machine import machine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from advise_validation import cifar_catdog, gratings  # noqa: E402


def run(data: Path, out: Path, strategy: str, minutes: float) -> dict:
    """`strategy` at the most epochs the advice plans for it (every phase), stopped by --max-minutes."""
    from transferlab import TrainConfig, fit
    from transferlab.training.strategies import get_spec

    spec = get_spec(strategy)
    settings = {name: spec.budget_epochs for name in spec.epoch_settings}
    epochs, finetune = settings["epochs"], settings.get("finetune_epochs")
    start = time.perf_counter()
    result = fit(TrainConfig(data=str(data), out=str(out), strategy=strategy, max_minutes=minutes, seed=0,
                             **settings), overwrite=True, quiet=True)
    phases = {}
    for row in result.history:
        phases[int(row.get("phase") or 1)] = phases.get(int(row.get("phase") or 1), 0.0) + float(row["seconds"])
    share = minutes * 60 / len(phases)
    return {"strategy": strategy, "epochs": epochs, "finetune_epochs": finetune, "max_minutes": minutes,
            "best_val_accuracy": result.metrics["max_val_accuracy"], "epochs_run": result.metrics["epochs_run"],
            "wall_seconds": round(time.perf_counter() - start, 1),
            "cut_by_time": any(s >= 0.9 * share for s in phases.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cifar", type=Path, default=Path("../cifar10-jpg"))
    parser.add_argument("--budgets", type=float, nargs="+", default=[1, 10, 30], help="minutes")
    parser.add_argument("--sets", nargs="+", default=["catdog", "digits", "gratings"])
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/advise_budget.json"))
    parser.add_argument("--runs-from", type=Path, help="Reuse the real runs (each strategy at its most epochs) of an "
                        "earlier validation JSON at the same budgets; only the advice is computed again.")
    args = parser.parse_args()
    earlier = {(r["data"], r["budget_minutes"]): r["runs"] for r in json.loads(args.runs_from.read_text())[
        "results"]} if args.runs_from else {}
    from transferlab.data.demo import write_digits
    from transferlab.workflows.budget import STRATEGIES, advise_within, choose, plan

    work = Path(tempfile.mkdtemp(prefix="tl-advise-budget-"))
    makers = {"catdog": lambda: cifar_catdog(args.cifar, work / "catdog"),
              "digits": lambda: write_digits(work / "digits"), "gratings": lambda: gratings(work / "gratings")}
    budgets = sorted(args.budgets)
    results = []
    for name in args.sets:
        data = makers[name]()
        start = time.perf_counter()
        advice = advise_within(data, f"{budgets[-1]}m")
        facts = advice.measurements["probe"]
        advise_seconds = round(time.perf_counter() - start, 1)
        finished: dict[str, dict] = {}  # runs that ended before their time limit: the same at any larger budget
        for minutes in budgets:
            rows = plan(facts, minutes * 60)
            best = choose(rows)
            runs = {}
            for s in STRATEGIES:
                if s in finished or s in earlier.get((name, minutes), {}):
                    runs[s] = finished.get(s) or {**earlier[(name, minutes)][s], "from": str(args.runs_from)}
                    continue
                out = work / "runs" / f"{name}-{s.replace('=', '')}-{minutes:g}"
                runs[s] = run(data, out, s, minutes)
                if not runs[s]["cut_by_time"]:
                    finished[s] = runs[s]
                print(name, minutes, s, runs[s], flush=True)
            advised = runs[best.strategy]  # the advised command: that strategy at its most epochs + --max-minutes
            top = max(STRATEGIES, key=lambda s: runs[s]["best_val_accuracy"] or 0.0)
            gap = (runs[top]["best_val_accuracy"] or 0.0) - (advised["best_val_accuracy"] or 0.0)
            results.append({"data": name, "budget_minutes": minutes, "advised": best.strategy,
                            "advise_seconds": advise_seconds, "forecasts": [r.to_dict() for r in rows],
                            "runs": runs, "advised_run": advised, "best": top,
                            "points_behind_best": round(100 * gap, 2), "passes": round(gap, 6) <= 0.01,
                            "probe_facts": facts})  # budget.plan(facts, seconds) replans from these
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"benchmark": "advise_budget", "budgets": budgets,
                                             "date": datetime.now(UTC).isoformat(timespec="seconds"),
                                             "machine": machine(),
                                             "command": " ".join(sys.argv), "results": results}, indent=2) + "\n")
    print("predicted / measured best validation accuracy of each strategy within the budget")
    print(f"{'data':10}{'min':>5}  {'advised':16}" + "".join(f"{s:>22}" for s in STRATEGIES) + f"{'behind':>8} pass")
    for r in results:
        pred = {f["strategy"]: f for f in r["forecasts"]}
        cells = "".join(f"{_num(pred[s]['accuracy']):>10} / {_num(r['runs'][s]['best_val_accuracy']):<9}"
                        for s in STRATEGIES)
        print(f"{r['data']:10}{r['budget_minutes']:>5g}  {r['advised']:16}{cells}{r['points_behind_best']:>8} "
              f"{r['passes']}")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
