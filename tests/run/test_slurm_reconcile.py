"""SlurmExecutor's side of exactly-once, on recorded SLURM 22.05 output (tests/slurm/recorded):
the submission tag becomes the job name, and find_tagged asks squeue/sacct by that name."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cruijff_kit.executors.core import JobSpec, JobState
from cruijff_kit.executors.slurm import SchedulerError, SlurmExecutor

RECORDED = Path(__file__).parent.parent / "slurm" / "recorded"


class ByName:
    """squeue/sacct as SLURM answers them: by --name (job id + name), by --jobs (the recorded
    rows of those ids, in the executor's own formats). Records every argv."""

    def __init__(self, names: dict[str, list[str]], squeue: str, sacct: str, sacct_rc: int = 0):
        self.names, self.squeue, self.sacct, self.sacct_rc = names, squeue, sacct, sacct_rc
        self.argvs: list[list[str]] = []

    def __call__(self, argv, *, cwd=None, env=None, timeout=None):
        self.argvs.append(list(argv))
        if argv[0] == "sbatch":
            return subprocess.CompletedProcess(argv, 0, "42\n", "")
        if argv[0] == "sacct" and self.sacct_rc:
            return subprocess.CompletedProcess(argv, self.sacct_rc, "", "slurmdbd down")
        asked = next((a.split("=", 1)[1].split(",") for a in argv if a.startswith("--name=")), None)
        if asked is not None:  # squeue shows what slurmctld still knows (the recorded squeue ids)
            live = {line.split("|")[0] for line in self.squeue.splitlines()}
            out = "".join(f"{jid}|{name}|\n" if argv[0] == "squeue" else f"{jid}|{name}\n"
                          for name in asked for jid in self.names.get(name, [])
                          if (jid in live) == (argv[0] == "squeue"))
            return subprocess.CompletedProcess(argv, 0, out, "")
        ids = next((a.split("=", 1)[1].split(",") for a in argv if a.startswith("--jobs=")), [])
        table = self.squeue if argv[0] == "squeue" else self.sacct
        out = "".join(line + "\n" for line in table.splitlines() if line.split("|")[0] in ids)
        return subprocess.CompletedProcess(argv, 0, out, "")


def rows(file: str, *ids: str) -> str:
    return "".join(line + "\n" for line in (RECORDED / file).read_text().splitlines()
                   if line.split("|")[0] in ids)


def test_the_tag_is_the_job_name_and_is_found_again_in_few_calls(tmp_path):
    script = tmp_path / "r" / "finetune.slurm"
    script.parent.mkdir()
    script.write_text("#!/bin/bash\n#SBATCH --job-name=mine\ntrue\n")
    tag = "ck-0123abcd-1-r/finetune"
    name = SlurmExecutor.job_name(tag)
    # job 20 is still in squeue; job 15 (an earlier, failed submission of the same tag) only in sacct
    runner = ByName({name: ["15", "20"]}, squeue=rows("squeue_mixed.txt", "20"),
                    sacct=rows("sacct_mixed.txt", "15"))
    ex = SlurmExecutor(tmp_path, runner=runner)
    spec = JobSpec(key="r/finetune", script=script, kind="finetune", run="r", tag=tag)
    assert f"--job-name={name}" in ex.submit_argv(spec) and "/" not in name
    assert ex.submit(spec) == "42" and runner.argvs[-1][2] == f"--job-name={name}"
    n = len(runner.argvs)
    others = [f"ck-0123abcd-1-r{i}/finetune" for i in range(300)]  # never submitted
    found = ex.find_tagged([tag, *others], since="2026-11-22T06:48:00")
    assert [(i.job_id, i.state) for i in found[tag]] == [("15", JobState.FAILED), ("20", JobState.COMPLETED)]
    assert all(found[t] == [] for t in others)
    calls = runner.argvs[n:]
    assert len(calls) <= 6, calls  # 2 chunks x (squeue + sacct) + one poll of the ids found
    # sacct gets local wall time, 10 minutes early for clock skew (parse.sacct_starttime)
    assert all("--starttime=2026-11-22T06:38:00" in c for c in calls if c[0] == "sacct" and any(
        a.startswith("--name=") for a in c))


def test_unanswerable_scheduler_is_an_error_not_never_submitted(tmp_path):
    runner = ByName({}, squeue="", sacct="", sacct_rc=1)
    with pytest.raises(SchedulerError, match="cannot tell whether"):
        SlurmExecutor(tmp_path, runner=runner).find_tagged(["x"])


def test_slurm_refuses_local_only_options(tmp_path):
    from cruijff_kit.errors import CkError

    with pytest.raises(CkError, match="--max-parallel"):
        SlurmExecutor.from_options(tmp_path, max_parallel=2)
    assert SlurmExecutor.from_options(tmp_path, max_parallel=None, gpus=None).cli_args() == []
