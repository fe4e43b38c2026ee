"""Submission limits on the real cluster (scripts/local-slurm: QOS cklimit3, MaxSubmitJobsPerUser=3).

A 2-run experiment (tiny model, real torchtune + inspect-ai on CPU), 2 evaluations per run
(epochs 0 and 1): 6 jobs, twice the limit, every job submitted under SBATCH_QOS=cklimit3: ck
learns the limit from sacctmgr, never has more than 3 jobs submitted-but-unfinished (checked from sacct's own submit /
end times, not from ck's records), chains each evaluation after its own training, survives a
kill -9 of its detached supervisor mid-way, and the next `ck run` finishes with nothing lost and
nothing submitted twice. `ck status` then shows each job's measured resources (sacct MaxRSS,
elapsed, torchtune's tokens/s).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from ..slurm_cluster import TEST_QOS
from .pipeline import TASK, ck, eval_status, ledger

pytestmark = pytest.mark.slurm
JOBS = 6  # 2 fine-tunes + 2 x 2 evaluations, 3 at a time at most
BUDGET_S = 1500  # the whole test (~4 min on a quiet 2-core node); a stuck queue fails, never hangs CI


def sacct_times(job_ids) -> dict[str, dict]:
    p = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobID,State,Submit,Start,End",
                        "-j", ",".join(job_ids)], capture_output=True, text=True, check=True, timeout=30)
    rows = {}
    for line in p.stdout.splitlines():
        job_id, state, submit, start, end = line.split("|")
        rows[job_id] = {"state": state.split()[0], "submit": submit, "start": start, "end": end}
    return rows


def most_at_once(rows: dict[str, dict]) -> int:
    """Largest number of jobs submitted and not yet ended at any instant. A job ending in the same
    second as another's submission counts as ended first (ck submits only after seeing it end)."""
    events = sorted([(r["submit"], 1) for r in rows.values()] + [(r["end"], -1) for r in rows.values()],
                    key=lambda e: (e[0], e[1]))
    level = peak = 0
    for _, d in events:
        level += d
        peak = max(peak, level)
    return peak


def wait_until(pred, budget: float, what: str):
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(1)
    raise AssertionError(f"timed out after {budget:.0f} s waiting for {what}")


def test_qos_limit_three_kill_nine_and_resume(slurm_cluster, inputs):
    t0 = time.monotonic()
    exp = inputs["base"] / "cap_limit"
    ck("design", exp, "--model", f"tiny={inputs['base'] / 'model'}", "--dataset", inputs["base"] / "data.json",
       "--ranks", "4,8", "--lrs", "1e-3", "--epochs", "2", "--task", f"capitalization={TASK}@0,1",
       "--gpus", "0", "--no-control", "--set", "Max steps per epoch=2", "--set", "Eval max tokens=4",
       env=inputs["env"])
    ck("scaffold", exp, env=inputs["env"])
    env = {**inputs["env"], "SBATCH_QOS": TEST_QOS}
    scripts = sorted(p.relative_to(exp).as_posix() for p in exp.rglob("*.slurm"))
    assert len(scripts) == JOBS, scripts  # 2 fine-tunes + 2 x 2 evaluations

    dry = ck("run", exp, "--executor", "slurm", "--dry-run", "--json", env=env)
    actions = [j["action"] for j in json.loads(dry.stdout)["jobs"]]
    assert actions.count("submit") == 3 and actions.count("queue") == JOBS - 3, actions
    assert "MaxSubmitJobsPerUser=3" in dry.stderr

    r = ck("run", exp, "--executor", "slurm", "--detach", "--poll", "1", env=env)
    pid = int((exp / ".ck" / "supervisor.pid").read_text())
    # Kill it once some jobs have finished and others still wait in the queue.
    def midway():
        jobs = ledger(exp) if (exp / ".ck" / "ledger.json").exists() else {}
        states = [j["state"] for j in jobs.values()]
        return states.count("COMPLETED") >= 2 and "QUEUED" in states
    wait_until(midway, BUDGET_S / 2, "2 completed jobs while others are queued")
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    before = {k: j["job_id"] for k, j in ledger(exp).items() if j["job_id"]}
    queued = [k for k, j in ledger(exp).items() if j["state"] == "QUEUED"]
    # The rest had no job id when the monitor died (being decided, or an exactly-once intent that
    # the next run reconciles by its tag): the checks after the resume say none was lost or doubled.
    assert queued and len(before) >= 2 and len(before) + len(queued) <= JOBS, ledger(exp)

    left = BUDGET_S - (time.monotonic() - t0)
    r = ck("run", exp, "--executor", "slurm", "--poll", "1", "--json", env=env, check=False, timeout=left)
    report = json.loads(r.stdout)
    assert report.get("ok"), f"{json.dumps(report, indent=1)}\n{r.stderr[-3000:]}"
    jobs = ledger(exp)
    assert len(jobs) == JOBS and all(j["state"] == "COMPLETED" for j in jobs.values()), jobs
    # nothing lost, nothing twice: ids from before the kill unchanged, one attempt per job
    assert all(jobs[k]["job_id"] == jid for k, jid in before.items())
    assert all(len(j["attempts"]) == 1 for j in jobs.values()), jobs
    ids = [j["job_id"] for j in jobs.values()]
    assert len(set(ids)) == JOBS

    truth = sacct_times(ids)
    assert {r["state"] for r in truth.values()} == {"COMPLETED"}, truth
    assert most_at_once(truth) <= 3, truth
    runs = sorted(k.split("/")[0] for k in jobs if k.endswith("/finetune"))
    assert len(runs) == 2, runs
    for run in runs:
        train = truth[jobs[f"{run}/finetune"]["job_id"]]
        for epoch in (0, 1):
            ev = truth[jobs[f"{run}/eval/epoch{epoch}"]["job_id"]]
            assert ev["start"] >= train["end"], (run, epoch, train, ev)
            ckpt = exp / run / "checkpoints" / f"epoch_{epoch}"
            assert (ckpt / "config.json").is_file() and any(ckpt.glob("*.safetensors"))
        logs = sorted((exp / run / "eval" / "logs").glob("*.eval"))
        assert len(logs) == 2 and all(eval_status(p) == "success" for p in logs), logs
    # measured resources of every job, as `ck status` shows them (sacct records usage asynchronously)
    def measured():
        st = json.loads(ck("status", exp, "--json", env=env).stdout)
        return st if all((j["resources"] or {}).get("max_rss_bytes") for j in st["jobs"]) else None
    st = wait_until(measured, 60, "MaxRSS of every job in sacct")
    for j in st["jobs"]:
        r = j["resources"]
        assert 50 * 1024 ** 2 < r["max_rss_bytes"] < 3 * 1024 ** 3 and r["elapsed_s"] > 0, j
        assert (r["tokens_per_s"] or 0) > 0 if j["kind"] == "finetune" else r["tokens_per_s"] is None, j
    table = ck("status", exp, env=env).stdout
    assert "RESOURCES" in table and "tok/s" in table and "RSS " in table, table
    elapsed = time.monotonic() - t0
    print(f"\n2 runs x (1 fine-tune + 2 evals) under MaxSubmitJobsPerUser=3: {elapsed:.0f} s")
    assert elapsed < BUDGET_S
