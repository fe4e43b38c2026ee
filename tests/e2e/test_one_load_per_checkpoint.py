"""One evaluation job per checkpoint, one model load, for real on the tiny model (the session's
finished experiment, tests/finished_experiment.py: real torchtune, real inspect-ai, local executor).

Three tasks (the capitalization task on its test split, its validation split, and the test split
with a system prompt) are evaluated on each fine-tuned run's epoch_1, the control and an eval-only
row: one script and one job per checkpoint, three logs each with their own task and fingerprint,
and the job's output shows the weights loaded once. Tasks added to the finished experiment are the
only thing the next `ck run` evaluates: every run's same job runs again with just those tasks, for
fine-tuned, control and eval-only runs alike (base.slurm and epoch1.slurm).
"""
import json
from pathlib import Path

import pytest

from tests.finished_experiment import EVAL_EPOCH, FINETUNED, SPLITS, SYSTEM_PROMPT, TASK, TASKS

LOAD_LINE = "ck-hf: loading weights from "
pytestmark = pytest.mark.slow


def _logs(run_dir: Path) -> dict[Path, dict]:
    """Every log of a run: path -> (status, metadata)."""
    from inspect_ai.log import read_eval_log

    out = {}
    for p in sorted((run_dir / "eval" / "logs").glob("*.eval")):
        log = read_eval_log(str(p), header_only=True)
        out[p] = {"status": log.status, "meta": dict(log.eval.metadata or {}), "task_args": dict(log.eval.task_args)}
    return out


def _job_output(exp: Path, run: str, job_id: str) -> str:
    return (exp / run / "eval" / f"slurm-{job_id}.out").read_text(errors="replace")


def _eval_runs(exp: Path) -> dict[str, str]:
    """run directory -> its one eval script's stem (epoch1 / base), as found on disk."""
    return {d.name: s.stem for d in exp.iterdir() if (d / "eval").is_dir() for s in (d / "eval").glob("*.slurm")}


def test_one_script_per_checkpoint_lists_every_task(finished_experiment):
    from cruijff_kit.state.artifacts import script_tasks

    fin = finished_experiment
    exp = fin.exp
    scripts = {d.name: sorted(p.name for p in (d / "eval").glob("*.slurm"))
               for d in exp.iterdir() if (d / "eval").is_dir()}
    assert scripts == {run: [f"{stem}.slurm"] for run, stem in fin.eval_runs.items()}, scripts
    for run, stem in _eval_runs(exp).items():
        lines = script_tasks(exp / run / "eval" / f"{stem}.slurm")
        assert [t.name for t in lines] == list(TASKS)
        splits = [json.loads(t.args_json)["split"] for t in lines]
        assert splits == [SPLITS[t] for t in TASKS] == ["test", "validation", "test"]


def test_one_job_per_checkpoint_three_logs_one_model_load(finished_experiment):
    from cruijff_kit.state.artifacts import eval_fingerprint

    fin = finished_experiment
    exp = fin.exp
    assert fin.first_run["ok"], fin.first_run
    jobs = fin.ledger()
    evals = {k: j for k, j in jobs.items() if "/eval/" in k}
    runs = _eval_runs(exp)
    assert set(evals) == {f"{run}/eval/{stem}" for run, stem in runs.items()}  # 1 job per checkpoint, not 3
    assert len(evals) == len(fin.eval_runs) == 4 and all(j["state"] == "COMPLETED" for j in jobs.values()), jobs
    for run, stem in runs.items():
        key, script = f"{run}/eval/{stem}", exp / run / "eval" / f"{stem}.slurm"
        logs = _logs(exp / run)
        assert len(logs) == 3 and all(v["status"] == "success" for v in logs.values()), logs
        by_task = {v["meta"]["ck_task"]: v for v in logs.values()}
        assert set(by_task) == set(TASKS)
        for task, v in by_task.items():
            assert v["meta"]["ck_job"] == key
            assert v["meta"]["ck_eval"] == eval_fingerprint(script, task)
            assert v["meta"]["ck_epoch"] == ("base" if stem == "base" else str(EVAL_EPOCH))
        assert (stem == "base") == (run not in FINETUNED)
        assert by_task["cap_val"]["task_args"]["split"] == "validation"
        assert by_task["cap_prompt"]["task_args"]["system_prompt"] == SYSTEM_PROMPT
        assert len({v["meta"]["ck_eval"] for v in logs.values()}) == 3  # each task its own fingerprint
        out = _job_output(exp, run, evals[key]["job_id"])
        assert out.count(LOAD_LINE) == 1, out[-3000:]  # the model was loaded once for the three tasks
        assert [line for line in out.splitlines() if line.startswith("ck: task ")] == [
            f"ck: task {t} ({i + 1}/3)" for i, t in enumerate(TASKS)]


