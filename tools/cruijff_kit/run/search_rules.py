"""Asynchronous successive halving (ASHA), decided in trial order so a rerun decides the same.

The promotion rule is Optuna's SuccessiveHalvingPruner's (`_is_trial_promotable_to_next_rung`):
at a rung, a trial goes on when its value is within the best len(competing) // eta of the values
that trial and the trials before it reached at that rung (the first eta - 1 trials: when it is the
best so far). tests/run/test_search_rules.py checks the two agree on random sequences.

Why our own walk around that rule: Optuna's pruner decides when a trial reports, so its answers
depend on which trial happened to report first. Trials here run as cluster jobs that finish in any
order, and `ck run` may be killed and rerun; deciding trial i at rung r only once trials 0..i-1
are decided at rung r makes every decision a function of the values alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..state.search import COMPLETED, FAILED, PROMOTED, PRUNED, Decision


def promotable(value: float, competing: list[float], eta: int, maximize: bool) -> bool:
    """Optuna's rule. `competing` holds the values at this rung so far, `value` included."""
    idx = len(competing) // eta - 1
    if idx == -1:
        idx = 0
    ranked = sorted(competing)
    return value >= ranked[-(idx + 1)] if maximize else value <= ranked[idx]


@dataclass(frozen=True)
class TrialView:
    """One trial as the walk needs it, read from disk and the live jobs by the search step."""

    trial: int
    run: str
    trained: int                 # epochs with a complete checkpoint (from epoch_0, no gap)
    busy: bool                   # a job writing its evidence is live or queued: wait for it
    failed: str | None           # why its training failed for good (nothing live, no retry)
    value_at: Callable[[int], float | None]  # the metric after that many epochs (None: none yet)


# (trial view, rung, epochs trained after the next rung) -> why it cannot be afforded, or None
Afford = Callable[[TrialView, int, int], "str | None"]


def walk(views: list[TrialView], rung_epochs: tuple[int, ...], eta: int, metric: str, maximize: bool,
         decided: dict[tuple[int, int], Decision], afford: Afford | None = None) -> list[Decision]:
    """The decisions that can be made now, in the order they are made. `decided`: (trial, rung)
    -> the decisions already recorded (never made again)."""
    made: dict[tuple[int, int], Decision] = {}

    def known(t: int, r: int) -> Decision | None:
        return decided.get((t, r)) or made.get((t, r))

    last = len(rung_epochs) - 1
    ordered = sorted(views, key=lambda v: v.trial)
    for r, epochs in enumerate(rung_epochs):
        for v in ordered:
            if r > 0:
                before = known(v.trial, r - 1)
                if before is None or not before.goes_on:
                    continue  # not in this rung (yet, or ever)
            if known(v.trial, r) is not None:
                continue
            new = _decide(v, r, epochs, r == last, rung_epochs, eta, metric, maximize, known, ordered, afford)
            if new is None:
                if r == last:
                    continue  # the last rung decides nothing for anyone else: no order to keep
                break  # later trials wait for this one at rung r
            made[(v.trial, r)] = new
    return list(made.values())


def _decide(v: TrialView, r: int, epochs: int, last: bool, rung_epochs, eta, metric, maximize,
            known, ordered, afford) -> Decision | None:
    if v.trained < epochs:
        if v.failed and not v.busy:
            return Decision(v.trial, v.run, r, v.trained, metric, None, FAILED, v.failed)
        return None  # still training (or about to be submitted)
    if v.busy:
        return None  # a job that writes this rung's evidence is still running
    value = v.value_at(epochs)
    if value is None:
        return Decision(v.trial, v.run, r, epochs, metric, None, FAILED,
                        f"no {metric} after {epochs} epoch(s): the evidence this rung needs is missing")
    if last:
        return Decision(v.trial, v.run, r, epochs, metric, value, COMPLETED, f"trained all {epochs} epochs")
    competing = [d.value for u in ordered if u.trial < v.trial
                 if (d := known(u.trial, r)) is not None and d.decision in (PROMOTED, PRUNED)
                 and d.value is not None] + [value]
    keep = len(competing) // eta or 1
    if not promotable(value, competing, eta, maximize):
        return Decision(v.trial, v.run, r, epochs, metric, value, PRUNED,
                        f"not in the best {keep} of {len(competing)} at rung {r} (trials 0..{v.trial})")
    why_not = afford(v, r, rung_epochs[r + 1]) if afford else None
    if why_not:
        return Decision(v.trial, v.run, r, epochs, metric, value, PRUNED, why_not)
    return Decision(v.trial, v.run, r, epochs, metric, value, PROMOTED,
                    f"in the best {keep} of {len(competing)} at rung {r} (trials 0..{v.trial})")
