"""bench/search_budget.py's pure parts: the grid's best validation loss, its SE over seeds, the
run-epochs a search's decisions show trained (whole search, and until first within the target),
and the PASS / FAIL verdict. (The measurement itself trains: it is a benchmark, never a test.)"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from cruijff_kit.state.search import COMPLETED, FAILED, PROMOTED, PRUNED, Decision

PATH = Path(__file__).resolve().parents[2] / "bench" / "search_budget.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("search_budget", PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def dec(trial, rung, epochs, value, decision):
    return Decision(trial, f"t{trial:02d}", rung, epochs, "val_loss", value, decision).to_dict()


# 8 trials, rungs at 1, 2, 3 epochs: 8 decided at rung 0 (one failed), 2 promoted to rung 1, 1 to rung 2
ASHA = [dec(t, 0, 1, v, d) for t, v, d in [(0, 2.9, PRUNED), (1, 1.2, PROMOTED), (2, 2.2, PRUNED),
                                            (3, 1.0, PROMOTED), (4, None, FAILED), (5, 2.5, PRUNED),
                                            (6, 1.9, PRUNED), (7, 2.0, PRUNED)]]
ASHA += [dec(1, 1, 2, 0.9, PRUNED), dec(3, 1, 2, 0.62, PROMOTED), dec(3, 2, 3, 0.41, COMPLETED)]


def test_run_epochs_follow_the_decisions(bench):
    assert bench.run_epochs_of(ASHA) == 8 + 1 + 1 + 1  # every trial 1, trial 1 one more, trial 3 two more
    assert bench.run_epochs_of(ASHA[:8]) == 8
    assert bench.run_epochs_of([]) == 0


def test_first_within_the_target_counts_what_was_trained_by_then(bench):
    assert bench.first_within(ASHA, target=0.65) == 10   # trial 3 at rung 1: 8 + trial 1's + trial 3's epoch
    assert bench.first_within(ASHA, target=0.41) == 11
    assert bench.first_within(ASHA, target=0.3) is None
    assert bench.first_within(ASHA, target=2.5, direction="maximize") == 1  # 2.9 >= 2.5 at the first decision


def test_the_grids_best_and_its_se(bench):
    rows = [{"run": "lr1e-5", "val_loss_by_epoch": {"0": 3.0, "1": 2.9, "2": 2.8}},
            {"run": "lr3e-3", "val_loss_by_epoch": {"0": 0.9, "1": 0.5, "2": 0.5}},
            {"run": "lr1e-1", "val_loss_by_epoch": {"0": float("nan"), "1": None}},
            {"run": "lr1e-2", "val_loss_by_epoch": {}}]
    assert bench.best_val_loss(rows) == (0.5, "lr3e-3", 1)  # tie: the earlier epoch
    assert bench.best_val_loss([{"run": "x", "val_loss_by_epoch": None}]) is None
    assert bench.sample_sd([0.5, 0.52, 0.48, 0.5]) == pytest.approx(0.016329931, rel=1e-6)
    with pytest.raises(ValueError):
        bench.sample_sd([0.5])


def test_the_verdict(bench):
    grid_epochs = 9 * 3
    ratio, ok, why = bench.verdict(bench.run_epochs_of(ASHA), grid_epochs, bench.best_decided(ASHA), target=0.42)
    assert ratio == pytest.approx(11 / 27) and not ok and "> goal 0.40" in why  # reached, but spent 41 %
    ratio, ok, _ = bench.verdict(10, grid_epochs, 0.41, target=0.42)
    assert ok and ratio == pytest.approx(10 / 27)
    ratio, ok, why = bench.verdict(10, grid_epochs, 0.5, target=0.42)
    assert not ok and "did not reach" in why
    assert bench.best_decided(ASHA) == 0.41 and bench.best_decided([]) is None
    with pytest.raises(ValueError):
        bench.verdict(1, 0, 0.1, 0.2)
