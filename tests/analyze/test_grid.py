"""A 2 x 2 grid evaluated at every epoch: the report answers "which parameter matters more" with the
numbers of the .eval logs; a tie with the control is called a tie, never a best."""
import contextlib
import io
import json
import math
from pathlib import Path

import pytest
from scipy import stats as sps

from cruijff_kit.cli import main

from .conftest import GRID_CORRECT, GRID_N, GRID_QUESTION, GRID_STEPS, GRID_VAL

pytestmark = pytest.mark.slow  # real training, evaluation or training processes: `make test`, not test-fast


def _analyze(exp: Path) -> dict:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["analyze", str(exp), "--json"]) == 0
    return json.loads(buf.getvalue())


@pytest.fixture(scope="module")
def grid_report(grid):
    return _analyze(grid["exp"]), (grid["exp"] / "analysis" / "report.md").read_text()


def _log_values(exp: Path, run_dir: str, epoch: int | None) -> list[float]:
    """Per-sample scores of one evaluation, read straight from its .eval log."""
    from inspect_ai.log import read_eval_log

    for path in (exp / run_dir / "eval" / "logs").glob("*.eval"):
        log = read_eval_log(str(path))
        if epoch is None or f"epoch_{epoch}" in log.eval.model:
            return [1.0 if s.scores["includes"].value == "C" else 0.0 for s in log.samples]
    raise AssertionError(f"no log for {run_dir} epoch {epoch}")


def _paired_se(a: list[float], b: list[float]) -> float:
    return _mean_se([x - y for x, y in zip(a, b)])[1]


def _permutation_p(a: list[float], b: list[float]) -> float:
    import numpy as np
    from scipy import stats as sps

    return sps.permutation_test((np.array(a), np.array(b)), lambda u, v, axis: np.mean(u - v, axis=axis),
                                permutation_type="samples", n_resamples=np.inf, vectorized=True).pvalue


def _mean_se(values: list[float]) -> tuple[float, float]:
    n = len(values)
    m = sum(values) / n
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1) / n)


def test_main_effects_equal_the_logs(grid, grid_report):
    data, report = grid_report
    exp = grid["exp"]
    cells = {run: _mean_se(_log_values(exp, run, 1)) for run in GRID_CORRECT}
    assert {r: m for r, (m, _) in cells.items()} == {r: c[1] / GRID_N for r, c in GRID_CORRECT.items()}
    levels = {("lora_rank", "8"): ["rank8_lr1e-4", "rank8_lr0.001"],
              ("lora_rank", "16"): ["rank16_lr1e-4", "rank16_lr0.001"],
              ("learning_rate", "1e-4"): ["rank8_lr1e-4", "rank16_lr1e-4"],
              ("learning_rate", "0.001"): ["rank8_lr0.001", "rank16_lr0.001"]}
    expected = {}
    for (param, level), runs in levels.items():
        mean = sum(cells[r][0] for r in runs) / 2
        se = math.sqrt(sum(cells[r][1] ** 2 for r in runs)) / 2
        expected[(param, level)] = (mean, se)
        # one row per level naming the parameter and the level, with the logs' numbers
        assert f"| {param} | {level} | {mean:.3f} | {se:.3f} | 2 |" in report

    found = data["findings"]["capitalization"]
    assert found["epoch"] == 1 and found["grid_complete"]
    effects = {e["param"]: e for e in found["main_effects"]}
    rank = expected[("lora_rank", "16")][0] - expected[("lora_rank", "8")][0]
    lr = expected[("learning_rate", "0.001")][0] - expected[("learning_rate", "1e-4")][0]
    # per item: the level means' difference (the runs share the 8 test items) -> paired SE and test
    items = {run: _log_values(exp, run, 1) for run in GRID_CORRECT}

    def level(runs):
        return [sum(items[r][i] for r in runs) / len(runs) for i in range(GRID_N)]

    r16, r8 = level(levels[("lora_rank", "16")]), level(levels[("lora_rank", "8")])
    l3, l4 = level(levels[("learning_rate", "0.001")]), level(levels[("learning_rate", "1e-4")])
    rank_se, lr_se = _paired_se(r16, r8), _paired_se(l3, l4)
    assert effects["lora_rank"]["effect"]["value"] == pytest.approx(rank)
    assert effects["lora_rank"]["effect"]["se"] == pytest.approx(rank_se)
    assert effects["lora_rank"]["effect"]["test"] == "paired permutation"
    assert effects["lora_rank"]["effect"]["p"] == pytest.approx(_permutation_p(r16, r8))  # 2/64
    assert effects["learning_rate"]["effect"]["value"] == pytest.approx(lr)
    assert effects["learning_rate"]["effect"]["se"] == pytest.approx(lr_se)
    assert effects["learning_rate"]["effect"]["p"] == pytest.approx(_permutation_p(l3, l4))
    # 8 items, 10 comparisons in the Holm family: even rank's 0.031 is 0.31 after correction
    assert found["holm_family"] == 10
    assert effects["lora_rank"]["effect"]["p_holm"] == pytest.approx(10 * _permutation_p(r16, r8))
    assert effects["lora_rank"]["effect"]["within_noise"] is True
    assert effects["learning_rate"]["effect"]["within_noise"] is True
    # interaction: the effect of rank is the same at both learning rates
    inter = found["interaction"]
    assert inter["a"] == "lora_rank" and inter["b"] == "learning_rate"
    at = [cells["rank16_lr1e-4"][0] - cells["rank8_lr1e-4"][0], cells["rank16_lr0.001"][0] - cells["rank8_lr0.001"][0]]
    assert [s["value"] for s in inter["simple_effects"]] == pytest.approx(at)
    assert inter["interaction"]["value"] == pytest.approx(at[1] - at[0])

    # the report opens with the question, then the answer with these numbers
    answer = report.split("## Answer", 1)[1].split("\n## ", 1)[0]
    assert report.index("## Answer") < report.index("## Results")
    assert f"**Question:** {GRID_QUESTION}" in answer
    assert (f"The data cannot tell whether lora_rank or learning_rate matters more: main effects "
            f"{abs(rank):.3f} vs {abs(lr):.3f}" in answer)
    assert (f"learning_rate 1e-4 -> 0.001: {lr:+.3f} (SE {lr_se:.3f}, paired permutation p=0.500, Holm p=1.000, "
            "within noise)" in answer)
    assert "no interaction beyond noise" in answer


