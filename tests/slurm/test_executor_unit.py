"""SlurmExecutor's call discipline and failure handling, with a scripted runner instead of SLURM.

The scripted runner stands in for what a one-node cluster cannot show on demand: jobs that
slurmctld has already forgotten (MinJobAge passed, so only sacct knows them), slurmdbd down,
a controller that does not answer. Everything else is tested on the real cluster
(test_cluster.py).
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cruijff_kit.executors.core import JobSpec, JobState, SubmitError
from cruijff_kit.executors.slurm import SchedulerError, SlurmExecutor


class Scripted:
    """Answers squeue/sacct/sbatch/scancel from tables; records every argv."""

    def __init__(self, squeue: dict[str, str] | None = None, sacct: dict[str, str] | None = None,
                 fail: dict[str, tuple[int, str]] | None = None):
        self.squeue, self.sacct, self.fail = squeue or {}, sacct or {}, fail or {}
        self.argvs: list[list[str]] = []
        self.cwds: list[Path | None] = []

    def __call__(self, argv, *, cwd=None, env=None, timeout=None):
        self.argvs.append(list(argv))
        self.cwds.append(cwd)
        cmd = argv[0]
        if cmd in self.fail:
            rc, err = self.fail[cmd]
            return subprocess.CompletedProcess(argv, rc, "", err)
        ids = next((a.split("=", 1)[1].split(",") for a in argv if a.startswith("--jobs=")), [])
        if cmd == "squeue":
            rows = [self.squeue[i] for i in ids if i in self.squeue]
            return subprocess.CompletedProcess(argv, 0, "".join(r + "\n" for r in rows), "")
        if cmd == "sacct":
            rows = [self.sacct[i] for i in ids if i in self.sacct]
            return subprocess.CompletedProcess(argv, 0, "".join(r + "\n" for r in rows), "")
        if cmd == "sbatch":
            return subprocess.CompletedProcess(argv, 0, "42;local\n", "")
        return subprocess.CompletedProcess(argv, 0, "", "")


def sq(j, state, reason="None", code=0):
    return f"{j}|{state}|{reason}|2026-01-01T00:00:00|2026-01-01T00:00:09|{code}|/w/slurm-%j.out|"


def sa(j, state, code="0:0", reason="None"):
    return f"{j}|{state}|{code}|2026-01-01T00:00:00|2026-01-01T00:00:09|{reason}|/w"


def test_one_squeue_one_sacct_per_poll_and_finished_jobs_never_asked_again(tmp_path):
    n = 300
    live = {str(i): sq(i, "RUNNING") for i in range(1, n // 2)}
    old = {str(i): sa(i, "COMPLETED") for i in range(n // 2, n + 1)}  # forgotten by slurmctld
    r = Scripted(squeue=live, sacct=old)
    ex = SlurmExecutor(tmp_path, runner=r)
    ids = [str(i) for i in range(1, n + 1)]
    infos = ex.poll(ids)
    assert ex.calls == {"squeue": 1, "sacct": 1}
    assert infos["1"].state is JobState.RUNNING and infos[str(n)].state is JobState.COMPLETED
    sacct_ids = next(a for a in r.argvs[1] if a.startswith("--jobs=")).split("=")[1].split(",")
    assert sacct_ids == [str(i) for i in range(n // 2, n + 1)]  # only those squeue did not show
    ex.poll(ids)
    assert ex.calls == {"squeue": 2, "sacct": 1}  # the finished half is cached
    squeue_ids = next(a for a in r.argvs[2] if a.startswith("--jobs=")).split("=")[1].split(",")
    assert len(squeue_ids) == n // 2 - 1
    for j in live:
        r.squeue[j] = sq(j, "COMPLETED")
    ex.poll(ids)
    calls = dict(ex.calls)
    assert all(i.state is JobState.COMPLETED for i in ex.poll(ids).values())
    assert dict(ex.calls) == calls  # everything terminal: no scheduler call at all


def test_single_forgotten_id_makes_squeue_fail_then_sacct_answers(tmp_path):
    r = Scripted(sacct={"7": sa(7, "FAILED", "2:0")},
                 fail={"squeue": (1, "slurm_load_jobs error: Invalid job id specified")})
    info = SlurmExecutor(tmp_path, runner=r).poll(["7"])["7"]
    assert info.state is JobState.FAILED and info.exit_code == 2


def test_sacct_down_leaves_jobs_unknown_not_terminal(tmp_path):
    r = Scripted(squeue={"1": sq(1, "RUNNING")},
                 fail={"sacct": (1, "sacct: error: Problem talking to the database: Connection refused")})
    ex = SlurmExecutor(tmp_path, runner=r)
    infos = ex.poll(["1", "2"])
    assert infos["1"].state is JobState.RUNNING
    assert infos["2"].state is JobState.UNKNOWN and not infos["2"].state.terminal
    assert "Problem talking to the database" in infos["2"].reason
    del r.fail["sacct"]
    r.sacct["2"] = sa(2, "COMPLETED")
    assert ex.poll(["2"])["2"].state is JobState.COMPLETED  # asked again, not cached as unknown


def test_squeue_down_raises_scheduler_error_with_hint(tmp_path):
    r = Scripted(fail={"squeue": (1, "squeue: error: Unable to contact slurm controller (connect failure)")})
    with pytest.raises(SchedulerError) as e:
        SlurmExecutor(tmp_path, runner=r).poll(["1"])
    assert "Unable to contact slurm controller" in str(e.value) and "sinfo" in e.value.hint


def test_missing_commands_and_bad_ids(tmp_path):
    def absent(argv, **kw):
        raise FileNotFoundError(argv[0])

    with pytest.raises(SchedulerError, match="squeue is not installed"):
        SlurmExecutor(tmp_path, runner=absent).poll(["1"])
    ex = SlurmExecutor(tmp_path, runner=Scripted())
    assert ex.poll(["x; rm -rf /"])["x; rm -rf /"].state is JobState.UNKNOWN
    assert ex.calls == {}  # junk never reaches a command line


def test_submit_argv_cwd_dependency_and_cluster_suffix(tmp_path):
    # argv shape only; the real submission is tested in test_cluster.py
    run = tmp_path / "run one"
    run.mkdir()
    script = run / "finetune.slurm"
    script.write_text("#!/bin/bash\n#SBATCH --output=slurm-%j.out\ntrue\n")
    r = Scripted()
    ex = SlurmExecutor(tmp_path, runner=r)
    spec = JobSpec(key="k", script=script, kind="finetune", run="run one", sbatch_args=("--mem=2G",))
    assert ex.submit(spec, after="41") == "42"
    assert r.argvs[-1] == ["sbatch", "--parsable", "--dependency=afterok:41", "--kill-on-invalid-dep=yes",
                           "--mem=2G", "finetune.slurm"]
    assert r.cwds[-1] == run
    with pytest.raises(SubmitError, match="not a SLURM job id"):
        ex.submit(spec, after="41 && rm -rf /")
    with pytest.raises(SubmitError, match="does not exist"):
        ex.submit(JobSpec(key="k", script=run / "missing.slurm", kind="eval", run="r"))


def test_cancel_is_one_call_and_ignores_finished_ids(tmp_path):
    r = Scripted(fail={"scancel": (1, "scancel: error: Kill job error on job id 5: Invalid job id specified\n")})
    ex = SlurmExecutor(tmp_path, runner=r)
    ex.cancel(["5", "6", "7"])
    assert ex.calls == {"scancel": 1} and r.argvs[0] == ["scancel", "5", "6", "7"]
    r.fail["scancel"] = (1, "scancel: error: Unable to contact slurm controller")
    with pytest.raises(SchedulerError):
        ex.cancel(["8"])
