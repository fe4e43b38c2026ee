"""One evaluation job per checkpoint, one model load, for real on the tiny model (real torchtune,
real inspect-ai, local executor).

Three tasks (the capitalization task on its test split, its validation split, and the test split
with a system prompt) are evaluated on a fine-tuned run's epoch_0: one script
and one job per checkpoint, three logs each with their own task and fingerprint, and the job's
output shows the weights loaded once. A fourth task added to the finished experiment is the only
thing the next `ck run` evaluates: the same job runs again with just that task.
"""
import json
import sys
from pathlib import Path

import pytest

from tests.e2e.cli import run_ck

ROOT = Path(__file__).resolve().parents[2]
TASK = ROOT / "tools/cruijff_kit/blueprints/capitalization/inspect_task.py"
TASKS = ("cap_test", "cap_val", "cap_prompt")
LOAD_LINE = "ck-hf: loading weights from "
pytestmark = pytest.mark.slow


def ck(*args, env=None, check=True, timeout=600):
    return run_ck(*args, env=env, check=check, timeout=timeout)


SPEC = """name: onepass
models: {{tiny: {model}}}
dataset: {data}
grid: {{lora_rank: [4]}}
epochs: 1
gpus: 0
controls: false
config: {{Max steps per epoch: 2, Eval max tokens: 4, Warmup steps: 0}}
tasks:
  - {{task: cap_test, script: {task}, split: test}}
  - {{task: cap_val, script: {task}, split: validation}}
  - {{task: cap_prompt, script: {task}, split: test, system_prompt: Capitalize the word.}}
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished experiment: one fine-tuned run (1 epoch), three tasks (control and eval-only runs:
    base.slurm, the same script; tests/e2e/test_eval_only.py runs those)."""
    from cruijff_kit.blueprints.capitalization.generate import generate
    from cruijff_kit.tiny_model import make_tiny_model

    root = tmp_path_factory.mktemp("onepass")
    model = make_tiny_model(root / "model")
    data = generate(root / "data.json", n=40)
    (root / "claude.local.md").write_text(f"- venv: {sys.prefix}\n")
    env = {"CK_LOCAL_CONFIG": str(root / "claude.local.md"), "CK_EXECUTOR": "local"}
    (root / "spec.yaml").write_text(SPEC.format(model=model, data=data, task=TASK))
    exp = root / "exp"
    ck("design", exp, "--spec", root / "spec.yaml", env=env)
    ck("scaffold", exp, env=env)
    first = json.loads(ck("run", exp, "--executor", "local", "--poll", "0.3", "--json", env=env).stdout)
    return exp, env, first


def _ledger(exp: Path) -> dict:
    return json.loads((exp / ".ck" / "ledger.json").read_text())["jobs"]


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
    """run directory -> its one eval script's stem (epoch0 / base)."""
    return {d.name: s.stem for d in exp.iterdir() if (d / "eval").is_dir() for s in (d / "eval").glob("*.slurm")}


def test_one_script_per_checkpoint_lists_every_task(finished):
    from cruijff_kit.state.artifacts import script_tasks

    exp, _, _ = finished
    scripts = {d.name: sorted(p.name for p in (d / "eval").glob("*.slurm"))
               for d in exp.iterdir() if (d / "eval").is_dir()}
    assert sorted(scripts.values()) == [["epoch0.slurm"]], scripts
    for run, stem in _eval_runs(exp).items():
        lines = script_tasks(exp / run / "eval" / f"{stem}.slurm")
        assert [t.name for t in lines] == list(TASKS)
        splits = [json.loads(t.args_json)["split"] for t in lines]
        assert splits == ["test", "validation", "test"]


