"""A real OUT_OF_MEMORY on the local cluster (cgroup-enforced --mem, or SLURM's sampled-RSS kill)
and ck's retry with half the batch and twice the accumulation (effective batch kept).

The stand-in training holds batch_size x 120 MB (batch size read from finetune.yaml, overridden by
CK_TUNE_OVERRIDES exactly as the generated finetune.slurm passes them to torchtune) under
--mem=600M: batch 8 is killed by the kernel / slurmstepd, batch 4 fits and writes its checkpoint.
"""
from __future__ import annotations

import shlex
import sys

import pytest

from cruijff_kit.executors.slurm import SlurmExecutor
from cruijff_kit.state.ledger import Ledger
from cruijff_kit.run.orchestrator import run_experiment

from ..run.helpers import FakeRun, make_experiment

pytestmark = pytest.mark.slurm

TRAIN = """import os, sys, time
batch = 8
for part in os.environ.get("CK_TUNE_OVERRIDES", "").split():
    key, _, value = part.partition("=")
    if key == "batch_size":
        batch = int(value)
print("batch_size", batch, flush=True)
block = bytearray(batch * 120 * 1024 * 1024)
block[::4096] = b"1" * len(block[::4096])  # touch every page: resident, not just reserved
time.sleep(3)
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
import numpy
from safetensors.numpy import save_file
save_file({"w": numpy.zeros(4, dtype="float32")}, os.path.join(out, "model-00001-of-00001.safetensors"))
"""


def test_over_memory_job_ends_out_of_memory_and_is_retried_with_the_effective_batch_kept(slurm_cluster, tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("big", batch_size=8)])
    (tmp_path / "train.py").write_text(TRAIN)
    ckpt = tmp_path / "outputs" / "ck-out-big" / "epoch_0"
    (exp / "big" / "finetune.slurm").write_text("\n".join([
        "#!/bin/bash", "#SBATCH --output=slurm-%j.out", "#SBATCH --mem=600M", "#SBATCH --time=00:05:00",
        f"{shlex.quote(sys.executable)} {shlex.quote(str(tmp_path / 'train.py'))} {shlex.quote(str(ckpt))}", ""]))
    lines: list[str] = []
    report = run_experiment(exp, SlurmExecutor(exp), poll_s=0.5, out=lines.append)
    jobs = {j.key: j for j in report.jobs}
    assert jobs["big/finetune"].state == "COMPLETED", "\n".join(lines)
    attempts = Ledger(exp).entry("big/finetune")["attempts"]
    assert [a["state"] for a in attempts] == ["OUT_OF_MEMORY", "COMPLETED"], attempts
    assert attempts[1]["overrides"] == {"batch_size": "4", "gradient_accumulation_steps": "2"}
    assert jobs["big/eval/cap_epoch0"].ok  # chained to the retried training
    assert Ledger(exp).entry("big/eval/cap_epoch0")["attempts"][-1]["after"] == attempts[1]["job_id"]
