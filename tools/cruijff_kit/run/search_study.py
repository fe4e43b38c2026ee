"""The search's Optuna study, kept in the experiment: EXP/.ck/search.journal (JournalStorage).

Every planned trial is asked once, in trial order, with its planned values (enqueue_trial + ask,
so trial N of the study is trial N of the plan); each rung's value is reported as an intermediate
value at step = epochs trained; a pruned trial is told PRUNED, a failed one FAIL, a completed one
COMPLETE with its last value. The ledger's decisions are the record: `sync` replays them all and is
idempotent, so a `ck run` killed between the ledger write and the journal catches up next time.
Samplers and importance read the study; nothing here decides.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..state.search import COMPLETED, FAILED, PRUNED, Decision, journal_path

STUDY = "search"


def distributions(space) -> dict[str, Any]:
    """Optuna distributions of a Search space (experiment/search.py Dimension)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for d in space:
        if d.choices:
            out[d.key] = CategoricalDistribution(list(d.choices))
        elif d.integer:
            out[d.key] = IntDistribution(int(d.low), int(d.high), log=d.log)
        else:
            out[d.key] = FloatDistribution(float(d.low), float(d.high), log=d.log)
    return out


def _storage(exp_dir: Path):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    optuna.logging.set_verbosity(logging.WARNING)
    path = journal_path(exp_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    # an open(O_EXCL) lock file: works where symlinks do not (some shared filesystems)
    return JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))


def sync(exp_dir: Path, search, trials: list[tuple[int, str, dict[str, Any]]],
         decided: list[Decision]) -> None:
    """Bring the journal up to the plan's trials and the ledger's decisions."""
    import optuna
    from optuna.trial import TrialState

    storage = _storage(exp_dir)
    direction = "maximize" if search.direction == "maximize" else "minimize"
    study = optuna.create_study(study_name=STUDY, storage=storage, direction=direction, load_if_exists=True)
    dists = distributions(search.space)
    have = len(study.get_trials(deepcopy=False))
    for number, run, params in sorted(trials):
        if number < have:
            continue
        if number != have:
            raise RuntimeError(f"search journal has {have} trials; the plan's trial {number} cannot be trial {number}")
        study.enqueue_trial({k: v for k, v in params.items() if k in dists}, user_attrs={"run": run})
        asked = study.ask(fixed_distributions=dists)
        have += 1
        assert asked.number == number
    study_id = storage.get_study_id_from_name(STUDY)
    frozen = {t.number: t for t in study.get_trials(deepcopy=False)}
    for dec in sorted(decided, key=lambda d: (d.rung, d.trial)):
        t = frozen.get(dec.trial)
        if t is None:
            continue
        tid = storage.get_trial_id_from_study_id_trial_number(study_id, dec.trial)
        if dec.value is not None and t.state == TrialState.RUNNING and dec.epochs not in t.intermediate_values:
            storage.set_trial_intermediate_value(tid, dec.epochs, dec.value)
        if t.state != TrialState.RUNNING:
            continue
        if dec.decision == PRUNED:
            study.tell(dec.trial, state=TrialState.PRUNED, skip_if_finished=True)
        elif dec.decision == FAILED:
            study.tell(dec.trial, state=TrialState.FAIL, skip_if_finished=True)
        elif dec.decision == COMPLETED and dec.value is not None:
            study.tell(dec.trial, dec.value, skip_if_finished=True)


def load(exp_dir: Path):
    """The study as the journal holds it (None when no search has run)."""
    if not journal_path(exp_dir).is_file():
        return None
    import optuna

    return optuna.load_study(study_name=STUDY, storage=_storage(exp_dir))
