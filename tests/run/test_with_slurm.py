"""The same orchestration through the real SLURM backend (scripts/local-slurm), when a cluster
answers (the `slurm_cluster` fixture starts it, or skips with the reason printed)."""
from __future__ import annotations

import json
import os
import signal

import pytest

from cruijff_kit.cli import main
from cruijff_kit.util import procs
from cruijff_kit.state.ledger import Ledger
from cruijff_kit.run.orchestrator import run_experiment

from .helpers import FakeRun, launches, make_experiment, starts, wait_for
from .helpers import ck

pytestmark = pytest.mark.slurm


@pytest.fixture
def slurm(slurm_cluster):
    from cruijff_kit.executors.slurm import SlurmExecutor

    return SlurmExecutor


def test_chaining_failure_and_second_run_through_sbatch(tmp_path, slurm):
    exp = make_experiment(tmp_path, [FakeRun("fast", sleep=0.3), FakeRun("slow", sleep=2),
                                     FakeRun("bad", rc=1), FakeRun("ctl", control=True)])
    report = run_experiment(exp, slurm(exp), poll_s=0.5, out=lambda _l: None)
    jobs = {j.key: j for j in report.jobs}
    assert jobs["bad/finetune"].state == "FAILED"
    assert jobs["bad/eval/cap_epoch0"].note.startswith("skipped: training failed")
    assert not starts(exp, "bad/eval/cap_epoch0")
    assert all(jobs[k].ok for k in jobs if not k.startswith("bad/"))
    # chained to its own training only (afterok), never to the slowest run; the timing proof of
    # "no barrier" is in test_orchestrator (a shared cluster may delay any job by seconds)
    led = Ledger(exp)
    for run in ("fast", "slow"):
        assert led.entry(f"{run}/eval/cap_epoch0")["attempts"][0]["after"] == led.entry(f"{run}/finetune")["job_id"]
    t = {(kind, k): ts for kind, k, _, ts in launches(exp)}
    assert t[("start", "fast/eval/cap_epoch0")] > t[("end", "fast/finetune")]
    again = run_experiment(exp, slurm(exp), poll_s=0.5, out=lambda _l: None)
    assert again.submitted == []


def test_monitor_killed_mid_run_then_resumed_submits_nothing_twice(tmp_path, slurm, capsys):
    exp = make_experiment(tmp_path, [FakeRun("a", sleep=0.2), FakeRun("b", sleep=4)])
    r = ck("run", str(exp), "--executor", "slurm", "--detach", "--poll", "0.3")
    assert r.returncode == 0, r.stderr
    pid = int((exp / ".ck/supervisor.pid").read_text())
    wait_for(lambda: starts(exp, "b/finetune"), timeout=30)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not procs.is_alive(pid), timeout=5)
    ids_before = {k: e["job_id"] for k, e in Ledger(exp).jobs().items()}
    assert len(ids_before) == 4  # every id was recorded before the kill
    assert main(["run", str(exp), "--executor", "slurm", "--poll", "0.3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["submitted"] == [] and report["ok"]
    assert {k: e["job_id"] for k, e in Ledger(exp).jobs().items()} == ids_before
    keys = [x[1] for x in starts(exp)]
    assert sorted(keys) == sorted(set(keys)) and len(keys) == 4
