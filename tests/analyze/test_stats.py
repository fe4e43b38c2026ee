"""The arithmetic behind the report's claims, on numbers worked out by hand (no model needed)."""
import math

import pytest

from cruijff_kit.analyze import stats
from cruijff_kit.analyze.effects import findings
from cruijff_kit.state.loss_logs import last_per_epoch, mean_per_epoch, steps_per_epoch
from cruijff_kit.analyze.results import Results, Row


def test_binomial_standard_error():
    # 3 of 4 correct: sd (n-1) = sqrt(0.25), SE = 0.5 / 2
    assert stats.standard_error([1, 1, 1, 0]) == pytest.approx(0.25)
    assert stats.standard_error([1]) is None
    assert stats.metric_se("includes/accuracy", 0.75, {"a": 1, "b": 1, "c": 1, "d": 0}, None) == pytest.approx(0.25)
    # not the mean of the samples (e.g. RMSE): the log's own stderr, else unknown
    assert stats.metric_se("x/rmse", 2.0, [1.0, 3.0], None) is None
    assert stats.metric_se("x/accuracy", 0.9, [1.0, 0.0], 0.1) == 0.1


def test_noise_rule():
    assert stats.difference(0.5, 0.1, 0.2, 0.1).within_noise is False   # 0.3 > 2 x 0.141
    assert stats.difference(0.4, 0.1, 0.2, 0.1).within_noise is True    # 0.2 < 0.283
    assert stats.difference(0.25, 0.0, 0.25, 0.0).within_noise is True  # a tie
    assert stats.difference(0.3, None, 0.2, 0.1).within_noise is None   # unknown: no claim


def test_metric_direction_and_bounds():
    assert stats.lower_is_better("regression_error/mae") and stats.lower_is_better("rmse")
    assert not stats.lower_is_better("includes/accuracy") and not stats.lower_is_better("f1_cat")
    assert stats.bounded_01("match/balanced_accuracy") and not stats.bounded_01("regression_error/mae")


def test_loss_per_epoch():
    curve = [(s, float(s)) for s in range(1, 7)]
    assert steps_per_epoch(6, 2) == 3 and steps_per_epoch(7, 2) is None
    assert mean_per_epoch(curve, 3) == {0: 2.0, 1: 5.0}
    assert last_per_epoch([(2, 1.0), (3, 0.9), (5, 0.8), (6, 1.1)], 3) == {0: 0.9, 1: 1.1}


def _row(run, rank, mae, se, control=False):
    r = Row(run=run, directory=run, type="Control" if control else "Fine-tuned", model="m",
            params={"lora_rank": None if control else rank})
    key = "base" if control else "0"
    r.metrics["t"], r.se["t"], r.metric_names["t"] = mae, se, "regression_error/mae"
    r.all_epochs["t"], r.all_epochs_se["t"] = {key: mae}, {key: se}
    return r


def test_lower_is_better_picks_the_smallest_error():
    res = Results("e", "/x", ["lora_rank"], ["t"],
                  [_row("r8", 8, 2.0, 0.1), _row("r16", 16, 1.0, 0.1), _row("base", None, 3.0, 0.1, control=True)])
    f = findings(res, "t")
    assert f.lower_better and f.best["run"] == "r16"
    verdicts = {c.run: c.verdict for c in f.comparisons}
    assert verdicts == {"r8": "better", "r16": "better"}  # 1.0 and 2.0 below the control's 3.0
    [effect] = f.effects
    assert effect.best_level == "16" and effect.effect.value == pytest.approx(-1.0)
    assert effect.effect.se == pytest.approx(math.sqrt(0.02))


def _sampled_row(run, params, correct, n, control=False):
    """A row scored on items i0..i{n-1}: the first `correct` right (0/1 scores)."""
    samples = {f"i{i}": 1.0 if i < correct else 0.0 for i in range(n)}
    value = correct / n
    r = Row(run=run, directory=run, type="Control" if control else "Fine-tuned", model="m", params=params)
    key = "base" if control else "0"
    r.metrics["t"], r.metric_names["t"] = value, "match/accuracy"
    r.se["t"] = stats.standard_error(list(samples.values()))
    r.all_epochs["t"], r.all_epochs_se["t"] = {key: value}, {key: r.se["t"]}
    r.all_samples["t"] = {key: samples}
    return r


