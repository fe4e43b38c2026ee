"""No shared datasets-cache races: every generated job script builds its Hugging Face datasets cache
in a directory of its own (templates/partials/slurm.j2 offline_exports), removed when it ends.

Real check: four jobs on the real cluster, started together (--oversubscribe), each running the
generated preamble and then `datasets.load_dataset("json", ...)` on ONE data file, as torchtune's
instruct_dataset does. All complete, each used its own cache, none is left behind, and the
user's shared cache directory was never written.
"""
from __future__ import annotations

import json
import sys

import pytest

from cruijff_kit.executors.core import JobSpec, JobState
from cruijff_kit.templating import environment

from .conftest import wait_terminal

pytestmark = pytest.mark.slurm

LOAD = """import datasets, os, sys
ds = datasets.load_dataset("json", data_files=sys.argv[1], split="train")
files = [f for _, _, fs in os.walk(os.environ["HF_DATASETS_CACHE"]) for f in fs if f.endswith(".arrow")]
print("CACHE", os.environ["HF_DATASETS_CACHE"], len(ds), len(files))
"""


def preamble(cpu: bool = True) -> str:
    macro = environment().from_string('{% import "partials/slurm.j2" as p %}{{ p.offline_exports(cpu) }}')
    return macro.render(cpu=cpu)


def test_preamble_gives_each_job_its_own_cache_and_removes_it():
    text = preamble()
    assert 'export HF_DATASETS_CACHE="$CK_DATASETS_CACHE"' in text
    assert "ck-job-${SLURM_JOB_ID:-$$}" in text and "trap 'rm -rf \"$CK_DATASETS_CACHE\"' EXIT" in text


def test_concurrent_jobs_on_one_dataset(executor, tmp_path):
    data = tmp_path / "data.json"
    data.write_text(json.dumps([{"input": f"w{i}", "output": f"W{i}"} for i in range(50)]))
    hf_home = tmp_path / "hf"
    (tmp_path / "load.py").write_text(LOAD)
    ids = []
    for i in range(4):
        d = tmp_path / f"job{i}"
        d.mkdir()
        script = d / "job.slurm"
        script.write_text("\n".join([
            "#!/bin/bash", "#SBATCH --output=slurm-%j.out", "#SBATCH --mem=1500M", "#SBATCH --oversubscribe",
            "set -euo pipefail", preamble(), f"{sys.executable} {tmp_path / 'load.py'} {data}", ""]))
        ids.append(executor.submit(JobSpec(key=f"job{i}", script=script, kind="eval", run=f"job{i}",
                                           env={"HF_HOME": str(hf_home)})))
    infos = wait_terminal(executor, ids, timeout=240, every=1)
    outs = {j: i.log.read_text() for j, i in infos.items()}
    assert all(i.state is JobState.COMPLETED for i in infos.values()), outs
    caches = set()
    for j, out in outs.items():
        line = next(ln for ln in out.splitlines() if ln.startswith("CACHE "))
        _, cache, rows, arrow = line.split()
        assert cache == f"{hf_home}/datasets/ck-job-{j}" and rows == "50" and int(arrow) >= 1, out
        caches.add(cache)
    assert len(caches) == 4
    # the trap removed every job's cache; nothing was built in the shared directory
    assert not (hf_home / "datasets").exists() or not any((hf_home / "datasets").iterdir())