def test_one_job_per_checkpoint_three_logs_one_model_load(finished):
    from cruijff_kit.state.artifacts import eval_fingerprint

    exp, _, first = finished
    assert first["ok"], first
    jobs = _ledger(exp)
    evals = {k: j for k, j in jobs.items() if "/eval/" in k}
    runs = _eval_runs(exp)
    assert set(evals) == {f"{run}/eval/{stem}" for run, stem in runs.items()}  # 1 job per checkpoint, not 3
    assert len(evals) == 1 and all(j["state"] == "COMPLETED" for j in jobs.values()), jobs
    for run, stem in runs.items():
        key, script = f"{run}/eval/{stem}", exp / run / "eval" / f"{stem}.slurm"
        logs = _logs(exp / run)
        assert len(logs) == 3 and all(v["status"] == "success" for v in logs.values()), logs
        by_task = {v["meta"]["ck_task"]: v for v in logs.values()}
        assert set(by_task) == set(TASKS)
        for task, v in by_task.items():
            assert v["meta"]["ck_job"] == key
            assert v["meta"]["ck_eval"] == eval_fingerprint(script, task)
            assert v["meta"]["ck_epoch"] == ("base" if stem == "base" else "0")
        assert by_task["cap_val"]["task_args"]["split"] == "validation"
        assert by_task["cap_prompt"]["task_args"]["system_prompt"] == "Capitalize the word."
        assert len({v["meta"]["ck_eval"] for v in logs.values()}) == 3  # each task its own fingerprint
        out = _job_output(exp, run, evals[key]["job_id"])
        assert out.count(LOAD_LINE) == 1, out[-3000:]  # the model was loaded once for the three tasks
        assert [line for line in out.splitlines() if line.startswith("ck: task ")] == [
            f"ck: task {t} ({i + 1}/3)" for i, t in enumerate(TASKS)]


def test_adding_a_task_evaluates_only_the_new_task(finished):
    from cruijff_kit.state.artifacts import eval_fingerprint

    exp, env, _ = finished
    runs = _eval_runs(exp)
    before = _ledger(exp)
    logs_before = {run: {p: p.stat().st_mtime_ns for p in _logs(exp / run)} for run in runs}
    fps_before = {run: {t: eval_fingerprint(exp / run / "eval" / f"{stem}.slurm", t) for t in TASKS}
                  for run, stem in runs.items()}
    summary = exp / "experiment_summary.md"
    text = summary.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| cap_prompt |"))
    summary.write_text(text.replace(row, row + f"\n| cap_train | {TASK} | 0 | train | - |"))
    ck("scaffold", exp, env=env)
    for run, stem in runs.items():  # the three finished tasks are still the same evaluations
        assert {t: eval_fingerprint(exp / run / "eval" / f"{stem}.slurm", t) for t in TASKS} == fps_before[run]
    report = json.loads(ck("run", exp, "--executor", "local", "--poll", "0.3", "--json", env=env).stdout)
    assert report["ok"], report
    after = _ledger(exp)
    assert set(after) == set(before)  # the same jobs: one per checkpoint
    ft = [k for k in before if k.endswith("/finetune")]
    for key in ft:  # training was not redone
        assert after[key]["job_id"] == before[key]["job_id"] and len(after[key]["attempts"]) == 1
    resubmitted = {k for k in after if after[k]["job_id"] != before[k]["job_id"]}
    assert resubmitted == {f"{run}/eval/{stem}" for run, stem in runs.items()}
    assert set(report["submitted"]) == {after[k]["job_id"] for k in resubmitted}
    for run, stem in runs.items():
        logs = _logs(exp / run)
        old = logs_before[run]
        assert {p: p.stat().st_mtime_ns for p in old} == old  # finished logs untouched
        new = {p: v for p, v in logs.items() if p not in old}
        assert [v["meta"]["ck_task"] for v in new.values()] == ["cap_train"]  # only the new task ran
        [v] = new.values()
        assert v["status"] == "success" and v["task_args"]["split"] == "train"
        assert v["meta"]["ck_eval"] == eval_fingerprint(exp / run / "eval" / f"{stem}.slurm", "cap_train")
        out = _job_output(exp, run, after[f"{run}/eval/{stem}"]["job_id"])
        assert [line for line in out.splitlines() if line.startswith("ck: task ")] == ["ck: task cap_train (1/1)"]
        assert out.count(LOAD_LINE) == 1
    # a third `ck run` finds everything done
    again = json.loads(ck("run", exp, "--executor", "local", "--poll", "0.3", "--json", env=env).stdout)
    assert again["submitted"] == [] and again["ok"]
