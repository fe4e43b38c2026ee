"""The report's Search section: trials x rungs with their fate, the configuration chosen on
validation and reported on test, setting importance (PED-ANOVA), compute against the full grid;
and a pruned trial's missing later epochs are not reported as an unfinished training."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from cruijff_kit.analyze.effects import ci_text
from cruijff_kit.analyze.pipeline import _num
from cruijff_kit.analyze.results import Results, Row, _fill_losses, _stopped_on_purpose
from cruijff_kit.analyze.search_report import from_progress, importance, trial_table
from cruijff_kit.experiment.model import Experiment, Run, RunType
from cruijff_kit.experiment.search import Dimension, Search
from cruijff_kit.experiment.search_progress import progress
from cruijff_kit.state.search import COMPLETED, PROMOTED, PRUNED, Decision
from cruijff_kit.templating import render

LR = Dimension("learning_rate", 1e-5, 1e-2, log=True)
DROPOUT = Dimension("lora_dropout", 0.0, 0.3)


def experiment(settings: list[dict], space=(LR,), rung_epochs=(1, 2, 3), direction="minimize") -> Experiment:
    runs = tuple(Run(f"t{i:02d}_x", "m", RunType.FINETUNED, settings=s, trial=i) for i, s in enumerate(settings))
    return Experiment("s", runs=runs, search=Search("asha", len(runs), rungs=len(rung_epochs), rung_epochs=rung_epochs,
                                                    direction=direction, space=tuple(space)))


def dec(trial, rung, epochs, value, decision, why=""):
    return Decision(trial, f"t{trial:02d}_x", rung, epochs, "val_loss", value, decision, why)


def test_importance_ranks_the_setting_that_decides_the_value_first():
    # 16 trials: val_loss is the distance of log10(lr) from -3; dropout wanders and does nothing
    lrs = [10 ** (-5 + 3 * i / 15) for i in range(16)]
    drops = [0.3 * ((7 * i) % 16) / 15 for i in range(16)]
    exp = experiment([{"learning_rate": lr, "lora_dropout": d} for lr, d in zip(lrs, drops)], space=(LR, DROPOUT))
    found = [dec(i, 0, 1, abs(math.log10(lr) + 3) + 0.01 * d, PRUNED) for i, (lr, d) in enumerate(zip(lrs, drops))]
    imp = importance(exp.search, list(progress(exp, found).trials))
    assert list(imp.values) == ["learning_rate", "lora_dropout"]
    assert imp.values["learning_rate"] > 0.7 and sum(imp.values.values()) == pytest.approx(1.0)
    assert imp.trials == 16
    # the other way round: dropout decides
    found = [dec(i, 0, 1, d, PRUNED) for i, d in enumerate(drops)]
    assert list(importance(exp.search, list(progress(exp, found).trials)).values)[0] == "lora_dropout"


def test_importance_is_not_estimated_from_too_few_trials():
    exp = experiment([{"learning_rate": 1e-4}, {"learning_rate": 1e-3}, {"learning_rate": 1e-2}])
    imp = importance(exp.search, list(progress(exp, [dec(0, 0, 1, 1.0, PRUNED), dec(1, 0, 1, 0.5, PROMOTED)]).trials))
    assert imp.values is None and imp.trials == 2 and "cannot be estimated" in imp.note


def test_categorical_and_integer_dimensions_become_optuna_distributions():
    rank = Dimension("lora_rank", choices=(4, 8, 16))
    warm = Dimension("lr_warmup_steps", 0, 20, integer=True)
    exp = experiment([{"lora_rank": (4, 8, 16)[i % 3], "lr_warmup_steps": i * 3} for i in range(6)], space=(rank, warm))
    found = [dec(i, 0, 1, (1.0 if i % 3 == 0 else 0.2) + 0.001 * i, PRUNED) for i in range(6)]
    imp = importance(exp.search, list(progress(exp, found).trials))
    assert set(imp.values) == {"lora_rank", "lr_warmup_steps"}


def _row(run: str, val: dict[str, float], test: dict[str, float]) -> Row:
    return Row(run=run, directory=run, type=RunType.FINETUNED.value, model="m", params={},
               all_epochs={"cap_val": val, "cap": test}, all_epochs_se={"cap": {k: 0.01 for k in test}},
               all_epochs_ci={"cap": {k: [v - 0.05, v + 0.05] for k, v in test.items()}},
               metric_names={"cap": "match/accuracy"}, epochs={"cap": max(map(int, test))})


def search_case():
    """Four trials: 2 and 3 complete (3 with the lower validation loss), 0 pruned at rung 0, 1 at
    rung 1. Trial 2 has the better TEST score: choosing on it would be choosing on test."""
    exp = experiment([{"learning_rate": lr} for lr in (1e-5, 1e-4, 3e-3, 1e-3)])
    found = [dec(0, 0, 1, 2.8, PRUNED, "worst third of rung 0"), dec(1, 0, 1, 1.4, PROMOTED),
             dec(2, 0, 1, 0.9, PROMOTED), dec(3, 0, 1, 1.0, PROMOTED),
             dec(1, 1, 2, 1.2, PRUNED, "worst third of rung 1"), dec(2, 1, 2, 0.7, PROMOTED),
             dec(3, 1, 2, 0.6, PROMOTED), dec(2, 2, 3, 0.5, COMPLETED), dec(3, 2, 3, 0.4, COMPLETED)]
    results = Results("s", "/x", ["learning_rate"], ["cap", "cap_val"], rows=[
        _row("t00_x", {"0": 0.1}, {"0": 0.1}), _row("t01_x", {"0": 0.3, "1": 0.4}, {"0": 0.3, "1": 0.4}),
        _row("t02_x", {"0": 0.8, "1": 0.9, "2": 0.9}, {"0": 0.8, "1": 0.9, "2": 0.97}),
        _row("t03_x", {"0": 0.8, "1": 0.85, "2": 0.88}, {"0": 0.8, "1": 0.85, "2": 0.91})],
        splits={"cap": "test", "cap_val": "validation"}, validation_for={"cap": "cap_val"})
    return exp, found, results


def test_the_best_configuration_is_chosen_on_validation_and_reported_on_test():
    exp, found, results = search_case()
    rep = from_progress(exp.search, progress(exp, found), results)
    assert rep.chosen.trial == 3  # lowest val_loss at the last rung, not trial 2's better test score
    assert rep.test == [{"task": "cap", "split": "test", "metric": "match/accuracy", "epoch": 2, "value": 0.91,
                         "se": 0.01, "ci": [pytest.approx(0.86), pytest.approx(0.96)]}]
    d = rep.to_dict()
    assert d["chosen"]["selected_on"] == "validation" and d["chosen"]["run"] == "t03_x"
    assert json.loads(json.dumps(d))["compute"]["run_epochs"] == 1 + 2 + 3 + 3


def test_the_report_section_shows_fates_per_rung_choice_importance_and_compute():
    exp, found, results = search_case()
    rep = from_progress(exp.search, progress(exp, found), results)
    header, cells = trial_table(rep.progress)
    assert header == ["trial", "run", "learning_rate", "rung 0 (1 ep)", "rung 1 (2 ep)", "rung 2 (3 ep)",
                      "epochs trained", "fate"]
    assert cells[0] == ["0", "t00_x", "1e-5", "2.800 pruned (worst third of rung 0)", "-", "-", "1", "pruned"]
    assert cells[1][3:] == ["1.400 promoted", "1.200 pruned (worst third of rung 1)", "-", "2", "pruned"]
    assert cells[3][3:] == ["1.000 promoted", "0.600 promoted", "0.400 completed", "3", "completed"]
    text = render("analyze/search_section.md.j2", search=rep, search_table=(header, cells), num=_num, ci=ci_text)
    assert "## Search: asha, 4 trials, val_loss (lower is better)" in text
    assert "| 0 | t00_x | 1e-5 | 2.800 pruned (worst third of rung 0) | - | - | 1 | pruned |" in text
    assert "| 0 | 1 | 4 | 3 | 1 | 0 | 0 |" in text and "| 2 | 3 | 2 | 0 | 0 | 2 | 0 |" in text
    assert "Trial 3 (`t03_x`): learning_rate = 0.001. Chosen on its val_loss at the last rung (3 epochs): 0.400" in text
    assert "- cap (test, match/accuracy): 0.910 [0.860, 0.960] at epoch_2" in text
    assert "Importance cannot be estimated from 4 trial(s)" not in text  # 4 trials: estimated
    assert "| learning_rate | 1.00 |" in text
    assert "Run-epochs trained: 9 of the full grid's 12 (4 trials x 3 epochs): 75 %." in text
    assert "GPU-hours: not measured" in text


def test_before_any_trial_completes_the_report_chooses_nothing():
    exp, found, results = search_case()
    rep = from_progress(exp.search, progress(exp, found[:7]), results)
    assert rep.chosen is None and rep.test == []
    text = render("analyze/search_section.md.j2", search=rep, search_table=trial_table(rep.progress), num=_num,
                  ci=ci_text)
    assert "No trial has completed every epoch yet" in text and "Best so far: trial 3 (`t03_x`)" in text


# ---- a pruned trial's later epochs are missing on purpose ------------------------------------
def _trial_dir(root: Path, epochs_trained: int, steps_per_epoch: int = 4) -> tuple[Path, Path]:
    run = root / "t00_x"
    out = root / "out"
    (out / "logs").mkdir(parents=True)
    (run).mkdir()
    (run / "setup_finetune.yaml").write_text(f"output_dir: {out}\nepochs: 3\n")
    lines = []
    for step in range(1, epochs_trained * steps_per_epoch + 1):
        lines.append(f"Step {step} | loss:{2.0 / step:.4f} lr:0.001")
        if step % steps_per_epoch == 0:
            lines.append(f"Step {step} | val_loss:{1.0 / step:.4f} epoch:{step // steps_per_epoch - 1}")
    (out / "logs" / "log_1.txt").write_text("\n".join(lines) + "\n")
    for e in range(epochs_trained):
        (out / f"epoch_{e}").mkdir()
    return run, out


def test_a_pruned_trial_reads_as_pruned_not_unfinished(tmp_path):
    exp = experiment([{"learning_rate": 1e-4}])
    run_dir, _out = _trial_dir(tmp_path, epochs_trained=1)
    (tmp_path / ".ck").mkdir()
    (tmp_path / ".ck" / "ledger.json").write_text(json.dumps(
        {"jobs": {}, "search": {"decisions": [dec(0, 0, 1, 0.25, PRUNED, "worst third").to_dict()]}}))
    res = Results("s", str(tmp_path), [], [], rows=[])
    stops = _stopped_on_purpose(tmp_path, exp, res)
    assert stops == {"t00_x": (1, "pruned at rung 0 after 1 epoch(s): worst third")}
    row = Row("t00_x", "t00_x", RunType.FINETUNED.value, "m", {})
    _fill_losses(res, row, run_dir, exp, stops["t00_x"])
    assert res.missing == [] and row.stopped.startswith("pruned at rung 0")
    assert row.steps_per_epoch == 4 and list(row.train_loss_by_epoch) == [0]
    assert row.val_loss_by_epoch == {0: 0.25}
    # the same run without the search's decision is an unfinished training
    plain = Row("t00_x", "t00_x", RunType.FINETUNED.value, "m", {})
    _fill_losses(res, plain, run_dir, exp)
    assert "training not finished (1 of 3 epoch checkpoints" in res.missing[0]["reason"]


def test_without_a_search_nothing_is_stopped_on_purpose(tmp_path):
    exp = Experiment("grid", runs=(Run("a", "m", RunType.FINETUNED),))
    assert _stopped_on_purpose(tmp_path, exp, Results("g", str(tmp_path), [], [], rows=[])) == {}


def test_the_answer_and_the_json_name_the_searchs_choice(tmp_path):
    from cruijff_kit.analyze.pipeline import Analysis, summary_text

    exp, found, results = search_case()
    results.varying = []
    a = Analysis(results, tmp_path, search=from_progress(exp.search, progress(exp, found), results))
    assert ("Answer: Search (asha): trial 3 (`t03_x`: learning_rate 0.001) chosen on validation (val_loss 0.400 "
            "after 3 epochs); on test: cap 0.910; it trained 9 of the full grid's 12 run-epochs.") in summary_text(a)
    d = json.loads(json.dumps(a.to_dict()))
    assert d["search"]["chosen"]["trial"] == 3 and d["search"]["test"][0]["value"] == 0.91
    assert [t["fate"] for t in d["search"]["trials"]] == ["pruned", "pruned", "completed", "completed"]
    assert "search" not in Analysis(results, tmp_path).to_dict()


def test_ck_analyze_reports_a_search_end_to_end_on_disk(tmp_path, monkeypatch):
    """A designed plan given a search (the plan side's parser is stood in for), two trials on disk:
    trial 0 pruned after 1 of 3 epochs, trial 1 completed. report.md has the Search section, the
    pruned trial is not 'training not finished', the JSON carries the search."""
    from dataclasses import replace

    from cruijff_kit.analyze import pipeline
    from cruijff_kit.cli import main as ck
    from cruijff_kit.experiment.naming import run_directories
    from cruijff_kit.experiment.parse import load_experiment
    from tests.run.helpers import write_weights

    exp_dir = tmp_path / "exp"
    assert ck(["design", str(exp_dir), "--name", "s", "--model", f"tiny={tmp_path / 'model'}", "--dataset",
               str(tmp_path / "d.json"), "--ranks", "8", "--lrs", "1e-5,3e-3", "--epochs", "3", "--gpus", "0",
               "--no-control", "--set", "Validation during training=true"]) == 0
    planned = load_experiment(exp_dir / "experiment_summary.md")
    searched = replace(planned, search=Search("asha", 2, rungs=3, rung_epochs=(1, 2, 3), space=(LR,)),
                       runs=tuple(replace(r, trial=i) for i, r in enumerate(planned.runs)))
    monkeypatch.setattr(pipeline, "load_experiment", lambda _path: searched)
    dirs = run_directories(searched)
    (t0, r0), (t1, r1) = searched.trials()
    for run, trained in ((r0, 1), (r1, 3)):
        run_dir, out = _trial_dir(tmp_path / "runs" / run.name, epochs_trained=trained)
        target = exp_dir / dirs[run.name]
        run_dir.rename(target)
        for e in range(trained):
            write_weights(out / f"epoch_{e}" / "model.safetensors")
    (exp_dir / ".ck").mkdir(exist_ok=True)
    found = [Decision(t0, r0.name, 0, 1, "val_loss", 0.25, PRUNED, "worse half"),
             Decision(t1, r1.name, 0, 1, "val_loss", 0.2, PROMOTED), Decision(t1, r1.name, 1, 2, "val_loss", 0.12, PROMOTED),
             Decision(t1, r1.name, 2, 3, "val_loss", 0.0833, COMPLETED)]
    (exp_dir / ".ck" / "ledger.json").write_text(json.dumps({"jobs": {}, "search": {"decisions": [d.to_dict() for d in found]}}))

    a = pipeline.analyze_experiment(exp_dir, store=False)
    assert not [m for m in a.results.missing if "not finished" in m["reason"]], a.results.missing
    pruned = next(r for r in a.results.rows if r.run == r0.name)
    assert pruned.stopped.startswith("pruned at rung 0") and pruned.val_loss_by_epoch == {0: 0.25}
    report = (exp_dir / "analysis" / "report.md").read_text()
    assert "## Search: asha, 2 trials, val_loss (lower is better)" in report
    assert f"| {t0} | {r0.name} | 1e-5 | 0.250 pruned (worse half) | - | - | 1 | pruned |" in report
    assert f"- Search (asha): trial {t1} (`{r1.name}`: learning_rate 0.003) chosen on validation" in report
    assert "Run-epochs trained: 4 of the full grid's 6 (2 trials x 3 epochs): 67 %." in report
    assert a.to_dict()["search"]["compute"]["run_epochs"] == 4
    from jsonschema import Draft202012Validator

    from cruijff_kit.commands._common import json_schema

    errors = list(Draft202012Validator(json_schema("analyze")).iter_errors(json.loads(json.dumps(a.to_dict()))))
    assert not errors, errors[:3]


def test_a_malformed_search_record_is_one_problem_not_the_end(tmp_path):
    from cruijff_kit.analyze.search_report import search_report

    exp = experiment([{"learning_rate": 1e-4}])
    (tmp_path / ".ck").mkdir()
    (tmp_path / ".ck" / "ledger.json").write_text(json.dumps({"jobs": {}, "search": {"decisions": "nope"}}))
    res = Results("s", str(tmp_path), [], [], rows=[])
    assert _stopped_on_purpose(tmp_path, exp, res) == {}
    assert search_report(tmp_path, exp, res) is None
    assert len(res.problems) == 1 and "'search.decisions' is not a list" in res.problems[0]


def test_trials_outside_the_space_are_left_out_of_importance():
    exp = experiment([{"learning_rate": lr} for lr in (1e-4, 1e-3, 1e-2, 1.0, 2.0)])  # space: 1e-5..1e-2
    found = [dec(i, 0, 1, 1.0 + i, PRUNED) for i in range(5)]
    imp = importance(exp.search, list(progress(exp, found).trials))
    assert imp.values is None and imp.trials == 3 and "2 of 5 trials' settings lie outside" in imp.note
