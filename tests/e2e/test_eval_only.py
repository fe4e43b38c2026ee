"""Eval-only runs and re-evaluation, for real on the tiny model (real inspect-ai, local executor).

An Eval-only row evaluates a model this experiment does not train (its Checkpoint, else its
Model): scaffold writes only eval scripts, `ck run` evaluates it, analysis shows it as a row. The
session's finished experiment (tests/finished_experiment.py) has one, a checkpoint another
experiment wrote; tests/e2e/test_eval_only_design.py designs eval-only runs of both kinds. Adding a
task to a finished experiment re-runs each run's one eval job with just the new task:
tests/e2e/test_one_load_per_checkpoint.py checks that for every kind of run, eval-only included.
"""
import csv
import shlex

import pytest

from tests.finished_experiment import EVAL_ONLY, FINETUNED, TASKS

pytestmark = pytest.mark.slow


def test_eval_only_runs_are_scaffolded_as_evaluations_only(finished_experiment):
    fin = finished_experiment
    exp = fin.exp
    assert EVAL_ONLY == ("other_ckpt",)
    for run in EVAL_ONLY:
        assert not (exp / run / "finetune.slurm").exists()
        assert not (exp / run / "setup_finetune.yaml").exists()
        assert [p.name for p in (exp / run / "eval").glob("*.slurm")] == ["base.slurm"]
    ckpt = (exp / "other_ckpt" / "eval" / "base.slurm").read_text()
    assert f"MODEL_DIR={shlex.quote(str(fin.other))}\n" in ckpt
    assert str(fin.other) in ckpt and str(fin.model) not in ckpt.split("MODEL_DIR=", 1)[1].split("\n", 1)[0]


def test_ck_run_evaluates_eval_only_runs_and_analysis_shows_them(mutable_experiment, tmp_path):
    from inspect_ai.log import read_eval_log

    fin = mutable_experiment  # `ck analyze` writes its action log into the experiment
    exp = fin.exp
    assert fin.first_run["ok"], fin.first_run
    jobs = fin.ledger()
    mine = {k for k in jobs if k.split("/")[0] in EVAL_ONLY}
    assert mine == {"other_ckpt/eval/base"}  # an evaluation only, no fine-tune
    assert all(jobs[k]["state"] == "COMPLETED" for k in mine), jobs
    logs = list((exp / "other_ckpt" / "eval" / "logs").glob("*.eval"))
    assert len(logs) == len(TASKS)
    for path in logs:
        log = read_eval_log(str(path), header_only=True)
        assert log.status == "success" and log.eval.model == f"ck-hf/{fin.other}"  # the given checkpoint, not the Model
        assert log.results.total_samples >= 1

    fin.ck("analyze", exp, "--out", tmp_path / "analysis")
    with open(tmp_path / "analysis" / "results.csv", newline="") as fh:
        rows = {r["directory"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {"other_ckpt", "base", *FINETUNED}, rows
    assert rows["other_ckpt"]["type"] == "Eval-only" and rows["other_ckpt"]["run"] == "other_ckpt", rows
    assert rows["base"]["type"] == "Control" and {rows[d]["type"] for d in FINETUNED} == {"Fine-tuned"}, rows
