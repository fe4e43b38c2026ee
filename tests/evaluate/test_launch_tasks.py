"""The eval launcher with several tasks, for real (tiny model, real inspect-ai, a subprocess as the
eval script runs it): every task in one process, one model load, one log per task tagged with its
own task, $CK_TASKS choosing the tasks, a failed task not stopping the others but failing the job."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TASK = f"{ROOT / 'tools/cruijff_kit/blueprints/capitalization/inspect_task.py'}@capitalization"
LOAD_LINE = "ck-hf: loading weights from "
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_model):
    """The session's tiny model (tests/conftest.py; evaluation only reads it) and a dataset."""
    from cruijff_kit.blueprints.capitalization.generate import generate

    root = tmp_path_factory.mktemp("launch")
    return tiny_model, generate(root / "data.json", n=40)


def launch(model: Path, logs: Path, tasks: list[tuple[str, dict]], env: dict | None = None):
    argv = [sys.executable, "-m", "cruijff_kit.evaluate.launch", "--model-dir", str(model), "--prompt-format", "chatml"]
    for name, args in tasks:
        argv += ["--task", name, TASK, json.dumps(args)]
    argv += ["--", "--max-tokens", "2", "--log-dir", str(logs), "--display", "plain"]
    full_env = {k: v for k, v in os.environ.items() if k != "CK_TASKS"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, env={**full_env, **(env or {})})


def read_logs(logs: Path) -> list[tuple[str, dict]]:
    from inspect_ai.log import read_eval_log

    out = []
    for p in sorted(logs.glob("*.eval")):
        log = read_eval_log(str(p), header_only=True)
        out.append((log.status, dict(log.eval.metadata or {})))
    return out


def test_every_task_one_load_and_a_failed_task_fails_the_job_after_the_others(tiny, tmp_path):
    model, data = tiny
    logs = tmp_path / "logs"
    r = launch(model, logs, [("first", {"data_path": str(data), "split": "test"}),
                             ("broken", {"data_path": str(data), "split": "no_such_split"}),
                             ("last", {"data_path": str(data), "split": "validation"})])
    out = r.stdout + r.stderr
    assert r.returncode != 0, out[-3000:]
    assert "ck: 1 of 3 task(s) failed: broken" in r.stderr
    assert out.count(LOAD_LINE) == 1, out[-3000:]  # three tasks, the weights loaded once
    done = {m["ck_task"]: m for status, m in read_logs(logs) if status == "success"}
    assert set(done) == {"first", "last"}  # the task after the failed one still ran
    assert "ck_eval" not in done["first"]  # run by hand ($CK_TASKS unset): no fingerprint claimed


def test_ck_tasks_picks_tasks_and_tags_their_fingerprints(tiny, tmp_path):
    model, data = tiny
    logs = tmp_path / "logs"
    tasks = [("a", {"data_path": str(data), "split": "test"}), ("b", {"data_path": str(data), "split": "validation"})]
    r = launch(model, logs, tasks, env={"CK_TASKS": "b=0123abcd"})
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    [(status, meta)] = read_logs(logs)
    assert status == "success" and meta["ck_task"] == "b" and meta["ck_eval"] == "0123abcd"
    r = launch(model, logs, tasks, env={"CK_TASKS": ""})  # set and empty: nothing left to do
    assert r.returncode == 0 and len(read_logs(logs)) == 1 and LOAD_LINE not in r.stderr
    r = launch(model, logs, tasks, env={"CK_TASKS": "c=1"})
    assert r.returncode == 2 and "does not have: c" in r.stderr


def test_the_per_task_form_of_older_scripts_still_evaluates(tiny, tmp_path):
    """Eval scripts scaffolded before one script per checkpoint call `-- eval TASK` with --task-arg."""
    model, data = tiny
    logs = tmp_path / "logs"
    argv = [sys.executable, "-m", "cruijff_kit.evaluate.launch", "--model-dir", str(model), "--prompt-format", "chatml",
            "--task-arg", f"data_path={data}", "--task-arg", "split=validation",
            "--", "eval", TASK, "--max-tokens", "2", "--log-dir", str(logs), "--display", "plain",
            "--metadata", 'ck_task="capitalization"']
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert (r.stdout + r.stderr).count(LOAD_LINE) == 1
    [(status, meta)] = read_logs(logs)
    assert status == "success" and meta["ck_task"] == "capitalization"
