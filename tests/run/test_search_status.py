"""`ck status` on a search that prunes: trials per rung, best so far, budget used, read from the
ledger's decisions (state/search.py) and the trials' checkpoints, and rendered as text."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cruijff_kit.experiment.model import Experiment, Run, RunType
from cruijff_kit.experiment.naming import run_directories
from cruijff_kit.experiment.search import Dimension, Search
from cruijff_kit.experiment.search_progress import (
    NOT_STARTED, RUNNING, best_completed, best_so_far, gpu_hours, progress, read_progress)
from cruijff_kit.state.ledger import Entry
from cruijff_kit.state.search import COMPLETED, FAILED, PROMOTED, PRUNED, Decision
from cruijff_kit.templating import render
from tests.run.helpers import write_weights

LRS = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3]


def search_experiment(lrs=LRS, rung_epochs=(1, 2, 3), direction="minimize", budget=None) -> Experiment:
    runs = tuple(Run(f"t{i:02d}_lr{lr:g}", "m", RunType.FINETUNED, settings={"learning_rate": lr}, trial=i)
                 for i, lr in enumerate(lrs))
    search = Search("asha", len(lrs), rungs=len(rung_epochs), reduction_factor=3, rung_epochs=rung_epochs,
                    direction=direction, budget_gpu_hours=budget,
                    space=(Dimension("learning_rate", 1e-5, 3e-3, log=True),))
    return Experiment("search", runs=runs, search=search)


def dec(trial, rung, epochs, value, decision, why=""):
    return Decision(trial, f"t{trial:02d}", rung, epochs, "val_loss", value, decision, why)


# rung 0 (1 epoch): 2 and 4 promoted, 5 failed, the rest pruned; rung 1 (2 epochs): 4 promoted, 2
# pruned; rung 2 (3 epochs): 4 completed.
DECISIONS = [
    dec(0, 0, 1, 2.9, PRUNED, "not in the top 1/3 of rung 0"), dec(1, 0, 1, 2.5, PRUNED, "not in the top 1/3"),
    dec(2, 0, 1, 1.1, PROMOTED), dec(3, 0, 1, 1.6, PRUNED, "not in the top 1/3"),
    dec(4, 0, 1, 1.2, PROMOTED), dec(5, 0, 0, None, FAILED, "training failed in its first epoch"),
    dec(2, 1, 2, 0.9, PRUNED, "not in the top 1/3 of rung 1"), dec(4, 1, 2, 0.7, PROMOTED),
    dec(4, 2, 3, 0.5, COMPLETED),
]


def test_trials_per_rung_fates_and_epochs_trained():
    p = progress(search_experiment(), DECISIONS)
    fates = {t.trial: t.fate for t in p.trials}
    assert fates == {0: PRUNED, 1: PRUNED, 2: PRUNED, 3: PRUNED, 4: COMPLETED, 5: FAILED}
    assert [t.trained_epochs for t in p.trials] == [1, 1, 2, 1, 3, 0]
    # a trial that failed after training an epoch spent it
    late = progress(search_experiment(), [dec(0, 0, 1, 1.0, PROMOTED), dec(0, 1, 2, None, FAILED, "OOM")])
    assert late.trials[0].trained_epochs == 2 and late.trials[0].fate == FAILED and late.best is None
    r0, r1, r2 = p.rungs
    assert (r0.reached, r0.promoted, r0.pruned, r0.failed, r0.training) == (6, 2, 3, 1, 0)
    assert (r1.epochs, r1.reached, r1.promoted, r1.pruned) == (2, 2, 1, 1)
    assert (r2.reached, r2.completed) == (1, 1)
    assert p.best.trial == 4 and p.best.deepest.value == 0.5
    assert dict(p.best.settings) == {"learning_rate": 1e-3}
    assert (p.compute.run_epochs, p.compute.grid_run_epochs) == (8, 18)
    assert p.compute.share == pytest.approx(8 / 18)


def test_a_search_under_way_counts_trials_still_training():
    p = progress(search_experiment(), DECISIONS[:6], trained={"t02_lr0.0001": 2, "t04_lr0.001": 1})
    assert p.rungs[1].training == 2 and p.rungs[1].reached == 0
    assert {t.trial: t.fate for t in p.trials}[2] == RUNNING
    # checkpoints on disk count beyond the decisions: trial 2 already trained its second epoch
    assert [t.trained_epochs for t in p.trials] == [1, 1, 2, 1, 1, 0]
    fresh = progress(search_experiment(), [])
    assert {t.fate for t in fresh.trials} == {NOT_STARTED} and fresh.rungs[0].training == 6
    assert fresh.best is None and fresh.compute.run_epochs == 0


def test_best_so_far_prefers_the_deeper_rung_then_the_value():
    p = progress(search_experiment(), [dec(0, 0, 1, 0.1, PRUNED), dec(1, 0, 1, 0.8, PROMOTED),
                                       dec(1, 1, 2, 0.9, PROMOTED), dec(2, 0, 1, 0.7, PROMOTED),
                                       dec(2, 1, 2, 0.6, PROMOTED), dec(3, 0, 1, 0.6, PROMOTED),
                                       dec(3, 1, 2, 0.6, PROMOTED)])
    # trial 0 has the lowest value, but after one epoch; 2 and 3 tie at rung 1: the lower number
    assert best_so_far(p.trials, "minimize").trial == 2
    assert best_so_far(p.trials, "maximize").trial == 1


def test_the_chosen_trial_is_the_best_completed_one_ties_to_the_lower_number():
    p = progress(search_experiment(), [
        dec(1, 0, 1, 0.9, PROMOTED), dec(1, 1, 2, 0.8, PROMOTED), dec(1, 2, 3, 0.4, COMPLETED),
        dec(3, 0, 1, 0.9, PROMOTED), dec(3, 1, 2, 0.8, PROMOTED), dec(3, 2, 3, 0.4, COMPLETED),
        dec(2, 0, 1, 0.9, PROMOTED), dec(2, 1, 2, 0.1, PROMOTED)])  # better, but not finished
    assert best_completed(p.trials, "minimize").trial == 1
    assert best_so_far(p.trials, "minimize").trial == 1
    assert best_completed(progress(search_experiment(), DECISIONS[:8]).trials, "minimize") is None


def test_gpu_hours_are_wall_hours_times_gpus_of_the_trials_jobs_only():
    entries = {
        "a/finetune": Entry.from_dict("a/finetune", {"kind": "finetune", "run": "a", "state": "COMPLETED", "attempts": [
            {"job_id": "1", "state": "FAILED", "started": "2026-12-07T10:00:00+00:00", "ended": "2026-12-07T10:30:00+00:00"},
            {"job_id": "2", "state": "COMPLETED", "started": "2026-12-07T11:00:00+00:00", "ended": "2026-12-07T12:00:00+00:00"}]}),
        "b/finetune": Entry.from_dict("b/finetune", {"kind": "finetune", "run": "b", "state": "RUNNING", "attempts": [
            {"job_id": "3", "state": "RUNNING", "started": "2026-12-07T11:00:00+00:00", "ended": None}]}),
        "other/finetune": Entry.from_dict("other/finetune", {"kind": "finetune", "run": "other", "attempts": [
            {"job_id": "4", "state": "COMPLETED", "started": "2026-12-07T00:00:00+00:00", "ended": "2026-12-07T12:00:00+00:00"}]}),
    }
    # a: 1.5 h on 2 GPUs; b (CPU, counts as one slot): running for 0.5 h; other: not a trial
    assert gpu_hours(entries, {"a": 2, "b": 0}, now="2026-12-07T11:30:00+00:00") == pytest.approx(3.5)


def _checkpoint(out: Path, epoch: int) -> None:
    d = out / f"epoch_{epoch}"
    d.mkdir(parents=True)
    write_weights(d / "model.safetensors")


def test_read_progress_reads_the_ledger_and_the_checkpoints_and_writes_nothing(tmp_path):
    exp = search_experiment(lrs=[1e-4, 1e-3], budget=2.0)
    dirs = run_directories(exp)  # run name -> its directory: the ledger and output dirs are by directory
    (tmp_path / ".ck").mkdir()
    ledger = {"version": 1, "jobs": {f"{dirs['t01_lr0.001']}/finetune": {
        "kind": "finetune", "run": dirs["t01_lr0.001"], "state": "COMPLETED", "attempts": [
            {"job_id": "7", "state": "COMPLETED", "started": "2026-12-07T10:00:00+00:00",
             "ended": "2026-12-07T10:15:00+00:00"}]}},
        "search": {"decisions": [d.to_dict() for d in (dec(0, 0, 1, 1.5, PRUNED, "worse half"),
                                                       dec(1, 0, 1, 1.0, PROMOTED))]}}
    (tmp_path / ".ck" / "ledger.json").write_text(json.dumps(ledger))
    outs = {}
    for run, epochs in (("t00_lr0.0001", 1), ("t01_lr0.001", 2)):
        outs[dirs[run]] = tmp_path / "out" / run
        for e in range(epochs):
            _checkpoint(outs[dirs[run]], e)
    (outs[dirs["t01_lr0.001"]] / "epoch_2").mkdir()  # the third epoch is being written: not complete
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    p = read_progress(tmp_path, exp, outs)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert [t.trained_epochs for t in p.trials] == [1, 2]
    assert p.compute.gpu_hours == pytest.approx(0.25) and p.compute.budget_gpu_hours == 2.0
    assert p.compute.grid_gpu_hours == pytest.approx(0.25 / 3 * 6)

    text = render("status_search.txt.j2", s=p.to_dict())
    lines = text.splitlines()
    assert lines[0].startswith("Search: asha, 2 trials, metric val_loss (minimize), rungs at 1, 2, 3")
    assert lines[2].split() == ["0", "1", "2", "1", "1", "0", "0", "0"]  # rung 0: reached 2, 1 up, 1 pruned
    assert lines[3].split() == ["1", "2", "0", "0", "0", "0", "0", "1"]  # rung 1: one training towards it
    assert "Best so far: trial 1 (t01_lr0.001), val_loss 1 at rung 0 (1 epoch(s)); learning_rate=0.001" in text
    assert "Budget: 3 of 6 run-epochs trained (50 % of the full grid's); 0.25 GPU-hours of 2.0 budgeted" in text


def test_an_unreadable_search_record_is_said_not_raised(tmp_path, monkeypatch):
    from cruijff_kit.run import search_status as mod

    (tmp_path / ".ck").mkdir()
    (tmp_path / ".ck" / "ledger.json").write_text(json.dumps({"jobs": {}, "search": {"decisions": [{"trial": 1}]}}))
    monkeypatch.setattr(mod, "load_experiment", lambda _path: search_experiment())
    got = mod.search_status(tmp_path, None)
    assert "search.decisions[0] is not a decision" in got["error"]
    assert "cannot be read" in render("status_search.txt.j2", s=got)


def test_ck_status_shows_the_search_of_a_plan_and_nothing_for_a_grid(tmp_path, monkeypatch, capsys):
    from dataclasses import replace

    from cruijff_kit.cli import main as ck
    from cruijff_kit.experiment.parse import load_experiment
    from cruijff_kit.run import search_status as mod
    from cruijff_kit.run.status import experiment_status

    exp_dir = tmp_path / "exp"
    assert ck(["design", str(exp_dir), "--name", "s", "--model", f"tiny={tmp_path / 'model'}", "--dataset",
               str(tmp_path / "d.json"), "--ranks", "8", "--lrs", "1e-4,1e-3", "--epochs", "3", "--gpus", "0",
               "--no-control"]) == 0
    assert "search" not in experiment_status(exp_dir)  # a grid
    planned = load_experiment(exp_dir / "experiment_summary.md")
    searched = replace(planned, search=search_experiment(lrs=[1e-4, 1e-3]).search,
                       runs=tuple(replace(r, trial=i) for i, r in enumerate(planned.runs)))
    monkeypatch.setattr(mod, "load_experiment", lambda _path: searched)
    (exp_dir / ".ck").mkdir(exist_ok=True)
    (t0, r0), (t1, r1) = searched.trials()
    (exp_dir / ".ck" / "ledger.json").write_text(json.dumps({"jobs": {}, "search": {"decisions": [
        Decision(t0, r0.name, 0, 1, "val_loss", 1.5, PRUNED, "worse half").to_dict(),
        Decision(t1, r1.name, 0, 1, "val_loss", 0.8, PROMOTED).to_dict()]}}))
    status = experiment_status(exp_dir)
    assert [t["fate"] for t in status["search"]["trials"]] == [PRUNED, RUNNING]
    assert status["search"]["best"]["run"] == r1.name
    capsys.readouterr()
    assert ck(["status", str(exp_dir)]) == 0
    out = capsys.readouterr().out
    assert "Search: asha, 2 trials, metric val_loss (minimize), rungs at 1, 2, 3 epoch(s)" in out
    assert f"Best so far: trial {t1} ({r1.name}), val_loss 0.8 at rung 0" in out
    assert "Budget: 2 of 6 run-epochs trained (33 % of the full grid's); GPU-hours not measured yet" in out
    from jsonschema import Draft202012Validator

    from cruijff_kit.commands._common import json_schema

    errors = list(Draft202012Validator(json_schema("status")).iter_errors(json.loads(json.dumps(status))))
    assert not errors, errors[:3]
