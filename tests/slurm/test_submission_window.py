"""Submission window (run/submission_window.py): the pure decisions, then the orchestrator under a
limit with the local executor wrapped as a scheduler that refuses over its cap (as slurmctld does
with QOSMaxSubmitJobPerUserLimit). The real-cluster version is test_limits_on_slurm.py."""
from __future__ import annotations

from pathlib import Path

import pytest

from cruijff_kit.errors import CkError
from cruijff_kit.executors.core import SubmitLimitReached
from cruijff_kit.executors.local import LocalExecutor
from cruijff_kit.executors.slurm.limits import SubmitLimit, parse_assoc, parse_qos, smallest_limit
from cruijff_kit.state.ledger import Ledger
from cruijff_kit.run.orchestrator import run_experiment
from cruijff_kit.run.submission_window import QUEUED, SubmissionWindow, configured_limit

from ..run.helpers import FakeRun, launches, make_experiment


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_window_order_room_dependencies_backoff_and_stagger():
    clock = Clock()
    w = SubmissionWindow(limit=3, source="test", backoff_s=30, stagger_s=2, clock=clock)
    assert not w.holds("a/finetune", None, n_live=2)
    assert w.holds("b/finetune", None, n_live=3)  # full
    for key, dep in [("b/finetune", None), ("a/eval/x", "a/finetune"), ("b/eval/x", "b/finetune")]:
        w.add(key, dep)
    assert w.holds("c/finetune", None, n_live=0)  # never overtakes a queued job
    assert w.due(n_live=3) == []
    assert w.due(n_live=2) == ["b/finetune"]
    # b's evaluation waits while its training is queued; a's (training submitted) may go
    assert w.due(n_live=0) == ["b/finetune", "a/eval/x"]
    w.discard("b/finetune")
    assert w.due(n_live=0) == ["a/eval/x", "b/eval/x"]
    w.refused()
    assert w.room(0) == 0 and w.due(0) == []
    clock.t += 30
    assert w.room(1) == 2
    w.submitted()
    assert w.pause() == 2.0
    clock.t += 1.5
    assert w.pause() == pytest.approx(0.5)
    assert SubmissionWindow().room(10_000) > 10_000 and SubmissionWindow().describe() == "no submission limit known"


def test_limits_from_sacctmgr_rows_pick_the_tightest_for_the_qos_used():
    assoc = parse_assoc("root|||cklimit3,normal|\nlab|25|||normal\n")
    qos = parse_qos("normal||||\ncklimit3|3|||\nbig|100||40|\n")
    assert smallest_limit(assoc, qos, qos_name="cklimit3") == SubmitLimit(3, "QOS cklimit3 MaxSubmitJobsPerUser=3")
    assert smallest_limit(assoc, qos, account="lab").max_submitted == 25
    assert smallest_limit(assoc, qos, account="root") == SubmitLimit(None, "no submit limit in sacctmgr")
    assert smallest_limit(assoc, qos, account="root", qos_name="big").source == "QOS big GrpSubmitJobs=40"


def test_max_submitted_in_claude_local_md(tmp_path, monkeypatch):
    cfg = tmp_path / "claude.local.md"
    cfg.write_text("- slurm_max_submitted: 7\n")
    monkeypatch.setenv("CK_LOCAL_CONFIG", str(cfg))
    assert configured_limit(tmp_path) == 7
    cfg.write_text("- slurm_max_submitted: 0\n")
    with pytest.raises(CkError) as e:
        configured_limit(tmp_path)
    assert e.value.field == "slurm_max_submitted"
    cfg.write_text("x\n- slurm_max_submitted: many\n")
    with pytest.raises(CkError) as e:
        configured_limit(tmp_path)
    assert e.value.line == 2


class CappedScheduler(LocalExecutor):
    """The local executor behind a per-user submit cap: submit() over `cap` unfinished jobs is
    refused with SubmitLimitReached, like sbatch. `reported` is what sacctmgr would say (it may be
    larger than the cap when other jobs of the user take slots)."""

    def __init__(self, exp, cap: int, reported: int | None):
        super().__init__(exp, max_parallel=8, gpus=[])
        self.cap, self.reported = cap, reported
        self.outstanding: set[str] = set()
        self.peak = 0
        self.refusals = 0

    def submission_limit(self, scripts=()):
        return SubmitLimit(self.reported, f"test cap {self.reported}")

    def submit(self, spec, after=None):
        if len(self.outstanding) >= self.cap:
            self.refusals += 1
            raise SubmitLimitReached("sbatch: error: QOSMaxSubmitJobPerUserLimit", file=spec.script)
        job_id = super().submit(spec, after=after)
        self.outstanding.add(job_id)
        self.peak = max(self.peak, len(self.outstanding))
        return job_id

    def poll(self, job_ids):
        infos = super().poll(job_ids)
        self.outstanding -= {j for j, i in infos.items() if i.state.terminal}
        return infos


def _four_runs(tmp_path: Path) -> Path:
    return make_experiment(tmp_path, [FakeRun(f"r{i}", sleep=0.2, tasks=("cap", "upper"), eval_sleep=0.05)
                                      for i in range(4)])


