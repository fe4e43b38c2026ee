"""Where a search stands, from the decisions the ledger records (state/search.py) and the plan's
search (experiment/search.py): each trial's value and fate at every rung, how many trials reached,
were promoted, pruned or failed at each rung, the best so far, and the compute spent against the
full grid's (every trial trained to the last rung's epochs).

`ck status` (run/status.py) and the report (analyze/search_report.py) both read a search through
this module, so they cannot disagree. Pure: the one reader, read_progress(), reads the ledger and
the checkpoints and writes nothing.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Mapping

from ..state import layout
from ..state.ledger import Entry, Ledger
from ..state.artifacts import completed_epochs
from ..state.search import COMPLETED, FAILED, PROMOTED, PRUNED, Decision, decisions
from ..util.formats import now_iso, seconds_between
from .model import Experiment
from .naming import run_directories

RUNNING = "running"        # no decision yet at its current rung: training towards it
NOT_STARTED = "not started"


@dataclass(frozen=True)
class RungResult:
    """A trial's decision at one rung."""
    rung: int
    epochs: int
    value: float | None
    decision: str
    why: str = ""


@dataclass(frozen=True)
class TrialProgress:
    trial: int
    run: str
    settings: tuple[tuple[str, object], ...]  # (setup key, value) of the search space's dimensions
    rungs: tuple[RungResult, ...] = ()        # in rung order
    trained_epochs: int = 0

    @property
    def last(self) -> RungResult | None:
        return self.rungs[-1] if self.rungs else None

    @property
    def fate(self) -> str:
        """Its last decision; running (promoted, or not yet decided at rung 0 but training) or not started."""
        last = self.last
        if last is None:
            return RUNNING if self.trained_epochs else NOT_STARTED
        return RUNNING if last.decision == PROMOTED else last.decision

    @property
    def deepest(self) -> RungResult | None:
        """Its decision at the deepest rung that has a value (a failed rung has none)."""
        return next((r for r in reversed(self.rungs) if r.value is not None), None)

    def at(self, rung: int) -> RungResult | None:
        return next((r for r in self.rungs if r.rung == rung), None)

    def to_dict(self) -> dict:
        deepest = self.deepest
        return {"trial": self.trial, "run": self.run, "settings": dict(self.settings), "fate": self.fate,
                "trained_epochs": self.trained_epochs,
                "deepest_rung": None if deepest is None else deepest.rung,
                "value": None if deepest is None else deepest.value,
                "rungs": [asdict(r) for r in self.rungs]}


@dataclass(frozen=True)
class RungCount:
    rung: int
    epochs: int
    reached: int = 0       # decided at this rung (its metric was read, or it failed getting there)
    promoted: int = 0
    pruned: int = 0
    completed: int = 0
    failed: int = 0
    training: int = 0      # headed for it now, training or queued: promoted at the rung before (rung 0: undecided)


@dataclass(frozen=True)
class Compute:
    run_epochs: int                 # epochs trained, summed over trials
    grid_run_epochs: int            # trials x the last rung's epochs: what the full grid trains
    gpu_hours: float | None         # every job of the trials' runs: wall hours x max(GPUs, 1)
    budget_gpu_hours: float | None  # the plan's budget (None: none)

    @property
    def share(self) -> float | None:
        """run_epochs / grid_run_epochs."""
        return None if not self.grid_run_epochs else self.run_epochs / self.grid_run_epochs

    @property
    def grid_gpu_hours(self) -> float | None:
        """The full grid's GPU-hours, estimated at this search's GPU-hours per run-epoch."""
        if self.gpu_hours is None or not self.run_epochs:
            return None
        return self.gpu_hours / self.run_epochs * self.grid_run_epochs

    def to_dict(self) -> dict:
        return {**asdict(self), "share": self.share, "grid_gpu_hours": self.grid_gpu_hours}


@dataclass(frozen=True)
class SearchProgress:
    algorithm: str
    metric: str
    direction: str
    rung_epochs: tuple[int, ...]
    trials: tuple[TrialProgress, ...]
    rungs: tuple[RungCount, ...]
    best: TrialProgress | None       # best so far: deepest rung first, then its value
    compute: Compute

    @property
    def max_epochs(self) -> int:
        return max(self.rung_epochs) if self.rung_epochs else 0

    def to_dict(self) -> dict:
        return {"algorithm": self.algorithm, "metric": self.metric, "direction": self.direction,
                "rung_epochs": list(self.rung_epochs), "trials": [t.to_dict() for t in self.trials],
                "rungs": [asdict(r) for r in self.rungs],
                "best": None if self.best is None else self.best.to_dict(), "compute": self.compute.to_dict()}


def _sign(direction: str) -> float:
    return -1.0 if direction == "maximize" else 1.0


def best_so_far(trials: Iterable[TrialProgress], direction: str) -> TrialProgress | None:
    """The trial at the deepest rung with a value, best value there; ties: the lower trial number.
    (A trial that got deeper beat others to get there: comparing values across rungs would
    compare different amounts of training.)"""
    sign = _sign(direction)
    ranked = [(-t.deepest.rung, sign * t.deepest.value, t.trial, t) for t in trials
              if t.deepest is not None and t.fate != FAILED]
    return min(ranked, key=lambda x: x[:3])[3] if ranked else None


