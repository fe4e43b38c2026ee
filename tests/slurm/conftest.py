"""Helpers for tests/slurm; the cluster fixture `slurm_cluster` lives in tests/slurm_cluster.py."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable

import pytest

from cruijff_kit.executors.core import JobInfo
from cruijff_kit.executors.slurm import SlurmExecutor


@pytest.fixture
def executor(slurm_cluster, tmp_path) -> SlurmExecutor:
    return SlurmExecutor(tmp_path)


def write_script(directory: Path, body: str, *headers: str, name: str = "job.slurm") -> Path:
    """A generated-style script: bash + #SBATCH headers, output beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["#!/bin/bash", "#SBATCH --output=slurm-%j.out", "#SBATCH --mem=100M",
             *(f"#SBATCH {h}" for h in headers), "set -u", body, ""]
    path = directory / name
    path.write_text("\n".join(lines))
    return path


def wait_terminal(ex: SlurmExecutor, ids: Iterable[str], timeout: float = 60, every: float = 0.5) -> dict[str, JobInfo]:
    ids = list(ids)
    deadline = time.monotonic() + timeout
    while True:
        infos = ex.poll(ids)
        if all(i.state.terminal for i in infos.values()):
            return infos
        if time.monotonic() > deadline:
            raise AssertionError(f"jobs not finished after {timeout} s: {infos}")
        time.sleep(every)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_model) -> dict:
    """Tiny model, data and a claude.local.md sized for the 2-CPU test node."""
    import shutil
    import sys

    from cruijff_kit.blueprints.capitalization.generate import generate

    base = tmp_path_factory.mktemp("slurm_pipeline")
    shutil.copytree(tiny_model, base / "model")
    generate(base / "data.json", n=40)
    local = base / "claude.local.md"
    # slurm_cpus 1: two training jobs fit the node at once, so chaining is not hidden behind a queue.
    # 3G: a CPU rank of torchtune + torch peaks near 1 GiB; two ranks share the job's --mem.
    local.write_text(f"- venv: {sys.prefix}\n- slurm_partition: debug\n- slurm_mem: 3G\n"
                     "- slurm_cpus: 1\n- slurm_time: 00:10:00\n")
    return {"base": base, "env": {"CK_LOCAL_CONFIG": str(local)}}
