"""The follow-up experiment: `ck design EXP --add-task NAME=SCRIPT@EPOCHS:RUNS` adds a task to a
finished plan for the named runs and epochs only; nothing about training changes, so scaffold
--only inspect writes just the new task lines (the real run: tests/e2e/test_follow_up.py)."""
import json
from pathlib import Path

import pytest

from cruijff_kit.cli import main
from cruijff_kit.experiment.parse import load_experiment

ROOT = Path(__file__).resolve().parents[2]
TASK = ROOT / "tools/cruijff_kit/blueprints/capitalization/inspect_task.py"
MODEL = "Llama-3.2-1B-Instruct"


@pytest.fixture
def exp(tmp_path, monkeypatch):
    monkeypatch.setenv("CK_LOCAL_CONFIG", str(tmp_path / "claude.local.md"))
    (tmp_path / "claude.local.md").write_text("- slurm_partition: debug\n")
    e = tmp_path / "exp"
    assert main(["design", str(e), "--model", f"{MODEL}=/models/{MODEL}", "--dataset", "/data/words.json",
                 "--ranks", "8,16", "--lrs", "1e-5", "--epochs", "2", "--gpus", "0",
                 "--task", f"capitalization={TASK}@0"]) == 0
    assert main(["scaffold", str(e)]) == 0
    return e


def test_added_task_is_planned_for_the_named_run_and_epoch_only(exp, capsys):
    before = load_experiment(exp)
    setups = {p: p.read_bytes() for p in exp.glob("*/setup_finetune.yaml")}
    capsys.readouterr()
    # the run named by its directory (rank16), as ck status and the analysis show it
    assert main(["design", str(exp), "--add-task", f"cap_again={TASK}@1:rank16", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == [{"task": "cap_again", "script": str(TASK), "epochs": [1],
                                "runs": [f"{MODEL}_rank16_lr1e-5"]}]
    assert report["next"][-1].endswith("--only inspect")
    after = load_experiment(exp)
    assert after.runs == before.runs and after.settings == before.settings  # training unchanged
    assert after.evaluations[:-1] == before.evaluations
    assert main(["scaffold", str(exp), "--only", "inspect"]) == 0
    assert {p: p.read_bytes() for p in exp.glob("*/setup_finetune.yaml")} == setups
    assert "cap_again" in (exp / "rank16" / "eval" / "epoch1.slurm").read_text()
    assert "cap_again" not in (exp / "rank16" / "eval" / "epoch0.slurm").read_text()
    assert not (exp / "rank8" / "eval" / "epoch1.slurm").exists()
    assert "cap_again" not in (exp / "base" / "eval" / "base.slurm").read_text()
    assert "ADD_TASK" in (exp / "design-experiment.log").read_text()


@pytest.mark.parametrize("arg,needle", [
    (f"cap_again={TASK}@1:nobody", "no run 'nobody'"),
    (f"cap_again={TASK}@2:rank16", "has no epoch_2"),
    (f"capitalization={TASK}@0", "already planned"),
    (f"cap_again={TASK}@1:rank16,", "empty run name"),
    ("cap_again", "expected NAME=SCRIPT@EPOCHS"),
    (f"../x={TASK}@1", "unsafe task name"),
])
def test_a_follow_up_that_cannot_mean_what_it_says_is_refused(exp, capsys, arg, needle):
    summary = (exp / "experiment_summary.md").read_bytes()
    capsys.readouterr()
    assert main(["design", str(exp), "--add-task", arg]) == 2
    assert needle in capsys.readouterr().err
    assert (exp / "experiment_summary.md").read_bytes() == summary


def test_add_task_does_not_mix_with_a_redesign(exp, capsys):
    assert main(["design", str(exp), "--add-task", f"cap_again={TASK}@1", "--ranks", "4"]) == 2
    assert "--ranks would redesign it" in capsys.readouterr().err


def test_task_flag_limited_to_runs_in_a_new_design(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CK_LOCAL_CONFIG", str(tmp_path / "none.md"))
    assert main(["design", str(tmp_path / "e"), "--model", f"{MODEL}=/m", "--dataset", "/d.json", "--ranks", "8,16",
                 "--task", f"cap={TASK}@0", "--task", f"extra={TASK}@0:{MODEL}_rank8_lr5e-5"]) == 0
    exp = load_experiment(tmp_path / "e")
    assert [e.runs for e in exp.evaluations] == [(), (f"{MODEL}_rank8_lr5e-5",)]


def test_every_run_selection_takes_the_plan_name_or_the_directory(exp, capsys):
    capsys.readouterr()
    for name in (f"{MODEL}_rank16_lr1e-5", "rank16", "*rank16*"):
        assert main(["run", str(exp), "--executor", "local", "--runs", name, "--dry-run", "--json"]) == 0
        jobs = json.loads(capsys.readouterr().out)["jobs"]
        assert {j["run"] for j in jobs} == {"rank16"}, name
