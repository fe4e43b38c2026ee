"""run_experiment with the local executor on synthetic experiments: chaining, failures, limits,
resume, refusals, recovery, ledger validity."""
from __future__ import annotations

import json
import threading

import pytest

from cruijff_kit.errors import CkError
from cruijff_kit.executors.core import Executor, JobInfo, JobState
from cruijff_kit.executors.local import LocalExecutor
from cruijff_kit.state.ledger import Ledger, monitor_lock
from cruijff_kit.run.orchestrator import run_experiment
from cruijff_kit.run.plan import plan_experiment

from .helpers import POLL, FakeRun, by_key, launches, make_experiment, run, starts, write_weights

def test_each_eval_chains_to_its_own_training_not_the_slowest(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("fast", sleep=0.1), FakeRun("slow", sleep=2.0)])
    report = run(exp)
    assert all(j.state == "COMPLETED" for j in report.jobs), report.to_dict()
    ev = {k: t for kind, k, _, t in launches(exp) if kind == "start"}
    end = {k: t for kind, k, _, t in launches(exp) if kind == "end"}
    assert ev["fast/eval/cap_epoch0"] < end["slow/finetune"]  # no barrier behind the slow run
    assert ev["fast/eval/cap_epoch0"] > end["fast/finetune"]  # but after its own training
    assert ev["slow/eval/cap_epoch0"] > end["slow/finetune"]


def test_failed_training_skips_its_eval_and_the_rest_finish(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("good"), FakeRun("bad", rc=1), FakeRun("base", control=True)])
    lines: list[str] = []
    report = run(exp, lines)
    jobs = by_key(report)
    assert jobs["bad/finetune"].state == "FAILED"
    assert jobs["bad/eval/cap_epoch0"].note.startswith("skipped: training failed")
    assert not starts(exp, "bad/eval/cap_epoch0")  # never ran
    assert jobs["good/eval/cap_epoch0"].state == "COMPLETED"
    assert jobs["base/eval/cap_base"].state == "COMPLETED"
    out = "\n".join(lines)
    assert "RuntimeError: fake training failure" in out  # the log tail of the failure is shown
    summary = (exp / "experiment_summary.md").read_text()
    assert "| bad | eval cap epoch 0 | local-" in summary and "skipped: training failed" in summary
    assert summary.rstrip().endswith("keep me")  # the rest of the plan is untouched
    tune_log = (exp / "run-torchtune.log").read_text()
    assert "JOB_FAILED: bad/finetune" in tune_log and "Result: job local-" in tune_log
    assert "SKIP_EVAL: bad/eval/cap_epoch0" in (exp / "run-inspect.log").read_text()
    assert report.failed and not report.refused


def test_max_parallel_bounds_concurrency(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun(f"r{i}", sleep=0.4, tasks=()) for i in range(4)])
    report = run(exp, max_parallel=2)
    assert len(report.jobs) == 4 and all(j.state == "COMPLETED" for j in report.jobs)
    level = peak = 0
    for kind, *_ in sorted(launches(exp), key=lambda x: x[3]):
        level += 1 if kind == "start" else -1
        peak = max(peak, level)
    assert peak == 2


def test_second_run_on_a_finished_experiment_submits_nothing(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("a"), FakeRun("ctl", control=True)])
    first = run(exp)
    assert len(first.submitted) == 3
    n = len(starts(exp))
    again = run(exp)
    assert again.submitted == [] and len(starts(exp)) == n
    assert all(j.action == "done" for j in again.jobs)


def test_artifacts_without_ledger_are_recorded_found_on_disk(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("a")])
    run(exp)
    (exp / ".ck/ledger.json").unlink()
    report = run(exp)
    assert report.submitted == []
    entry = Ledger(exp).entry("a/finetune")
    assert entry["state"] == "COMPLETED" and entry["note"] == "found on disk"


def test_only_inspect_refuses_runs_without_checkpoint_and_runs_the_others(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("trained"), FakeRun("untrained"), FakeRun("ctl", control=True)])
    run(exp, only="torchtune")
    assert not starts(exp, "trained/eval/cap_epoch0")  # --only torchtune ran no evaluation
    # forget one run's training
    out = tmp_path / "outputs/ck-out-untrained/epoch_0"
    for f in out.iterdir():
        f.unlink()
    out.rmdir()
    report = run(exp, only="inspect")
    assert report.refused == ["untrained"]
    jobs = by_key(report)
    assert "no checkpoint" in jobs["untrained/eval/cap_epoch0"].note
    assert jobs["trained/eval/cap_epoch0"].state == "COMPLETED"
    assert jobs["ctl/eval/cap_base"].state == "COMPLETED"
    assert not starts(exp, "untrained/eval/cap_epoch0")
    assert all(j.kind == "eval" for j in report.jobs)