def _check_order(exp: Path) -> None:
    t = {(kind, key): ts for kind, key, _, ts in launches(exp)}
    for i in range(4):
        for task in ("cap", "upper"):
            assert t[("start", f"r{i}/eval/{task}_epoch0")] >= t[("end", f"r{i}/finetune")]
    keys = [k for kind, k, _, _ in launches(exp) if kind == "start"]
    assert sorted(keys) == sorted(set(keys)) and len(keys) == 12  # each job ran exactly once


@pytest.mark.parametrize("limit", [1, 3])
def test_limit_smaller_than_the_experiment_still_finishes_in_order(tmp_path, limit):
    exp = _four_runs(tmp_path)
    ex = CappedScheduler(exp, cap=limit, reported=limit)
    lines: list[str] = []
    report = run_experiment(exp, ex, poll_s=0.05, out=lines.append)
    assert all(j.ok for j in report.jobs), report.to_dict()
    assert ex.peak == limit and ex.refusals == 0  # kept under the limit, never refused
    _check_order(exp)
    assert f"at most {limit} job(s) submitted at once (test cap {limit})" in "\n".join(lines)
    assert all(e["state"] == "COMPLETED" for e in Ledger(exp).jobs().values())
    assert "SUBMISSION_LIMIT" in (exp / "run-experiment.log").read_text()


def test_refusal_for_a_limit_waits_and_retries_instead_of_failing(tmp_path):
    # sacctmgr says 5, but other jobs of the user leave room for 2: sbatch refuses, ck waits
    exp = _four_runs(tmp_path)
    ex = CappedScheduler(exp, cap=2, reported=5)
    report = run_experiment(exp, ex, poll_s=0.05, out=lambda _l: None)
    assert all(j.ok for j in report.jobs), report.to_dict()
    assert ex.refusals > 0 and ex.peak == 2
    _check_order(exp)
    log = (exp / "run-torchtune.log").read_text() + (exp / "run-inspect.log").read_text()
    assert "SUBMIT_FAILED" not in log


def test_dry_run_shows_what_waits(tmp_path):
    exp = _four_runs(tmp_path)
    lines: list[str] = []
    report = run_experiment(exp, CappedScheduler(exp, cap=3, reported=3), dry_run=True, out=lines.append)
    actions = [j.action for j in report.jobs]
    assert actions.count("submit") == 3 and actions.count("queue") == 9
    assert sum("WOULD QUEUE" in ln for ln in lines) == 9
    assert not (exp / ".ck" / "ledger.json").exists()


def test_queued_jobs_are_in_the_ledger_and_resumed_after_the_monitor_dies(tmp_path):
    exp = _four_runs(tmp_path)
    ex = CappedScheduler(exp, cap=3, reported=3)

    class Killed(BaseException):
        pass

    cycles = []

    def sleep(_s):  # the monitor "dies" (like kill -9: no cleanup) after two cycles
        cycles.append(1)
        if len(cycles) == 2:
            raise Killed

    with pytest.raises(Killed):
        run_experiment(exp, ex, poll_s=0.05, out=lambda _l: None, sleep=sleep)
    jobs = Ledger(exp).jobs()
    queued = [k for k, e in jobs.items() if e["state"] == QUEUED]
    assert queued and all(jobs[k]["job_id"] is None for k in queued)
    submitted = {k: e["job_id"] for k, e in jobs.items() if e["job_id"]}
    # a new monitor (same machine: the local jobs keep their ids) picks up where it stopped
    ex2 = CappedScheduler(exp, cap=3, reported=3)
    report = run_experiment(exp, ex2, poll_s=0.05, out=lambda _l: None)
    assert all(j.ok for j in report.jobs), report.to_dict()
    jobs = Ledger(exp).jobs()
    assert all(jobs[k]["job_id"] == jid for k, jid in submitted.items())
    assert all(len(e["attempts"]) == 1 for e in jobs.values())
    _check_order(exp)


def test_stagger_from_claude_local_md(tmp_path, monkeypatch):
    from cruijff_kit.executors.slurm import SlurmExecutor
    from cruijff_kit.run.submission_window import window_for

    cfg = tmp_path / "claude.local.md"
    cfg.write_text("- slurm_submit_stagger: 2\n- slurm_max_submitted: 5\n")
    monkeypatch.setenv("CK_LOCAL_CONFIG", str(cfg))

    class NoAccounting(SlurmExecutor):  # sacctmgr knows no limit here
        def submission_limit(self, scripts=()):
            return SubmitLimit(None, "none")

    w = window_for(NoAccounting(tmp_path), tmp_path, [])
    assert w.stagger_s == 2 and w.limit == 5 and "slurm_max_submitted=5" in w.describe()
    clock = Clock()
    w.clock = clock
    assert w.pause() == 0  # the first submission does not wait
    w.submitted()
    assert w.pause() == 2
    local = window_for(LocalExecutor(tmp_path, gpus=[]), tmp_path, [])  # SLURM settings only
    assert local.stagger_s == 0 and local.limit is None