def best_completed(trials: Iterable[TrialProgress], direction: str) -> TrialProgress | None:
    """The configuration a finished search chooses: the best metric at the last rung among the
    trials that completed every epoch; ties: the lower trial number. None while none completed."""
    sign = _sign(direction)
    done = [(sign * t.last.value, t.trial, t) for t in trials
            if t.last is not None and t.last.decision == COMPLETED and t.last.value is not None]
    return min(done, key=lambda x: x[:2])[2] if done else None


def rung_counts(trials: Iterable[TrialProgress], rung_epochs: tuple[int, ...]) -> tuple[RungCount, ...]:
    trials = list(trials)
    out = []
    for rung, epochs in enumerate(rung_epochs):
        here = [r for t in trials if (r := t.at(rung)) is not None]
        if rung == 0:
            training = sum(1 for t in trials if not t.rungs)
        else:
            training = sum(1 for t in trials if (b := t.at(rung - 1)) is not None and b.decision == PROMOTED
                           and t.at(rung) is None)
        out.append(RungCount(rung, epochs, len(here), *(sum(1 for r in here if r.decision == d)
                                                        for d in (PROMOTED, PRUNED, COMPLETED, FAILED)), training))
    return tuple(out)


def gpu_hours(entries: Mapping[str, Entry], gpus: Mapping[str, int], now: str | None = None) -> float:
    """GPU-hours of every job of the runs in `gpus` (run directory -> GPUs per job): wall hours of
    each attempt x max(GPUs, 1) (a CPU job holds its slot like one GPU would); an attempt still
    running counts up to `now`."""
    now = now or now_iso()
    total = 0.0
    for e in entries.values():
        if e.run not in gpus:
            continue
        for a in e.attempts:
            s = a.seconds
            if s is None and a.started and not a.ended and a.state is not None and a.state.live:
                s = seconds_between(a.started, now)
            if s is not None and s > 0:
                total += s / 3600.0 * max(int(gpus[e.run] or 0), 1)
    return total


def progress(exp: Experiment, found: Iterable[Decision], trained: Mapping[str, int] | None = None,
             hours: float | None = None) -> SearchProgress:
    """The search's progress from its decisions. `trained`: run name -> epochs its checkpoints hold
    (None: counted from the decisions alone); `hours`: GPU-hours spent (None: not known)."""
    search = exp.search
    rung_epochs = tuple(int(e) for e in search.rung_epochs)
    by_trial: dict[int, dict[int, Decision]] = {}
    for d in found:
        by_trial.setdefault(d.trial, {}).setdefault(d.rung, d)  # the first decision of a rung is final
    trials = []
    for number, run in exp.trials():
        mine = by_trial.get(number, {})
        results = tuple(RungResult(d.rung, d.epochs, None if d.value is None or math.isnan(d.value) else d.value,
                                   d.decision, d.why) for _, d in sorted(mine.items()))
        decided = max((r.epochs for r in results), default=0)  # epochs trained when decided (failed too)
        on_disk = (trained or {}).get(run.name, 0)
        settings = tuple((dim.key, exp.value(dim.key, run)) for dim in search.space)
        trials.append(TrialProgress(number, run.name, settings, results, max(decided, on_disk)))
    trials.sort(key=lambda t: t.trial)
    compute = Compute(sum(t.trained_epochs for t in trials), len(trials) * (max(rung_epochs) if rung_epochs else 0),
                      hours, search.budget_gpu_hours)
    return SearchProgress(search.algorithm, search.metric, search.direction, rung_epochs, tuple(trials),
                          rung_counts(trials, rung_epochs), best_so_far(trials, search.direction), compute)


def stopped_on_purpose(exp: Experiment, found: Iterable[Decision]) -> dict[str, tuple[int, str]]:
    """Run name -> (epochs it trained, why it stopped) for every trial the search pruned: its later
    epochs are missing on purpose, not a training that did not finish."""
    out = {}
    names = {n: run.name for n, run in exp.trials()}
    for d in sorted(found, key=lambda d: (d.trial, d.rung)):
        if d.decision == PRUNED and d.trial in names:
            out[names[d.trial]] = (d.epochs, f"pruned at rung {d.rung} after {d.epochs} epoch(s)"
                                   + (f": {d.why}" if d.why else ""))
    return out


def read_progress(exp_dir: str | Path, exp: Experiment, output_dirs: Mapping[str, Path | None],
                  now: str | None = None) -> SearchProgress:
    """The progress of exp's search as disk says it: decisions from the ledger, trained epochs from
    each trial's checkpoints (`output_dirs`: run directory -> its output_dir), GPU-hours from the
    ledger's job attempts. Reads only."""
    exp_dir = Path(exp_dir)
    ledger = Ledger(exp_dir)
    data = ledger.read()
    found = decisions(data, ledger.path)
    dirs = run_directories(exp, str(exp_dir / layout.SUMMARY))
    max_epochs = max(exp.search.rung_epochs) if exp.search.rung_epochs else 0
    trained, gpus = {}, {}
    for _n, run in exp.trials():
        d = dirs.get(run.name, run.name)
        gpus[d] = exp.value("num_gpus", run)
        out = output_dirs.get(d)
        if out is not None:
            trained[run.name] = min(completed_epochs(Path(out)), max_epochs)
    entries = {k: Entry.from_dict(k, e) for k, e in data["jobs"].items()}
    hours = gpu_hours(entries, gpus, now) if any(e.run in gpus for e in entries.values()) else None
    return progress(exp, found, trained, hours)