def test_control_differences_with_standard_errors(grid, grid_report):
    data, report = grid_report
    exp = grid["exp"]
    base_m, base_se = _mean_se(_log_values(exp, "base", None))
    comps = {c["run"]: c for c in data["findings"]["capitalization"]["comparisons"]}
    base = _log_values(exp, "base", None)
    for run_dir, (_, correct) in GRID_CORRECT.items():
        mine = _log_values(exp, run_dir, 1)
        m, se = _mean_se(mine)
        c = comps[f"tiny_{run_dir}"]
        assert c["delta"] == pytest.approx(m - base_m)
        assert c["delta_se"] == pytest.approx(_paired_se(mine, base))  # the same 8 items: paired
        # exact McNemar: binomial test of the discordant items against 1/2
        only_run = sum(x > y for x, y in zip(mine, base))
        only_base = sum(y > x for x, y in zip(mine, base))
        assert c["test"] == "McNemar exact"
        assert c["p"] == pytest.approx(sps.binomtest(min(only_run, only_base), only_run + only_base).pvalue
                                       if only_run + only_base else 1.0)
    # rank8_lr1e-4 scores exactly the control's 2/8 on the same items: a tie, not "better"
    assert comps["tiny_rank8_lr1e-4"]["delta"] == 0 and comps["tiny_rank8_lr1e-4"]["verdict"] == "within noise"
    # 8/8 vs 2/8: 6 discordant items, p = 2/64; Holm over the task's 10 comparisons leaves it within noise
    best = comps["tiny_rank16_lr0.001"]
    assert best["p"] == pytest.approx(1 / 32) and best["p_holm"] == pytest.approx(10 / 32)
    assert best["verdict"] == "within noise"
    assert best["ci"] == pytest.approx(list(sps.binomtest(8, 8).proportion_ci(method="wilson")))  # not [1, 1]
    import csv

    with open(grid["exp"] / "analysis" / "results.csv", newline="") as fh:
        table = {r["directory"]: r for r in csv.DictReader(fh)}
    c = comps["tiny_rank16_lr1e-4"]
    assert float(table["rank16_lr1e-4"]["capitalization_delta_se"]) == pytest.approx(c["delta_se"])
    assert float(table["rank16_lr1e-4"]["capitalization_se"]) == pytest.approx(c["se"])
    assert ("| tiny_rank8_lr1e-4 | 0.250 | 0.164 | [0.071, 0.591] | +0.000 (SE 0.000, McNemar exact p=1.000, "
            "Holm p=1.000, within noise) | McNemar exact | 1.000 | 1.000 | within noise |") in report
    best = data["best"]
    assert best["directory"] == "rank16_lr0.001" and best["beats_control"] is False and best["epoch"] == 1
    # "best" is a set: every run is within noise of the top after Holm
    assert set(best["within_noise_of_best"]) == {f"tiny_{r}" for r in GRID_CORRECT} - {"tiny_rank16_lr0.001"}
    assert "Within noise of the top (no clear winner among them): tiny_rank16_lr0.001" in report


