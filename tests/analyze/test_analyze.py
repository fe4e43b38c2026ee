import json
import struct
from pathlib import Path

import pytest

from cruijff_kit.cli import main

from .conftest import EVALUATED, LOSSES

pytestmark = pytest.mark.slow  # real training, evaluation or training processes: `make test`, not test-fast

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def analyzed(experiment, tmp_path_factory):
    """`ck analyze DIR --json` once; the module's tests read what it wrote."""
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["analyze", str(experiment), "--json"]) == 0
    return json.loads(buf.getvalue())


def rows_by_dir(report):
    return {r["directory"]: r for r in report["rows"]}


def test_one_row_per_run_with_parameters(analyzed):
    rows = rows_by_dir(analyzed)
    assert set(rows) == {"rank8_lr1e-4", "rank8_lr0.001", "rank16_lr1e-4", "rank16_lr0.001", "base"}
    assert analyzed["varying"] == ["lora_rank", "learning_rate"]
    assert rows["rank8_lr1e-4"]["params"] == {"lora_rank": 8, "learning_rate": 1e-4}
    assert rows["rank16_lr0.001"]["params"] == {"lora_rank": 16, "learning_rate": 1e-3}
    assert rows["base"]["type"] == "Control" and rows["base"]["params"] == {"lora_rank": None, "learning_rate": None}


def test_accuracies_equal_inspect_logs(analyzed, experiment):
    from inspect_ai.log import read_eval_log

    rows = rows_by_dir(analyzed)
    for run_dir, blanks in EVALUATED.items():
        [log_path] = [p for p in (experiment / run_dir / "eval" / "logs").glob("*.eval")]
        log = read_eval_log(str(log_path))
        reported = log.results.scores[0].metrics["accuracy"].value
        assert rows[run_dir]["metrics"]["capitalization"] == pytest.approx(reported)
        assert reported == pytest.approx(blanks / 4)  # the fixture's design really reached the log
        assert rows[run_dir]["logs"]["capitalization"] == str(log_path)
    assert rows["rank8_lr1e-4"]["delta"]["capitalization"] == pytest.approx(0.25)
    assert rows["rank16_lr0.001"]["delta"]["capitalization"] == pytest.approx(0.75)
    assert rows["rank8_lr1e-4"]["epochs"]["capitalization"] == 0


def test_final_loss_from_disklogger_files(analyzed):
    rows = rows_by_dir(analyzed)
    for run_dir, losses in LOSSES.items():
        # one epoch: the final train loss is the mean over it (one step's loss is noise)
        assert rows[run_dir]["final_train_loss"] == pytest.approx(sum(losses) / len(losses))
        assert rows[run_dir]["loss_steps"] == len(losses)
    assert rows["base"]["final_train_loss"] is None


def test_best_configuration(analyzed):
    best = analyzed["best"]
    assert best["directory"] == "rank16_lr0.001"
    assert best["value"] == pytest.approx(0.75) and best["delta_vs_control"] == pytest.approx(0.75)


def test_missing_and_corrupt_are_reported_not_fatal(analyzed):
    missing = {(m["directory"], m["what"]) for m in analyzed["missing"]}
    assert ("rank8_lr0.001", "capitalization (epoch 0)") in missing
    assert ("rank16_lr1e-4", "capitalization (epoch 0)") in missing
    assert len(analyzed["missing"]) == 2
    [problem] = analyzed["problems"]
    assert "2026-01-01T00-00-00_capitalization_broken.eval" in problem and "not a readable inspect-ai log" in problem
    assert rows_by_dir(analyzed)["rank16_lr1e-4"]["metrics"]["capitalization"] is None


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_plots_are_pngs_with_expected_content(analyzed):
    import matplotlib.image

    plots = {p["kind"]: p for p in analyzed["plots"]}
    assert set(plots) == {"loss_curves", "heatmap", "metric_vs_control", "per_epoch"}
    assert Path(plots["per_epoch"]["path"]).name == "capitalization_per_epoch.png"
    assert plots["loss_curves"]["series"] == len(LOSSES)
    assert plots["heatmap"]["cells"] == 4 and plots["heatmap"]["filled"] == 2
    assert plots["metric_vs_control"]["series"] == 2
    for p in plots.values():
        path = Path(p["path"])
        w, h = _png_size(path)
        assert w > 100 and h > 100
        assert matplotlib.image.imread(str(path)).shape[:2] == (h, w)


def test_written_files_and_log(analyzed, experiment):
    import csv

    out = experiment / "analysis"
    with open(out / "results.csv", newline="") as fh:
        table = {r["directory"]: r for r in csv.DictReader(fh)}
    assert float(table["rank16_lr0.001"]["capitalization"]) == pytest.approx(0.75)
    assert table["rank8_lr0.001"]["capitalization"] == ""
    report = (out / "report.md").read_text()
    assert "**tiny_rank16_lr0.001**" in report
    for p in analyzed["plots"]:
        assert f"]({Path(p['path']).name})" in report
    # samples are read in the terminal (an agent has no browser for `inspect view`)
    assert f"ck analyze {experiment} --samples rank16_lr0.001" in report
    assert "| tiny_rank8_lr1e-4 | 8 | 1e-4 |" in (out / "results.md").read_text()
    log = (experiment / "analyze-experiment.log").read_text()
    assert log.startswith("[") and "] ANALYZE: analyzed 5 run(s), 1 task(s)\n" in log
    assert "Result: best tiny_rank16_lr0.001" in log


def test_stdout_table(experiment, capsys, tmp_path):
    assert main(["analyze", str(experiment), "--out", str(tmp_path / "a")]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].startswith("Results: exp (5 runs, 1 task; varying: lora_rank, learning_rate)")
    assert lines[1].split() == ["run", "lora_rank", "learning_rate", "train_loss", "capitalization", "d_capitalization"]
    assert lines[2].split() == ["tiny_rank8_lr1e-4", "8", "1e-4", "2.583", "0.250", "+0.250"]
    assert "Best: tiny_rank16_lr0.001 (capitalization 0.750, +0.750 vs control)" in text
    assert "Problem: " in text and "broken.eval" in text
    assert (tmp_path / "a" / "report.md").exists()


def test_no_summary_is_a_clear_error(tmp_path, capsys):
    assert main(["analyze", str(tmp_path)]) == 2
    assert "experiment_summary.md not found" in capsys.readouterr().err
