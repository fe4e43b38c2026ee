"""Select on validation, report on test.

Choosing the best run and epoch on the test scores that are then reported overstates them (the
winner of many noisy draws is lucky). When the plan evaluates a task on a validation split as well
(the evaluation matrix: a second task row with the same script and dataset and `Split validation`),
the run x epoch with the best validation score is selected and its *test* score is the one to
report. When only test was evaluated, the report says the selection was made on test and is
optimistic.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..experiment.model import Experiment

VALIDATION_SPLITS = ("validation", "valid", "val", "dev")


def is_validation(split: str | None) -> bool:
    return str(split or "").lower() in VALIDATION_SPLITS


def validation_pairs(exp: Experiment) -> dict[str, str]:
    """Test task -> the validation task that selects for it (same script and dataset)."""
    out: dict[str, str] = {}
    for t in exp.evaluations:
        if is_validation(exp.eval_split(t)) or t.task in out:
            continue
        for v in exp.evaluations:
            if (v.task != t.task and is_validation(exp.eval_split(v)) and v.script == t.script
                    and (v.dataset or "") == (t.dataset or "")):
                out[t.task] = v.task
                break
    return out


@dataclass
class Selection:
    task: str
    on: str                          # "validation" | "test"
    validation_task: str = ""
    run: str = ""
    directory: str = ""
    epoch: int | None = None
    validation_value: float | None = None
    value: float | None = None       # the selected run's test score at the selected epoch
    se: float | None = None
    ci: list[float] | None = None
    candidates: int = 0              # run x epoch pairs with both a validation and a test result

    def to_dict(self) -> dict:
        return asdict(self)


def select(rows, task: str, validation_task: str | None, sign: float) -> Selection:
    """The trained run x epoch with the best validation score (ties: the earlier epoch, then the
    plan's run order), reported with its test score. `rows`: results.Row objects."""
    if not validation_task:
        return Selection(task, "test")
    found = []
    for r in rows:
        if not r.trained:
            continue
        val, test = r.all_epochs.get(validation_task, {}), r.all_epochs.get(task, {})
        for k, v in val.items():
            if k != "base" and v is not None and test.get(k) is not None:
                found.append((-sign * v, int(k), r, k))
    if not found:
        return Selection(task, "test", validation_task)
    found.sort(key=lambda c: (c[0], c[1]))  # stable: equal scores keep the runs' order
    _, epoch, r, k = found[0]
    return Selection(task, "validation", validation_task, r.run, r.directory, epoch, r.all_epochs[validation_task][k],
                     r.all_epochs[task][k], r.all_epochs_se.get(task, {}).get(k),
                     r.all_epochs_ci.get(task, {}).get(k), len(found))
