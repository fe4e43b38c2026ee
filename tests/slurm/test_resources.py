"""Measured resources (run/resources.py): real sacct MaxRSS of a job that holds a known amount of
memory, the generated GPU sampler on the fake-GPU node (nvidia-smi stand-in printing nvidia-smi's
own CSV layout: the fake GPUs have no driver), and the parsers."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from cruijff_kit.executors.core import JobSpec, JobState
from cruijff_kit.state.resources import Resources, format_resources, gpu_samples, parse_size, sacct_usage
from cruijff_kit.templating import environment

from .conftest import wait_terminal, write_script

# nvidia-smi --query-gpu=timestamp,index,utilization.gpu,memory.used --format=csv,noheader,nounits
SMI_LINES = ["2026/11/29 12:00:00.101, 0, 87, 30123", "2026/11/29 12:00:00.101, 1, 91, 29800",
             "2026/11/29 12:00:15.102, 0, 95, 30456", "2026/11/29 12:00:15.102, 1, 79, 29811"]


def test_parsers():
    assert parse_size("97000K") == 97000 * 1024 and parse_size("1.5G") == int(1.5 * 1024 ** 3)
    assert parse_size("0") == 0 and parse_size("") is None and parse_size("n/a") is None
    rows = "45||\n45|47|\n45.batch|47|97000K\n45.extern|47|1024K\n46|3|\n46.batch|3|\n"
    got = sacct_usage(["45", "46"], run=lambda argv, **kw: subprocess.CompletedProcess(argv, 0, rows, ""))
    assert got == {"45": {"max_rss": 97000 * 1024, "elapsed": 47.0}, "46": {"max_rss": None, "elapsed": 3.0}}
    assert sacct_usage(["1"], run=lambda argv, **kw: subprocess.CompletedProcess(argv, 1, "", "no dbd")) == {}
    r = Resources(elapsed_s=47, max_rss_bytes=97000 * 1024, gpu_util_pct=88, gpu_mem_bytes=30456 * 1024 ** 2,
                  tokens_per_s=812.4)
    assert format_resources(r) == "RSS 94.7M, GPU 88% 29.7G, 812 tok/s"


def test_gpu_sample_file(tmp_path):
    f = tmp_path / "ck-gpu-9.csv"
    f.write_text("\n".join(SMI_LINES + ["garbage line"]) + "\n")
    util, mem = gpu_samples(f)
    assert util == pytest.approx((87 + 91 + 95 + 79) / 4) and mem == 30456 * 1024 ** 2
    assert gpu_samples(tmp_path / "missing.csv") == (None, None)


@pytest.mark.slurm
def test_sacct_max_rss_of_a_real_job(executor, tmp_path):
    s = write_script(tmp_path / "mem", f"{sys.executable} -c \"x = bytearray(150 * 1024 * 1024); "
                                       "x[::4096] = b'1' * len(x[::4096]); import time; time.sleep(4)\"",
                     "--mem=600M")
    s.write_text(s.read_text().replace("#SBATCH --mem=100M\n", ""))
    j = executor.submit(JobSpec(key="mem/job", script=s, kind="eval", run="mem"))
    assert wait_terminal(executor, [j], timeout=90)[j].state is JobState.COMPLETED
    deadline = time.monotonic() + 30
    while True:  # slurmdbd records the step's usage asynchronously
        usage = sacct_usage([j]).get(j, {})
        if usage.get("max_rss"):
            break
        assert time.monotonic() < deadline, usage
        time.sleep(1)
    assert 140 * 1024 ** 2 < usage["max_rss"] < 400 * 1024 ** 2, usage
    assert usage["elapsed"] >= 4


@pytest.mark.slurm
def test_generated_gpu_sampler_on_the_fake_gpu_node(executor, tmp_path):
    gres = subprocess.run(["sinfo", "--noheader", "--format=%G"], capture_output=True, text=True).stdout
    if "gpu" not in gres:
        pytest.skip(f"the running cluster has no fake GPUs (sinfo %G: {gres.strip()!r})")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"  # stands in for the driver the fake GPUs lack; real output layout
    smi.write_text("#!/bin/bash\n" + "".join(f"echo '{ln}'\n" for ln in SMI_LINES[:2]) + "sleep 30\n")
    smi.chmod(0o755)
    parts = environment().from_string(
        '{% import "partials/slurm.j2" as p %}{{ p.offline_exports(false) }}{{ p.gpu_sampler() }}').render()
    s = write_script(tmp_path / "run", parts + "\nsleep 2\necho done", "--gres=gpu:2")
    j = executor.submit(JobSpec(key="run/finetune", script=s, kind="finetune", run="run",
                                env={"PATH": f"{bin_dir}:/usr/bin:/bin"}))
    assert wait_terminal(executor, [j], timeout=60)[j].state is JobState.COMPLETED
    util, mem = gpu_samples(tmp_path / "run" / f"ck-gpu-{j}.csv")
    assert util == pytest.approx(89) and mem == 30123 * 1024 ** 2