def test_per_epoch_table_and_plot(grid, grid_report):
    data, report = grid_report
    plots = {p["kind"]: p for p in data["plots"]}
    path = Path(plots["per_epoch"]["path"])
    assert "epoch" in path.name and path.name == "capitalization_per_epoch.png" and path.stat().st_size > 5000
    assert plots["per_epoch"]["series"] == 4
    assert "| run | epoch_0 | epoch_1 | base model |" in report
    assert "| tiny_rank16_lr1e-4 | 0.250 [0.071, 0.591] | 0.875 [0.529, 0.978] | - |" in report
    csv_text = (grid["exp"] / "analysis" / "results.csv").read_text()
    assert "capitalization_epoch0" in csv_text and "capitalization_epoch1" in csv_text


def test_training_and_validation_loss_per_epoch(grid_report):
    data, report = grid_report
    rows = {r["directory"]: r for r in data["rows"]}
    for run_dir, val in GRID_VAL.items():
        row = rows[run_dir]
        losses = [3.0 / s for s in range(1, 2 * GRID_STEPS + 1)]
        assert row["steps_per_epoch"] == GRID_STEPS
        # the final train loss is the mean over the last epoch (steps 5-8), from the 4-decimal log
        assert row["final_train_loss"] == pytest.approx(sum(losses[GRID_STEPS:]) / GRID_STEPS, abs=1e-4)
        # validation at each epoch's end: steps 4 and 8
        assert row["val_loss_by_epoch"] == {"0": val[1], "1": val[3]} or row["val_loss_by_epoch"] == {0: val[1], 1: val[3]}
        assert row["best_val_epoch"] == (0 if val[1] < val[3] else 1)
    assert rows["rank8_lr0.001"]["best_val_epoch"] == 0
    assert "Best epoch by validation loss: " in report and "tiny_rank8_lr0.001 epoch_0 (1.200)" in report
    plots = {p["kind"]: p for p in data["plots"]}
    assert plots["loss_curves"]["series"] == 8  # 4 train + 4 validation lines


def test_tie_with_the_control_is_no_best(grid):
    data = _analyze(grid["tie"])
    report = (grid["tie"] / "analysis" / "report.md").read_text()
    found = data["findings"]["capitalization"]
    assert found["epoch"] == 0
    assert all(c["delta"] == 0 and c["verdict"] == "within noise" for c in found["comparisons"])
    assert len(found["comparisons"]) == 4
    assert data["best"] is None and len(found["tied"]) == 4
    answer = report.split("## Answer", 1)[1].split("\n## ", 1)[0]
    assert "No run beats the control (tiny_base)" in answer and "tie with it" in answer
    assert "Best run" not in report and "No single best run" in answer
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert main(["analyze", str(grid["tie"]), "--out", str(grid["tie"] / "a2")]) == 0
    assert "Best: none (a tie: " in text.getvalue()
    assert "Answer: No run beats the control" in text.getvalue()


def test_samples_in_the_terminal(grid, capsys):
    assert main(["analyze", str(grid["exp"]), "--samples", "tiny_rank16_lr1e-4", "--limit", "8"]) == 0
    out = capsys.readouterr().out
    assert "== rank16_lr1e-4 capitalization epoch_0: includes/accuracy = 0.250 (8 samples)" in out
    assert "== rank16_lr1e-4 capitalization epoch_1: includes/accuracy = 0.875 (8 samples)" in out
    graded = [line for line in out.splitlines() if line.startswith("  [")]
    assert len(graded) == 16 and sum(" C " in line for line in graded) == 2 + 7
    assert "target='Tulip'" in out and "input='tulip'" in out  # the last held-out word, not blanked
    assert main(["analyze", str(grid["exp"]), "--samples", "nope"]) == 2
    assert "no run 'nope'" in capsys.readouterr().err
