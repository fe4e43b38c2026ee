"""The report's view of a search that prunes: every trial's value and fate at each rung, the
configuration chosen on validation and reported on test, which settings mattered, and the compute
spent against the full grid's.

The choice: the search metric at the last rung among the trials that completed every epoch (ties:
the lower trial number), read from the ledger's decisions (experiment/search_progress.py, shared
with `ck status`). The metric is validation loss or a task's metric on the validation split, so
the test-split results reported for the chosen run were not used to choose it (the same rule as
selection.py: choose on validation, report on test).

Setting importance: Optuna's PED-ANOVA over every trial's rung-0 value (the one rung all trials
reach, so pruned trials count too), in a throwaway in-memory study. Optuna's fANOVA evaluator
needs scikit-learn, which ck does not install; PED-ANOVA is numpy only.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import CkError
from ..experiment.model import Experiment
from ..experiment.search_progress import SearchProgress, TrialProgress, best_completed, read_progress
from ..util.numbers import format_float
from .results import Results, _setup
from .selection import is_validation

MIN_IMPORTANCE_TRIALS = 4  # fewer points say nothing about which setting separates the best trials


@dataclass
class Importance:
    values: dict[str, float] | None   # setting -> share of the importance (sums to 1); None: not estimated
    trials: int                       # trials with a rung-0 value
    note: str = ""


@dataclass
class SearchReport:
    progress: SearchProgress
    chosen: TrialProgress | None                      # chosen on validation (None: no trial completed)
    test: list[dict] = field(default_factory=list)    # the chosen run's test-split results, per task
    importance: Importance | None = None

    def to_dict(self) -> dict:
        return {**self.progress.to_dict(),
                "chosen": None if self.chosen is None else {**self.chosen.to_dict(), "selected_on": "validation"},
                "test": self.test, "importance": None if self.importance is None else asdict(self.importance)}


def _cell_value(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"


def _setting(v: object) -> str:
    return "-" if v is None else format_float(v) if isinstance(v, float) else str(v)


def trial_table(p: SearchProgress) -> tuple[list[str], list[list[str]]]:
    """Trial x rung: the metric value and the decision there (why, for a pruned trial), the epochs
    each trained and its fate."""
    keys = [k for k, _ in p.trials[0].settings] if p.trials else []
    header = ["trial", "run", *keys, *(f"rung {r} ({e} ep)" for r, e in enumerate(p.rung_epochs)),
              "epochs trained", "fate"]
    cells = []
    for t in p.trials:
        line = [str(t.trial), t.run, *(_setting(v) for _, v in t.settings)]
        for rung in range(len(p.rung_epochs)):
            r = t.at(rung)
            if r is None:
                line.append("-")
                continue
            text = f"{_cell_value(r.value)} {r.decision}"
            line.append(f"{text} ({r.why})" if r.why and r.decision in ("pruned", "failed") else text)
        line += [str(t.trained_epochs), t.fate]
        cells.append(line)
    return header, cells


def _distribution(dim):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if dim.choices:
        return CategoricalDistribution(tuple(dim.choices))
    if dim.integer:
        return IntDistribution(int(dim.low), int(dim.high), log=bool(dim.log))
    return FloatDistribution(float(dim.low), float(dim.high), log=bool(dim.log))


def importance(search, trials: list[TrialProgress]) -> Importance:
    """Each setting's share of the PED-ANOVA importance for reaching the best quarter of rung-0
    values (top 10 % once there are 20 trials or more)."""
    points = [(dict(t.settings), r.value) for t in trials
              if (r := t.at(0)) is not None and r.value is not None and math.isfinite(r.value)]
    if len(points) < MIN_IMPORTANCE_TRIALS:
        return Importance(None, len(points), f"cannot be estimated from {len(points)} trial(s) with a rung-0 "
                                             f"value (needs {MIN_IMPORTANCE_TRIALS} or more)")
    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator

    dists = {d.key: _distribution(d) for d in search.space}
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # "A new study created in memory" is noise here
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # few trials per regime: PED-ANOVA warns, the note says it
            study = optuna.create_study(direction=search.direction)
            outside = 0
            for params, value in points:
                try:
                    study.add_trial(optuna.trial.create_trial(
                        params={k: params[k] for k in dists}, distributions=dists, value=value))
                except ValueError:  # a value outside the plan's space (a run edited by hand): not a sample of it
                    outside += 1
            if len(points) - outside < MIN_IMPORTANCE_TRIALS:
                return Importance(None, len(points) - outside, f"cannot be estimated: {outside} of {len(points)} "
                                  f"trials' settings lie outside the search space")
            # the best quarter: with 8-16 trials the default top 10 % is one or two trials
            quantile = 0.1 if len(points) >= 20 else 0.25
            raw = PedAnovaImportanceEvaluator(target_quantile=quantile).evaluate(study)
    finally:
        optuna.logging.set_verbosity(verbosity)
    total = sum(raw.values())
    if total <= 0:
        return Importance(None, len(points), "is not estimated: no setting separates the best rung-0 values from the rest")
    values = dict(sorted(((k, v / total) for k, v in raw.items()), key=lambda kv: -kv[1]))
    note = (f"PED-ANOVA over {len(points) - outside} trials' rung-0 {search.metric} (best {quantile:.0%} vs all)"
            + ("; one setting varies, so it carries all of it" if len(values) == 1 else ""))
    return Importance(values, len(points) - outside, note)


def test_results(results: Results, chosen: TrialProgress | None) -> list[dict]:
    """The chosen run's results on every test-split task (validation-split tasks chose, they are not
    reported): at the checkpoint of its last rung when that was evaluated, else its last evaluated."""
    if chosen is None:
        return []
    row = next((r for r in results.rows if r.run == chosen.run), None)
    if row is None:
        return []
    want = str(chosen.last.epochs - 1)  # 0-based checkpoint of its last rung
    out = []
    for task in results.tasks:
        if is_validation(results.splits.get(task)):
            continue
        got = row.all_epochs.get(task, {})
        key = want if got.get(want) is not None else (None if row.epochs.get(task) is None else str(row.epochs[task]))
        out.append({"task": task, "split": results.splits.get(task, ""), "metric": row.metric_names.get(task, ""),
                    "epoch": None if key is None else int(key),
                    "value": None if key is None else got.get(key),
                    "se": None if key is None else row.all_epochs_se.get(task, {}).get(key),
                    "ci": None if key is None else row.all_epochs_ci.get(task, {}).get(key)})
    return out


def output_dirs(exp_dir: Path, results: Results) -> dict[str, Path]:
    """Run directory -> output_dir (setup_finetune.yaml's; the run's checkpoints/ otherwise)."""
    out = {}
    for row in results.rows:
        if row.trained:
            setup = _setup(exp_dir / row.directory)
            out[row.directory] = (Path(str(setup["output_dir"])) if setup.get("output_dir")
                                  else exp_dir / row.directory / "checkpoints")
    return out


def search_report(exp_dir: Path, exp: Experiment, results: Results) -> SearchReport | None:
    """None when the plan has no search."""
    if getattr(exp, "search", None) is None:
        return None
    try:
        progress = read_progress(exp_dir, exp, output_dirs(Path(exp_dir), results))
    except CkError as err:  # the analysis reports what it can: a bad ledger is a problem, not the end
        if f"search: {err}" not in results.problems:  # collect() may have said it already
            results.problems.append(f"search: {err}")
        return None
    return from_progress(exp.search, progress, results)


def from_progress(search, progress: SearchProgress, results: Results | None) -> SearchReport:
    chosen = best_completed(progress.trials, progress.direction)
    return SearchReport(progress, chosen, test_results(results, chosen) if results is not None else [],
                        importance(search, list(progress.trials)))