def test_only_inspect_with_no_checkpoint_anywhere_is_an_error(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("a"), FakeRun("b")])
    with pytest.raises(CkError, match="no checkpoint for run.*a, b") as err:
        run(exp, only="inspect")
    assert err.value.exit_code == 2
    assert starts(exp) == []


def test_second_monitor_refuses_naming_the_holder(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("a")])
    with monitor_lock(exp):
        with pytest.raises(CkError, match=r"already monitoring.*pid \d+"):
            run(exp)
    assert starts(exp) == []


def test_oom_halves_batch_and_doubles_accumulation_until_it_fits(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("big", batch_size=8, oom_until_batch=2)])
    lines: list[str] = []
    report = run(exp, lines)
    jobs = by_key(report)
    assert jobs["big/finetune"].state == "COMPLETED" and jobs["big/eval/cap_epoch0"].state == "COMPLETED"
    attempts = Ledger(exp).entry("big/finetune")["attempts"]
    assert [a["state"] for a in attempts] == ["OUT_OF_MEMORY", "OUT_OF_MEMORY", "COMPLETED"]
    assert attempts[1]["overrides"] == {"batch_size": "4", "gradient_accumulation_steps": "2"}
    assert attempts[2]["overrides"] == {"batch_size": "2", "gradient_accumulation_steps": "4"}
    # the overrides really reached the script through CK_TUNE_OVERRIDES
    seen = [line for line in (tmp_path / "launches.txt").read_text().splitlines() if "big/finetune" in line and line.startswith("start")]
    assert seen[-1].endswith("batch_size=2 gradient_accumulation_steps=4")
    # the evaluation ran once, after the attempt that fitted
    assert len(starts(exp, "big/eval/cap_epoch0")) == 1
    assert "RECOVERY: big/finetune: resubmitting after OUT_OF_MEMORY" in (exp / "run-experiment.log").read_text()


def test_oom_gives_up_after_three_retries(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("huge", batch_size=32, oom_until_batch=0)])
    report = run(exp)
    jobs = by_key(report)
    assert jobs["huge/finetune"].state == "OUT_OF_MEMORY"
    assert len(starts(exp, "huge/finetune")) == 4  # first try + 3 retries
    assert jobs["huge/eval/cap_epoch0"].note.startswith("skipped: training failed")
    assert "giving up after 3" in (exp / "run-experiment.log").read_text()


class ScriptedExecutor(Executor):
    """Reports a scripted state sequence per submission; records what was submitted."""

    name = "local"  # the ledger's executor name for these tests

    def __init__(self, outcomes: dict[str, list[JobState]]):
        self.outcomes = outcomes
        self.submits: list[tuple[str, str, dict, str | None]] = []
        self.polls = 0

    def submit(self, spec, after=None):
        jid = f"fake-{len(self.submits) + 1}"
        self.submits.append((jid, spec.key, dict(spec.env), after))
        return jid

    def poll(self, job_ids):
        self.polls += 1
        out = {}
        for jid in job_ids:
            key = next(k for j, k, _, _ in self.submits if j == jid)
            nth = sum(1 for j, k, _, _ in self.submits if k == key and int(j.split("-")[1]) <= int(jid.split("-")[1]))
            seq = self.outcomes.get(key, [JobState.COMPLETED])
            out[jid] = JobInfo(jid, seq[min(nth, len(seq)) - 1])
        return out

    def cancel(self, job_ids):
        pass

    @classmethod
    def affinity(cls):
        return -1

    def settings(self):
        return {}

    def cli_args(self):
        return []

    def submit_argv(self, spec, after=None):
        return ["true", spec.key]

    def peek(self, job_ids):
        return {j: JobInfo(j, JobState.UNKNOWN) for j in job_ids}

    def find_tagged(self, tags, since=None):
        return {t: [] for t in tags}  # these tests never crash mid-submit


