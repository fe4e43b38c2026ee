"""The follow-up experiment: a new task evaluated on chosen runs and epochs of a plan whose
training is done, without retraining (`ck design EXP --add-task NAME=SCRIPT@EPOCHS:RUNS`).

The plan gains one Evaluation row per task, limited to the named runs (Runs column) and epochs;
nothing else of the plan changes, so every fine-tuning job stays done (artifacts.py) and
`ck scaffold EXP --only inspect` + `ck run EXP --only inspect` submit only the new evaluations
(an eval script's other tasks keep their fingerprints; $CK_TASKS names the ones not done).

Runs are named by their plan name or their directory name (naming.py): both are accepted, the
plan records the plan name.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..errors import CkError
from .model import EPOCH_WORDS, Evaluation, Experiment
from .naming import run_directories
from ..settings import SAFE_NAME

SYNTAX = "NAME=SCRIPT@EPOCHS[:RUN,RUN]"


def parse_task_arg(text: str, flag: str = "--add-task") -> tuple[str, str, str, list[str]]:
    """`NAME=SCRIPT@EPOCHS:RUN1,RUN2` -> (name, script, epochs text, runs); runs and epochs optional."""
    name, sep, rest = text.partition("=")
    if not sep or not name.strip() or not rest.strip():
        raise CkError(f"expected {SYNTAX}, got {text[:80]!r}", field=flag)
    script, _, tail = rest.partition("@")
    epochs, _, runs = tail.partition(":")
    items = [r.strip() for r in runs.split(",")] if runs.strip() else []
    if any(not r for r in items):
        raise CkError(f"an empty run name in {runs!r}", field=flag, hint=f"write {SYNTAX}")
    return name.strip(), script.strip(), epochs.strip(), items


def resolve_runs(exp: Experiment, names: list[str], flag: str, summary: str | None = None) -> tuple[str, ...]:
    """Plan run names for names given as plan names or directory names (one run, one name each)."""
    dirs = run_directories(exp, summary)
    by_dir = {d: r for r, d in dirs.items()}
    out: list[str] = []
    for n in names:
        run = n if n in dirs else by_dir.get(n)
        if run is None:
            raise CkError(f"no run {n!r} in the plan", field=flag,
                          hint="runs (plan name = directory): " + ", ".join(f"{r} = {d}" for r, d in list(dirs.items())[:20]))
        if run not in out:
            out.append(run)
    return tuple(out)


def added_evaluation(exp: Experiment, text: str, exp_dir: Path, parse_epochs, summary: str | None = None,
                     flag: str = "--add-task") -> Evaluation:
    """One new Evaluation from `text`, checked against the plan (runs, epochs, task name)."""
    name, script, epochs_text, run_names = parse_task_arg(text, flag)
    if not SAFE_NAME.fullmatch(name) or ".." in name or len(name) > 100:
        raise CkError(f"unsafe task name {name[:60]!r}: use letters, digits, '.', '_', '+', '-'", field=flag)
    if not script:
        raise CkError("no task script", field=flag, hint=f"write {SYNTAX}")
    epochs, word = parse_epochs(epochs_text, None, None, flag) if epochs_text else ((), "last")
    runs = resolve_runs(exp, run_names, flag, summary) if run_names else ()
    for other in exp.evaluations:
        if other.task == name and (not runs or not other.runs or set(runs) & set(other.runs)):
            raise CkError(f"task {name!r} is already planned for these runs", field=flag,
                          hint="give the new task its own name (its logs are kept apart by name)")
    targets = [r for r in exp.runs if not runs or r.name in runs]
    for run in targets:
        if not run.finetuned or word:
            continue
        n = exp.value("epochs", run)
        for e in epochs:
            if e >= n:
                raise CkError(f"run {run.name!r} trains {n} epoch(s): it has no epoch_{e} (epochs are 0-based)",
                              field=flag)
    if word in EPOCH_WORDS:
        epochs = ()
    path = Path(script).expanduser()
    if path.is_absolute() or not (exp_dir / path).exists():
        path = path.resolve() if path.exists() else path
    return Evaluation(task=name, script=str(path), epochs=epochs, epoch_spec=word, runs=runs)


def with_evaluations(exp: Experiment, new: list[Evaluation]) -> Experiment:
    return replace(exp, evaluations=(*exp.evaluations, *new))
