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
    """squeue/sacct answering recorded rows for one job name; records every argv."""

    def __init__(self, name: str, squeue: str, sacct: str, sacct_rc: int = 0):
        self.name, self.squeue, self.sacct, self.sacct_rc = name, squeue, sacct, sacct_rc
        self.argvs: list[list[str]] = []

    def __call__(self, argv, *, cwd=None, env=None, timeout=None):
        self.argvs.append(list(argv))
        asked = next((a.split("=", 1)[1] for a in argv if a.startswith("--name=")), None)
        if argv[0] == "sbatch":
            return subprocess.CompletedProcess(argv, 0, "42\n", "")
        out = (self.squeue if argv[0] == "squeue" else self.sacct) if asked == self.name else ""
        rc = self.sacct_rc if argv[0] == "sacct" else 0
        return subprocess.CompletedProcess(argv, rc, out if rc == 0 else "", "" if rc == 0 else "slurmdbd down")


def rows(file: str, *ids: str) -> str:
    return "".join(line + "\n" for line in (RECORDED / file).read_text().splitlines()
                   if line.split("|")[0] in ids)


def test_the_tag_is_the_job_name_and_is_found_again(tmp_path):
    script = tmp_path / "r" / "finetune.slurm"
    script.parent.mkdir()
    script.write_text("#!/bin/bash\n#SBATCH --job-name=mine\ntrue\n")
    tag = "ck-0123abcd-1-r/finetune"
    name = SlurmExecutor.job_name(tag)
    runner = ByName(name, squeue=rows("squeue_mixed.txt", "20"), sacct=rows("sacct_mixed.txt", "15"))
    ex = SlurmExecutor(tmp_path, runner=runner)
    spec = JobSpec(key="r/finetune", script=script, kind="finetune", run="r", tag=tag)
    assert f"--job-name={name}" in ex.submit_argv(spec) and "/" not in name
    assert ex.submit(spec) == "42" and runner.argvs[-1][2] == f"--job-name={name}"
    found = ex.find_tagged(tag, since="2026-11-22T06:48:00")
    assert [(i.job_id, i.state) for i in found] == [("15", JobState.FAILED), ("20", JobState.COMPLETED)]
    assert any("--starttime=2026-11-22T06:48:00" in a for a in runner.argvs[-1])
    assert ex.find_tagged("ck-0123abcd-2-r/finetune") == []  # another attempt: nothing


def test_unanswerable_scheduler_is_an_error_not_never_submitted(tmp_path):
    runner = ByName("x", squeue="", sacct="", sacct_rc=1)
    with pytest.raises(SchedulerError, match="cannot tell whether"):
        SlurmExecutor(tmp_path, runner=runner).find_tagged("x")


def test_slurm_refuses_local_only_options(tmp_path):
    from cruijff_kit.errors import CkError

    with pytest.raises(CkError, match="--max-parallel"):
        SlurmExecutor.from_options(tmp_path, max_parallel=2)
    assert SlurmExecutor.from_options(tmp_path, max_parallel=None, gpus=None).cli_args() == []
