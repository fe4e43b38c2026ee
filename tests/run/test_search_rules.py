"""The search's decisions (run/search_rules.py) are Optuna's successive halving, made in trial order."""
from __future__ import annotations

import random
from dataclasses import replace

import optuna
import pytest

from cruijff_kit.run.search_rules import TrialView, promotable, walk
from cruijff_kit.state.search import COMPLETED, FAILED, PROMOTED, PRUNED

optuna.logging.set_verbosity(optuna.logging.ERROR)


def _optuna_fates(values: dict[int, dict[int, float]], eta: int, rung_epochs: tuple[int, ...], maximize: bool):
    """Trials run one after another through Optuna's own pruner: trial -> (last rung, pruned?)."""
    study = optuna.create_study(direction="maximize" if maximize else "minimize",
                                pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=eta))
    fates = {}
    for t in sorted(values):
        trial = study.ask()
        fate = None
        for r, epochs in enumerate(rung_epochs[:-1]):
            trial.report(values[t][epochs], step=epochs)
            if trial.should_prune():
                fate = (r, True)
                break
        if fate is None:
            study.tell(trial, values[t][rung_epochs[-1]])
            fate = (len(rung_epochs) - 1, False)
        else:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        fates[t] = fate
    return fates


def _views(values):
    return [TrialView(t, f"t{t:02d}", trained=max(values[t], default=0), busy=False, failed=None,
                      value_at=lambda e, t=t: values[t].get(e)) for t in values]


def _walk_until_done(views, rung_epochs, eta, maximize):
    decided = {}
    for _ in range(len(rung_epochs) + 1):
        for d in walk(views, rung_epochs, eta, "val_loss", maximize, decided):
            decided[(d.trial, d.rung)] = d
    return decided


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("maximize", [False, True])
def test_decisions_equal_optunas_successive_halving_pruner(seed, maximize):
    rng = random.Random(seed)
    eta = rng.choice([2, 3, 4])
    rung_epochs = tuple(eta ** k for k in range(3))
    n = rng.randint(2, 20)
    values = {t: {e: rng.random() for e in rung_epochs} for t in range(n)}
    expected = _optuna_fates(values, eta, rung_epochs, maximize)
    decided = _walk_until_done(_views(values), rung_epochs, eta, maximize)
    got = {}
    for t in range(n):
        rungs = sorted(r for (tt, r) in decided if tt == t)
        last = decided[(t, rungs[-1])]
        got[t] = (last.rung, last.decision == PRUNED)
        assert all(decided[(t, r)].decision == PROMOTED for r in rungs[:-1])
        assert last.decision in (PRUNED, COMPLETED)
    assert got == expected


def test_a_trial_still_training_holds_the_later_ones_at_its_rung_but_not_the_earlier_ones():
    values = {0: {1: 0.5}, 1: {1: 0.9}, 2: {1: 0.1}}
    views = _views(values)
    views[1] = TrialView(1, "t01", trained=0, busy=True, failed=None, value_at=lambda e: None)
    made = walk(views, (1, 3), 3, "val_loss", False, {})
    assert [(d.trial, d.rung, d.decision) for d in made] == [(0, 0, PROMOTED)]


def test_a_failed_trial_competes_no_more_and_holds_nobody():
    values = {0: {1: 0.5}, 1: {}, 2: {1: 0.4}}
    views = _views(values)
    views[1] = TrialView(1, "t01", trained=0, busy=False, failed="training FAILED", value_at=lambda e: None)
    made = {(d.trial, d.rung): d for d in walk(views, (1, 3), 2, "val_loss", False, {})}
    assert made[(1, 0)].decision == FAILED and made[(1, 0)].value is None
    # trial 2 competes with trial 0 only: 0.4 <= 0.5, the best of two
    assert made[(2, 0)].decision == PROMOTED


def test_missing_evidence_after_training_fails_the_trial_with_the_reason():
    views = [TrialView(0, "t00", trained=1, busy=False, failed=None, value_at=lambda e: None)]
    (d,) = walk(views, (1, 2), 2, "val_loss", False, {})
    assert d.decision == FAILED and "no val_loss after 1 epoch" in d.why


def test_recorded_decisions_are_never_made_again_and_later_ones_follow_from_them():
    values = {0: {1: 0.5, 3: 0.4}, 1: {1: 0.3, 3: 0.2}}
    first = {(d.trial, d.rung): d for d in walk(_views(values), (1, 3), 3, "val_loss", False, {})}
    assert set(first) == {(0, 0), (1, 0), (0, 1), (1, 1)}
    assert walk(_views(values), (1, 3), 3, "val_loss", False, first) == []
    # the ledger says trial 1 was pruned at rung 0 (values read then): it never reaches rung 1
    recorded = {k: d for k, d in first.items() if k[1] == 0}
    recorded[(1, 0)] = replace(recorded[(1, 0)], decision=PRUNED)
    again = walk(_views(values), (1, 3), 3, "val_loss", False, recorded)
    assert [(d.trial, d.rung, d.decision) for d in again] == [(0, 1, COMPLETED)]


def test_over_budget_prunes_with_the_reason():
    values = {0: {1: 0.5, 2: 0.4}}
    made = walk(_views(values), (1, 2), 2, "val_loss", False, {},
                afford=lambda v, r, nxt: "over the budget: 1 GPU-hours used")
    assert made[0].decision == PRUNED and made[0].why.startswith("over the budget")


def test_promotable_keeps_the_best_fraction():
    assert promotable(0.1, [0.1, 0.2, 0.3], 3, False)
    assert not promotable(0.2, [0.1, 0.2, 0.3], 3, False)
    assert promotable(0.3, [0.1, 0.2, 0.3], 3, True)
