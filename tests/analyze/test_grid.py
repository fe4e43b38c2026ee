"""A 2 x 2 grid evaluated at every epoch: the report answers "which parameter matters more" with the
numbers of the .eval logs; a tie with the control is called a tie, never a best."""
import contextlib
import io
import json
import math
from pathlib import Path

import pytest

from cruijff_kit.cli import main

from .conftest import GRID_CORRECT, GRID_N, GRID_QUESTION, GRID_STEPS, GRID_VAL


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
    rank_se = math.hypot(expected[("lora_rank", "16")][1], expected[("lora_rank", "8")][1])
    lr_se = math.hypot(expected[("learning_rate", "0.001")][1], expected[("learning_rate", "1e-4")][1])
    assert effects["lora_rank"]["effect"]["value"] == pytest.approx(rank)
    assert effects["lora_rank"]["effect"]["se"] == pytest.approx(rank_se)
    assert effects["lora_rank"]["effect"]["within_noise"] is False  # 0.625 > 2 x 0.138
    assert effects["learning_rate"]["effect"]["value"] == pytest.approx(lr)
    assert effects["learning_rate"]["effect"]["within_noise"] is True  # 0.125 < 2 x 0.138
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
    assert (f"lora_rank matters more than learning_rate: its main effect is {abs(rank):.3f} vs {abs(lr):.3f}"
            in answer)
    assert f"learning_rate 1e-4 -> 0.001: {lr:+.3f} (SE {lr_se:.3f}, within noise)" in answer
    assert "no interaction beyond noise" in answer


def test_control_differences_with_standard_errors(grid, grid_report):
    data, report = grid_report
    exp = grid["exp"]
    base_m, base_se = _mean_se(_log_values(exp, "base", None))
    comps = {c["run"]: c for c in data["findings"]["capitalization"]["comparisons"]}
    for run_dir, (_, correct) in GRID_CORRECT.items():
        m, se = _mean_se(_log_values(exp, run_dir, 1))
        c = comps[f"tiny_{run_dir}"]
        assert c["delta"] == pytest.approx(m - base_m)
        assert c["delta_se"] == pytest.approx(math.hypot(se, base_se))
    # rank8_lr1e-4 scores exactly the control's 2/8: a tie, not "better"
    assert comps["tiny_rank8_lr1e-4"]["delta"] == 0 and comps["tiny_rank8_lr1e-4"]["verdict"] == "within noise"
    assert comps["tiny_rank16_lr0.001"]["verdict"] == "better"
    import csv

    with open(grid["exp"] / "analysis" / "results.csv", newline="") as fh:
        table = {r["directory"]: r for r in csv.DictReader(fh)}
    c = comps["tiny_rank16_lr1e-4"]
    assert float(table["rank16_lr1e-4"]["capitalization_delta_se"]) == pytest.approx(c["delta_se"])
    assert float(table["rank16_lr1e-4"]["capitalization_se"]) == pytest.approx(c["se"])
    assert "| tiny_rank8_lr1e-4 | 0.250 | 0.164 | +0.000 (SE 0.231, within noise) | within noise |" in report
    best = data["best"]
    assert best["directory"] == "rank16_lr0.001" and best["beats_control"] is True and best["epoch"] == 1


def test_per_epoch_table_and_plot(grid, grid_report):
    data, report = grid_report
    plots = {p["kind"]: p for p in data["plots"]}
    path = Path(plots["per_epoch"]["path"])
    assert "epoch" in path.name and path.name == "capitalization_per_epoch.png" and path.stat().st_size > 5000
    assert plots["per_epoch"]["series"] == 4
    assert "| run | epoch_0 | epoch_1 | base model |" in report
    assert "| tiny_rank16_lr1e-4 | 0.250 ± 0.164 | 0.875 ± 0.125 | - |" in report
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
