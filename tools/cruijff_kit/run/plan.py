"""The jobs of an experiment reconciled with its plan: run directories experiment_summary.md does
not list are stale, listed runs without a directory unscaffolded (state/jobs.py reads the disk)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import CkError
from ..experiment.naming import run_directories
from ..experiment.parse import load_experiment
from ..experiment.search import rung_evaluation
from ..state import jobs, layout


def _read_plan(root: Path) -> tuple[set[str] | None, str | None, int | None]:
    """(run directory names experiment_summary.md plans, or None and why it cannot say; its GPUs)."""
    summary = root / layout.SUMMARY
    try:
        exp = load_experiment(summary)
        names = set(run_directories(exp, str(summary)).values())
    except CkError as err:
        return None, str(err).splitlines()[0], None
    return (names, None, exp.gpus) if names else (None, "it lists no runs", exp.gpus)


def planned_runs(root: Path) -> tuple[set[str] | None, str | None]:
    """Run directory names experiment_summary.md plans, or (None, why) when it cannot say."""
    return _read_plan(root)[:2]


def plan_experiment(exp_dir: str | Path, exp_id: str | None = None) -> jobs.Plan:
    root = Path(exp_dir).resolve()
    if not root.is_dir():
        return jobs.plan_experiment(exp_dir, exp_id, planned=None)
    names, why, gpus = _read_plan(root)
    # the plan's GPUs: what an evaluation an older ck scaffolded (no stored resources) was given
    return jobs.plan_experiment(exp_dir, exp_id, planned=(names, why), plan_gpus=gpus)



@dataclass(frozen=True)
class SearchPlan:
    """The plan's search (experiment/search.py) and its trials by run directory."""

    search: object  # experiment.search.Search
    trials: dict[str, int]  # run directory -> trial number
    params: dict[int, dict]  # trial number -> its values of the search space's settings
    rung_task: str | None = None  # the task (on the validation split) whose metric decides; None: val_loss

    def trial_of(self, run_dir: str) -> int | None:
        return self.trials.get(run_dir)


def search_plan(exp_dir: str | Path) -> SearchPlan | None:
    """The search experiment_summary.md plans, or None (a plain grid)."""
    summary = Path(exp_dir).resolve() / layout.SUMMARY
    exp = load_experiment(summary)
    search = exp.search
    if search is None:
        return None
    dirs = run_directories(exp, str(summary))
    trials, params = {}, {}
    for number, run in exp.trials():
        trials[dirs[run.name]] = number
        params[number] = {d.key: exp.value(d.key, run) for d in search.space}
    rung_eval = rung_evaluation(exp)
    if search.metric_task is not None and rung_eval is None:
        raise CkError(f"the search's metric {search.metric} has no evaluation on the validation split at "
                      f"every rung epoch", file=summary, line=search.line, field="Metric",
                      hint="re-design with `ck design ... --search` (it adds that evaluation)")
    return SearchPlan(search, trials, params, rung_eval.task if rung_eval else None)
