"""`ck design --search …`: the search's fields resolved against the plan, its trials sampled.

design.py hands over what it resolved (the grid, the ranges, the Configuration); this module turns
them into the Search of the plan (defaults, checks: experiment/search.py) and the trials' own values
(sampled with Optuna, seeded), refuses what the run could not honour (a budget below one rung, a
metric no task reports, validation switched off for val_loss), and adds the evaluation that
measures a task metric on the validation split at every rung.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from ..errors import CkError
from ..settings import BY_KEY
from .model import Evaluation
from .search import (FIELDS, VAL_LOSS, VALIDATION_SPLIT, Dimension, Search, budget_problem, first_rung_gpu_hours,
                     metric_problem, parse_choices, rung_task_name, sample_trials, search_from_options, trial_prefix)


def _where(source: str | None, line_of: Callable[..., int | None]):
    """(field name, line) of a search field: the flag on the command line, `search.KEY` in a spec file."""
    def at(key: str) -> tuple[str, int | None]:
        if source is None:
            return FIELDS.get(key, (key, f"--{key.replace('_', '-')}"))[1], None
        return f"search.{key}", line_of("search", key) or line_of("search")
    return at


def resolve_search(options: dict, source: str | None, line_of, *, stated: dict, grid: dict[str, list],
                   ranges: dict[str, Dimension], models: int) -> Search:
    """The plan's Search: options + the space (ranges, and every grid setting with several levels as
    choices), checked. `stated`: the Configuration the user gave (epochs, validation, seeds)."""
    at = _where(source, line_of)

    def fail(message: str, key: str, hint: str | None = None) -> None:
        fld, line = at(key)
        raise CkError(message, file=source, line=line, field=fld, hint=hint)

    if models != 1:
        fail("a search tunes one model", "algorithm", "design one search per model (or a grid over the models)")
    if stated.get("seeds", 1) > 1:
        fail("a search samples its trials; Seeds would replicate each of them", "algorithm",
             "leave Seeds at 1 (or search the seed: --vary 'Seed=1,2')")
    space = list(ranges.values())
    for key, values in grid.items():
        if len(values) > 1:
            fld, line = at("algorithm")
            space.append(parse_choices(BY_KEY[key], list(values), source, line, BY_KEY[key].name))
    if not space:
        fail("the search space is empty: nothing to search", "algorithm",
             "give ranges or choices: --vary 'Learning rate=1e-5..1e-3:log' --vary 'LoRA rank=8,16'")
    search = search_from_options(options, fail, epochs=stated.get("epochs"), space=tuple(space))
    assert search is not None  # fail raised otherwise
    if "epochs" in stated and stated["epochs"] != search.rung_epochs[-1]:
        fail(f"the last rung trains {search.rung_epochs[-1]} epoch(s) but the plan's epochs are {stated['epochs']}",
             "rung_epochs", "the last rung epoch is the plan's Epochs: leave --epochs out or match it")
    if search.metric == VAL_LOSS and stated.get("enable_validation") is False:
        fail("the search decides on val_loss but validation during training is switched off", "metric",
             "drop 'Validation during training: false', or decide on a task metric (--metric TASK:accuracy)")
    return search


def trial_values(search: Search, grid: dict[str, list]) -> list[tuple[str, dict[str, Any]]]:
    """(run name, the trial's own settings) per trial, in trial order: the sampled values, and the
    runs table's fixed columns (one-level grid settings)."""
    fixed = {k: v[0] for k, v in grid.items() if len(v) == 1}
    out = []
    for number, values in enumerate(sample_trials(search)):
        parts = [trial_prefix(number, search.trials)]
        for d in search.space:
            v = values[d.key]
            index = d.choices.index(v) + 1 if d.choices else 1
            parts.append(d.setting.directory_part(list(v) if isinstance(v, tuple) else v, index))
        settings = {**fixed, **{k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}}
        out.append(("_".join(parts), settings))
    return out


def check_budget(search: Search, first_rung_seconds: list[float | None], devices: int, source: str | None,
                 line_of) -> None:
    problem = budget_problem(search, first_rung_gpu_hours(search, first_rung_seconds, devices))
    if problem:
        fld, line = _where(source, line_of)("budget_gpu_hours")
        raise CkError(problem, file=source, line=line, field=fld,
                      hint="raise the budget, or search fewer trials / a shorter first rung (--rung-epochs)")


def with_rung_evaluation(search: Search, tasks: list[Evaluation], trial_names: list[str], eval_split: str,
                         source: str | None, line_of) -> list[Evaluation]:
    """The tasks, plus an evaluation of the metric's task on the validation split at every rung epoch of
    every trial (unless one of the user's already does exactly that)."""
    if search.metric_task is None:
        return tasks
    fld, line = _where(source, line_of)("metric")
    refusal, hint, _ = metric_problem(search, {t.task: t.script for t in tasks})
    if refusal:
        raise CkError(refusal, file=source, line=line, field=fld, hint=hint)
    needed = tuple(e - 1 for e in search.rung_epochs)
    for t in tasks:
        if t.task in (search.metric_task, rung_task_name(search.metric_task)) \
                and (t.split or eval_split) == VALIDATION_SPLIT and set(needed) <= set(t.epochs) \
                and all(t.applies_to(n) for n in trial_names):
            return tasks
    name = rung_task_name(search.metric_task)
    if any(t.task == name for t in tasks):
        raise CkError(f"task {name!r} is the name of the search's validation evaluation", file=source, line=line,
                      field=fld, hint=f"name that task otherwise, or evaluate it on the {VALIDATION_SPLIT} split at "
                      f"epochs {', '.join(map(str, needed))} for every trial")
    base = next(t for t in tasks if t.task == search.metric_task)
    return tasks + [replace(base, task=name, epochs=needed, epoch_spec="", split=VALIDATION_SPLIT,
                            runs=tuple(trial_names), line=None,
                            description=f"search metric {search.metric_name} on {VALIDATION_SPLIT} at each rung")]