def test_paired_verdicts_holm_and_the_best_set():
    n = 60
    rows = [_sampled_row("r8_lo", {"lora_rank": 8, "learning_rate": 1e-4}, 20, n),
            _sampled_row("r8_hi", {"lora_rank": 8, "learning_rate": 1e-3}, 22, n),
            _sampled_row("r16_lo", {"lora_rank": 16, "learning_rate": 1e-4}, 50, n),
            _sampled_row("r16_hi", {"lora_rank": 16, "learning_rate": 1e-3}, 52, n),
            _sampled_row("base", {"lora_rank": None, "learning_rate": None}, 18, n, control=True)]
    f = findings(Results("e", "/x", ["lora_rank", "learning_rate"], ["t"], rows), "t")
    comps = {c.run: c for c in f.comparisons}
    # nested correct sets: r16_hi vs base has 34 discordant items, all one way
    assert comps["r16_hi"].diff.test == "McNemar exact"
    assert comps["r16_hi"].diff.p == pytest.approx(2 * 0.5 ** 34)
    assert comps["r16_hi"].verdict == "better" and comps["r8_lo"].verdict == "within noise"
    assert f.tests == 4 + 3 + 2 + 1
    # the Holm-adjusted p of the smallest raw p is it times the family size
    smallest = min((c.diff for c in f.comparisons), key=lambda d: d.p)
    assert smallest.p_holm == pytest.approx(min(1.0, f.tests * smallest.p))
    # r16_lo (50/60) is 2 items behind the top: within noise of it, so "best" is a set
    assert f.best["run"] == "r16_hi" and f.best_set == ["r16_hi", "r16_lo"]
    effects = {e.param: e for e in f.effects}
    assert effects["lora_rank"].effect.within_noise is False
    assert effects["learning_rate"].effect.within_noise is True
    assert any(line.startswith("lora_rank matters more than learning_rate") for line in f.answer)
    assert any("Within noise of the top" in line and "r16_lo" in line for line in f.answer)


def test_saturated_task_is_called_saturated_and_points_to_an_earlier_epoch():
    n = 50
    rows = []
    for run, rank, early, late in (("a", 8, 20, 50), ("b", 16, 40, 50), ("c", 32, 30, 49)):
        r = _sampled_row(run, {"lora_rank": rank}, late, n)
        r.all_epochs["t"] = {"0": early / n, "1": late / n}
        r.all_epochs_se["t"] = {"0": 0.05, "1": 0.01}
        r.all_samples["t"] = {"0": {f"i{i}": float(i < early) for i in range(n)},
                              "1": {f"i{i}": float(i < late) for i in range(n)}}
        r.val_loss_by_epoch = {0: 1.0, 1: {"a": 0.4, "b": 0.3, "c": 0.6}[run]}
        rows.append(r)
    res = Results("e", "/x", ["lora_rank"], ["t"], rows)
    f = findings(res, "t")
    assert f.epoch == 1
    [line] = [x for x in f.answer if "saturated" in x]
    assert "every run scores within 0.02 of 1" in line
    assert "at epoch_0 they differ most (range 0.400" in line
    assert "final validation loss ranges from 0.300 (b) to 0.600 (c)" in line
    early = findings(res, "t", epoch=0)
    assert early.epoch == 0 and not any("saturated" in x for x in early.answer)
    assert early.effects[0].effect.value == pytest.approx(0.4)


def test_seeds_are_averaged_into_configurations_with_seed_and_item_se():
    import numpy as np
    from scipy import stats as sps

    n = 40
    correct = {8: (10, 14, 12), 16: (30, 26, 33)}
    rows = [_sampled_row(f"m_rank{k}_seed{s}", {"lora_rank": k, "seed": s}, c, n)
            for k, cs in correct.items() for s, c in zip((1, 2, 3), cs)]
    rows.append(_sampled_row("m_base", {"lora_rank": None, "seed": None}, 9, n, control=True))
    res = Results("e", "/x", ["lora_rank", "seed"], ["t"], rows, replicate="seed")
    f = findings(res, "t")
    assert set(f.cells) == {"m_rank8", "m_rank16"}
    y = np.array([[float(i < c) for i in range(n)] for c in correct[16]])
    cell = f.cells["m_rank16"]
    assert cell.value == pytest.approx(y.mean())
    assert cell.se == pytest.approx(np.sqrt(sps.sem(y.mean(axis=0)) ** 2 + np.var(y.mean(axis=1), ddof=1) / 3))
    comp = next(c for c in f.comparisons if c.run == "m_rank16")
    assert comp.diff.test == "seed-aware z-test" and comp.verdict == "better"
    [effect] = f.effects
    assert effect.param == "lora_rank" and effect.effect.test == "seed-aware z-test"