def test_timeout_resubmits_resuming_from_the_epoch_checkpoint(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("t", epochs=2)])
    ckpt = tmp_path / "outputs/ck-out-t/epoch_0"
    ckpt.mkdir(parents=True)
    write_weights(ckpt / "model.safetensors")  # a complete epoch-0 checkpoint to resume from
    ex = ScriptedExecutor({"t/finetune": [JobState.TIMEOUT, JobState.COMPLETED]})
    report = run_experiment(exp, ex, poll_s=0, out=lambda _l: None)
    ft = [s for s in ex.submits if s[1] == "t/finetune"]
    assert len(ft) == 2 and ft[1][2] == {"CK_TUNE_OVERRIDES": "resume_from_checkpoint=True"}
    evals = [s for s in ex.submits if s[1].startswith("t/eval")]
    # first chained to the timed-out job, then re-pointed at the resumed one
    assert [s[3] for s in evals] == [ft[0][0], ft[0][0], ft[1][0], ft[1][0]]
    old_eval = Ledger(exp).entry("t/eval/cap_epoch0")["attempts"][0]
    assert old_eval["state"] == "CANCELLED" and "superseded" in old_eval["reason"]
    assert by_key(report)["t/finetune"].state == "COMPLETED"
    # one poll per cycle, whatever the number of jobs
    assert ex.polls <= 4


def test_failed_jobs_are_resubmitted_only_with_retry_failed(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("flaky", rc=1)])
    run(exp)
    again = run(exp)
    assert again.submitted == [] and "--retry-failed" in by_key(again)["flaky/finetune"].note
    # fix the script, then retry
    ft = exp / "flaky/finetune.slurm"
    ft.write_text(ft.read_text().replace("exit 1\n", "true\n", 1))
    retried = run(exp, retry_failed=True)
    jobs = by_key(retried)
    assert jobs["flaky/finetune"].state == "COMPLETED" and jobs["flaky/eval/cap_epoch0"].state == "COMPLETED"
    assert len(Ledger(exp).entry("flaky/finetune")["attempts"]) == 2


def test_ledger_is_valid_json_at_every_moment(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun(f"r{i}", sleep=0.2) for i in range(3)])
    ledger = exp / ".ck/ledger.json"
    bad: list[str] = []
    reads = [0]
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                text = ledger.read_text()
            except FileNotFoundError:
                continue
            reads[0] += 1
            try:
                json.loads(text)
            except ValueError:
                bad.append(text)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        run(exp)
    finally:
        stop.set()
        t.join()
    assert reads[0] > 10 and bad == []
    data = json.loads(ledger.read_text())
    assert all(e["job_id"].startswith("local-") for e in data["jobs"].values())


def test_dry_run_changes_nothing(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("a")])
    report = run(exp, dry_run=True)
    assert report.submitted == [] and {j.action for j in report.jobs} == {"submit"}
    assert not (exp / ".ck/ledger.json").exists() and starts(exp) == []


def test_paths_escaping_the_experiment_are_rejected(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("a")])
    outside = tmp_path / "elsewhere"
    (outside / "eval").mkdir(parents=True)
    (outside / "finetune.slurm").write_text("#!/bin/bash\n")
    (exp / "sneaky").symlink_to(outside)
    with pytest.raises(CkError, match="outside the experiment"):
        plan_experiment(exp)
    (exp / "sneaky").unlink()
    (exp / "a" / "eval" / "x_base.slurm").symlink_to(outside / "finetune.slurm")
    with pytest.raises(CkError, match="outside the experiment"):
        plan_experiment(exp)
    (exp / "a" / "eval" / "x_base.slurm").unlink()
    bad = exp / "bad name;rm"
    (bad / "eval").mkdir(parents=True)
    (bad / "eval" / "t_base.slurm").write_text("#!/bin/bash\n")
    with pytest.raises(CkError, match="not allowed"):
        plan_experiment(exp)


def test_eval_that_exits_0_without_a_log_is_not_a_result(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("a")])
    ev = exp / "a/eval/cap_epoch0.slurm"
    ev.write_text(ev.read_text().replace("cp ", "true ", 1))
    report = run(exp)
    job = by_key(report)["a/eval/cap_epoch0"]
    assert job.state == "COMPLETED" and not job.ok and "no successful .eval log" in job.note
    assert report.failed == [job]


def test_live_jobs_of_another_executor_are_not_silently_abandoned(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("a")])
    Ledger(exp).record_submit("a/finetune", kind="finetune", run="a", executor="slurm", job_id="4242")
    with pytest.raises(CkError, match="--executor slurm"):
        run(exp)


def test_interrupted_monitor_leaves_jobs_running_and_resumes(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("a", sleep=1.0)])

    def interrupt(_s):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_experiment(exp, LocalExecutor(exp, gpus=[]), poll_s=POLL, out=lambda _l: None, sleep=interrupt)
    assert "MONITOR_STOPPED" in (exp / "run-experiment.log").read_text()
    assert Ledger(exp).entry("a/finetune")["state"] == "RUNNING"
    report = run(exp)
    assert report.submitted == []  # both were submitted before the interrupt: re-attached
    assert all(j.ok for j in report.jobs)
    assert [x[1] for x in starts(exp)] == ["a/finetune", "a/eval/cap_epoch0"]
