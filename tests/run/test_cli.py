"""`ck run` / `ck status` as a user runs them, including a detached supervisor killed with -9."""
from __future__ import annotations

import json
import os
import signal

from cruijff_kit.cli import main
from cruijff_kit.util import procs
from cruijff_kit.state.ledger import Ledger

from .helpers import FakeRun, ck, launches, make_experiment, starts, wait_for


def test_detached_supervisor_killed_mid_run_resumes_without_redoing_anything(tmp_path, capsys):
    exp = make_experiment(tmp_path, [FakeRun("a", sleep=0.2), FakeRun("b", sleep=2.5), FakeRun("c", sleep=0.2)])
    r = ck("run", str(exp), "--executor", "local", "--detach", "--poll", "0.2", "--max-parallel", "1",
           "--gpus", "none")
    assert r.returncode == 0, r.stderr
    assert "supervisor running in the background" in r.stdout
    pid = int((exp / ".ck/supervisor.pid").read_text())
    assert procs.is_alive(pid)
    # wait until a's training finished and b's (slow) training is running
    wait_for(lambda: starts(exp, "b/finetune"), timeout=20)

    # a second monitor refuses while the supervisor lives, naming its pid
    assert main(["run", str(exp), "--executor", "local", "--poll", "0.2"]) == 2
    assert f"pid {pid}" in capsys.readouterr().err

    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not procs.is_alive(pid), timeout=5)
    b_job = Ledger(exp).entry("b/finetune")["job_id"]
    assert Ledger(exp).entry("b/finetune")["state"] == "RUNNING"
    # b keeps running without its supervisor
    assert not [x for x in launches(exp) if x[0] == "end" and x[1] == "b/finetune"]

    # status shows it, submits nothing
    n_before = len(starts(exp))
    assert main(["status", str(exp), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    states = {j["key"]: j["state"] for j in status["jobs"]}
    assert states["b/finetune"] == "RUNNING" and states["a/finetune"] == "COMPLETED"
    assert status["supervisor"]["running"] is False and status["supervisor"]["holder"] is None

    # resume
    assert main(["run", str(exp), "--executor", "local", "--poll", "0.2", "--max-parallel", "1",
                 "--gpus", "none", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["submitted"] == []  # nothing new submitted: all re-attached
    assert len(starts(exp)) >= n_before
    keys = [x[1] for x in starts(exp)]
    assert sorted(keys) == sorted(set(keys)), keys  # nothing ran twice
    assert len(keys) == 6
    assert Ledger(exp).entry("b/finetune")["job_id"] == b_job
    assert {j["action"] for j in report["jobs"]} <= {"reattach", "done"}


def test_only_inspect_exit_2_names_runs_and_runs_the_others(tmp_path, capsys):
    exp = make_experiment(tmp_path, [FakeRun("done"), FakeRun("todo")])
    assert main(["run", str(exp), "--executor", "local", "--only", "torchtune", "--poll", "0.2"]) == 0
    capsys.readouterr()
    for f in (tmp_path / "outputs/ck-out-todo/epoch_0").iterdir():
        f.unlink()
    rc = main(["run", str(exp), "--executor", "local", "--only", "inspect", "--poll", "0.2"])
    err = capsys.readouterr().err
    assert rc == 2 and "todo" in err and "done" not in err.split("run(s)")[1]
    assert starts(exp, "done/eval/cap_epoch0") and not starts(exp, "todo/eval/cap_epoch0")


def test_json_is_one_document_and_progress_goes_to_stderr(tmp_path, capsys):
    exp = make_experiment(tmp_path, [FakeRun("a")])
    assert main(["run", str(exp), "--executor", "local", "--poll", "0.2", "--json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["ok"] and len(doc["jobs"]) == 2 and "SUBMITTED" in captured.err
    events = [json.loads(line) for line in captured.err.splitlines()]  # progress: JSON lines
    assert [e["key"] for e in events if e["type"] == "submitted"] == ["a/finetune", "a/eval/cap_epoch0"]
    assert {"finished", "complete"} <= {e["type"] for e in events}
    assert main(["run", str(exp), "--executor", "local", "--json", "--dry-run"]) == 0
    assert all(j["action"] == "done" for j in json.loads(capsys.readouterr().out)["jobs"])


def test_status_before_any_run_lists_jobs_unsubmitted(tmp_path, capsys):
    exp = make_experiment(tmp_path, [FakeRun("a"), FakeRun("ctl", control=True)])
    assert main(["status", str(exp)]) == 0
    out = capsys.readouterr().out
    assert "not submitted" in out and "eval cap base" in out
    assert starts(exp) == [] and not (exp / ".ck/ledger.json").exists()


def test_bad_arguments_are_clear_errors(tmp_path, capsys):
    exp = make_experiment(tmp_path, [FakeRun("a")])
    assert main(["run", str(exp), "--executor", "local", "--gpus", "zero"]) == 2
    assert "--gpus" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing"), "--executor", "local"]) == 2
    (exp / "experiment_summary.md").unlink()
    assert main(["run", str(exp), "--executor", "local"]) == 2
    assert "experiment_summary.md not found" in capsys.readouterr().err


def test_auto_executor_keeps_the_backend_the_ledger_records(tmp_path, monkeypatch):
    from cruijff_kit.commands.run import _executor_name
    from cruijff_kit.executors import resolve_name
    from cruijff_kit.state.ledger import Ledger

    monkeypatch.setenv("CK_EXECUTOR", "slurm")
    assert resolve_name("auto") == "slurm"
    # new experiment: decided by resolve_name, and the reason says so
    assert _executor_name("auto", tmp_path) == ("slurm", "CK_EXECUTOR=slurm")
    Ledger(tmp_path).record_submit("r/finetune", kind="finetune", run="r", executor="local", job_id="local-1")
    assert _executor_name("auto", tmp_path) == ("local", "the experiment's ledger records local jobs")
    assert _executor_name("slurm", tmp_path)[0] == "slurm"  # an explicit choice always wins
    monkeypatch.setenv("CK_EXECUTOR", "pbs")
    import pytest

    from cruijff_kit.errors import CkError
    with pytest.raises(CkError, match="CK_EXECUTOR"):
        resolve_name("auto")
