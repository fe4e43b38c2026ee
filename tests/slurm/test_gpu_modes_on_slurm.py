"""The GPU launch modes' generated finetune.slurm really submitted on the fake-GPU node.

The fake GPUs have no driver, so torchtune cannot run on them; the job's environment is a stand-in
venv whose `python`, `tune` and `nvidia-smi` print what they were started with (and nvidia-smi's
CSV layout). What this proves is everything up to the launcher: SLURM accepts the generated
#SBATCH lines (--gres=gpu:N, --ntasks-per-node), hands the job N devices through
CUDA_VISIBLE_DEVICES, the script starts the right launcher with the right rank count, samples the
GPUs into ck-gpu-<job id>.csv, and exits with the launcher's code. Two nodes cannot be met by a
one-node cluster: sbatch's refusal must name the setting.
"""
from __future__ import annotations

import subprocess

import pytest

from cruijff_kit.executors.core import JobSpec, JobState, SubmitError
from cruijff_kit.executors.resources import Resources
from cruijff_kit.executors.slurm import SlurmExecutor
from cruijff_kit.state.resources import gpu_samples

from .conftest import wait_terminal
from .pipeline import TASK, ck

pytestmark = pytest.mark.slurm

# The stand-in launcher lasts a few seconds, as any real training does: the job's EXIT trap stops
# the GPU sampler, and a launcher that returns at once can beat nvidia-smi's first line (flaky).
STUB = """#!/bin/bash
echo "LAUNCH $(basename "$0") $* CVD=${CUDA_VISIBLE_DEVICES:-unset} NTASKS=${SLURM_NTASKS:-?}"
sleep 3
"""
SMI = """#!/bin/bash
echo "2026/11/29 12:00:00.101, 0, 55, 1234"
sleep 60
"""


@pytest.fixture(scope="module")
def gpu_inputs(slurm_cluster, inputs, tmp_path_factory):
    gres = subprocess.run(["sinfo", "--noheader", "--format=%G"], capture_output=True, text=True).stdout
    if "gpu:2" not in gres and "gpu:" not in gres:
        pytest.skip(f"the running cluster has no fake GPUs (sinfo %G: {gres.strip()!r})")
    venv = tmp_path_factory.mktemp("stand_in_venv")
    (venv / "bin").mkdir()
    (venv / "bin" / "activate").write_text(f'export PATH="{venv}/bin:$PATH"\n')
    for name, text in (("python", STUB), ("tune", STUB), ("nvidia-smi", SMI)):
        (venv / "bin" / name).write_text(text)
        (venv / "bin" / name).chmod(0o755)
    local = inputs["base"] / "claude.local.gpu.md"
    local.write_text(f"- venv: {venv}\n- slurm_partition: debug\n- slurm_mem: 1G\n- slurm_cpus: 1\n"
                     "- slurm_time: 00:05:00\n")
    return {**inputs, "env": {"CK_LOCAL_CONFIG": str(local)}}


def scaffold(gpu_inputs, name, *flags):
    exp = gpu_inputs["base"] / name
    ck("design", exp, "--model", f"tiny={gpu_inputs['base'] / 'model'}", "--dataset", gpu_inputs["base"] / "data.json",
       "--ranks", "4", "--lrs", "1e-3", "--task", f"capitalization={TASK}@0", "--no-control", *flags,
       env=gpu_inputs["env"])
    ck("scaffold", exp, env=gpu_inputs["env"])
    return exp / "rank4" / "finetune.slurm"


@pytest.mark.parametrize("flags, gpus, launcher", [
    (["--gpus", "1"], 1, "LAUNCH python -m cruijff_kit.finetune.recipes.lora_single_device"),
    (["--gpus", "2"], 2, "LAUNCH tune run --nproc_per_node 2"),
])
def test_gpu_launch_mode_really_submitted(gpu_inputs, tmp_path, flags, gpus, launcher):
    script = scaffold(gpu_inputs, f"gpu{gpus}", *flags)
    assert f"#SBATCH --gres=gpu:{gpus}" in script.read_text()
    ex = SlurmExecutor(script.parents[1])
    j = ex.submit(JobSpec(key="rank4/finetune", script=script, kind="finetune", run="rank4",
                          resources=Resources(gpus_per_node=gpus)))
    info = wait_terminal(ex, [j], timeout=120, every=1)[j]
    out = info.log.read_text()
    assert info.state is JobState.COMPLETED, out
    # the launch of the training itself (finetune.manifest runs python first, and it is stubbed too)
    line = next(ln for ln in out.splitlines() if ln.startswith("LAUNCH ") and "finetune.manifest" not in ln)
    assert line.startswith(launcher) and "--config finetune.yaml" in line, line
    devices = line.split("CVD=")[1].split()[0].split(",")
    assert len(devices) == gpus and all(d.isdigit() for d in devices), line
    assert "finetune exit code: 0" in out
    util, mem = gpu_samples(script.parent / f"ck-gpu-{j}.csv")
    assert util == 55 and mem == 1234 * 1024 ** 2


def test_two_nodes_refused_naming_the_setting(gpu_inputs):
    script = scaffold(gpu_inputs, "gpu_two_nodes", "--gpus", "2", "--set", "Nodes=2")
    ex = SlurmExecutor(script.parents[1])
    with pytest.raises(SubmitError) as e:
        ex.submit(JobSpec(key="rank4/finetune", script=script, kind="finetune", run="rank4",
                          resources=Resources(gpus_per_node=2)))
    # slurmctld answers "More processors requested than permitted": the nodes are the cause
    assert e.value.field == "slurm.nodes" and "--nodes=2" in e.value.message, e.value.message