def test_adding_tasks_evaluates_only_the_new_tasks(mutable_experiment):
    """Two tasks added: cap_train (a new split) and cap_again (the same task file and arguments as
    cap_test under a second name: a new evaluation, cap_test's unchanged). Merged here from
    tests/e2e/test_eval_only.py::test_adding_a_task_evaluates_only_what_is_new (eval-only runs)."""
    from cruijff_kit.state.artifacts import eval_fingerprint

    fin = mutable_experiment
    exp = fin.exp
    runs = _eval_runs(exp)
    before = fin.ledger()
    logs_before = {run: {p: p.stat().st_mtime_ns for p in _logs(exp / run)} for run in runs}
    fps_before = {run: {t: eval_fingerprint(exp / run / "eval" / f"{stem}.slurm", t) for t in TASKS}
                  for run, stem in runs.items()}
    summary = exp / "experiment_summary.md"
    text = summary.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| cap_prompt |"))
    test_row = next(line for line in text.splitlines() if line.startswith("| cap_test |"))
    added = (f"| cap_train | {TASK} | {EVAL_EPOCH} | train | - |\n"
             + test_row.replace("| cap_test |", "| cap_again |"))
    summary.write_text(text.replace(row, row + "\n" + added))
    fin.ck("scaffold", exp)
    for run, stem in runs.items():  # the three finished tasks are still the same evaluations
        assert {t: eval_fingerprint(exp / run / "eval" / f"{stem}.slurm", t) for t in TASKS} == fps_before[run]
    report = json.loads(fin.ck("run", exp, "--executor", "local", "--max-parallel", "2", "--poll", "0.3",
                                    "--json").stdout)
    assert report["ok"], report
    after = fin.ledger()
    assert set(after) == set(before)  # the same jobs: one per checkpoint
    assert all(j["state"] == "COMPLETED" for j in after.values()), after
    ft = [k for k in before if k.endswith("/finetune")]
    assert len(ft) == len(FINETUNED)
    for key in ft:  # training was not redone
        assert after[key]["job_id"] == before[key]["job_id"] and len(after[key]["attempts"]) == 1
    resubmitted = {k for k in after if after[k]["job_id"] != before[k]["job_id"]}
    assert resubmitted == {f"{run}/eval/{stem}" for run, stem in runs.items()}
    assert set(report["submitted"]) == {after[k]["job_id"] for k in resubmitted}
    for run, stem in runs.items():
        script = exp / run / "eval" / f"{stem}.slurm"
        logs = _logs(exp / run)
        old = logs_before[run]
        assert {p: p.stat().st_mtime_ns for p in old} == old  # finished logs untouched
        new = {v["meta"]["ck_task"]: v for p, v in logs.items() if p not in old}
        assert sorted(new) == ["cap_again", "cap_train"] and len(logs) == len(old) + 2  # only the new tasks ran
        for task, v in new.items():
            assert v["status"] == "success"
            assert v["meta"]["ck_eval"] == eval_fingerprint(script, task)
        assert new["cap_train"]["task_args"]["split"] == "train"
        assert new["cap_again"]["task_args"]["split"] == "test"
        assert new["cap_again"]["meta"]["ck_eval"] != fps_before[run]["cap_test"]  # its own evaluation
        out = _job_output(exp, run, after[f"{run}/eval/{stem}"]["job_id"])
        assert [line for line in out.splitlines() if line.startswith("ck: task ")] == [
            "ck: task cap_train (1/2)", "ck: task cap_again (2/2)"]
        assert out.count(LOAD_LINE) == 1
    # a third `ck run` finds everything done
    again = json.loads(fin.ck("run", exp, "--executor", "local", "--poll", "0.3", "--json").stdout)
    assert again["submitted"] == [] and again["ok"]
