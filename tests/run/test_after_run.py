"""`ck run --runs GLOB / --analyze / --notify CMD` (run/after_run.py) with the local executor."""
from __future__ import annotations

import json
import shlex

from cruijff_kit.cli import main
from cruijff_kit.executors.local import LocalExecutor
from cruijff_kit.run.supervisor import supervisor_argv

from .helpers import FakeRun, make_experiment, starts


def ck_run(exp, *args, capsys=None) -> int:
    return main(["run", str(exp), "--executor", "local", "--poll", "0.1", "--max-parallel", "2", *args])


def test_runs_glob_selects_run_directories_also_for_dry_run(tmp_path, capsys):
    exp = make_experiment(tmp_path, [FakeRun("rank8_a"), FakeRun("rank8_b"), FakeRun("rank16_a")])
    assert ck_run(exp, "--runs", "rank8_*", "--dry-run", "--json") == 0
    dry = json.loads(capsys.readouterr().out)
    assert sorted({j["run"] for j in dry["jobs"]}) == ["rank8_a", "rank8_b"]
    assert ck_run(exp, "--runs", "rank8_*", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["jobs"]) == 4 and report["ok"]
    assert {k.split("/")[0] for _, k, _, _ in starts(exp)} == {"rank8_a", "rank8_b"}
    summary = (exp / "experiment_summary.md").read_text()
    assert "| rank16_a | finetune |" in summary  # the status table still lists every run
    assert ck_run(exp, "--runs", "nope*") == 2
    assert "matches no run directory" in capsys.readouterr().err


def test_notify_gets_status_json_on_stdin_and_analyze_is_logged(tmp_path, capsys):
    exp = make_experiment(tmp_path, [FakeRun("good"), FakeRun("bad", rc=1)])
    got = tmp_path / "notified.json"
    cmd = f"cat > {shlex.quote(str(got))}; echo \"ok=$CK_RUN_OK\" >> {shlex.quote(str(tmp_path / 'env.txt'))}"
    assert ck_run(exp, "--notify", cmd, "--analyze") == 1  # bad's training failed
    capsys.readouterr()
    status = json.loads(got.read_text())
    states = {j["key"]: j["state"] for j in status["jobs"]}
    assert states["good/finetune"] == "COMPLETED" and states["bad/finetune"] == "FAILED"
    assert (tmp_path / "env.txt").read_text() == "ok=0\n"
    log = (exp / "run-experiment.log").read_text()
    assert "NOTIFY: Notification command" in log and "Result: exit 0" in log
    assert "ANALYZE: Automatic analysis" in log


def test_detached_supervisor_gets_the_same_flags(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("a")])
    argv = supervisor_argv(exp, LocalExecutor(exp, gpus=[]), only=None, poll_s=5, retry_failed=False,
                           runs="a*", analyze=True, notify="mail -s done me")
    assert argv[argv.index("--runs") + 1] == "a*" and "--analyze" in argv
    assert argv[argv.index("--notify") + 1] == "mail -s done me"
