"""`ck launch env` (plan / verify; no network, no conda here) and nvidia-smi parsing.

There is no GPU on the test machine: parsing is checked on recorded nvidia-smi output, and
tests/launch/test_launch_process.py puts a fake `nvidia-smi` on PATH for the CLI.
"""
from __future__ import annotations

import sys

import pytest

from .training_repos import write_repo
from cruijff_kit.errors import CkError
from cruijff_kit.launch import gpus

# recorded: nvidia-smi --query-gpu=index,name,memory.total,memory.used,utilization.gpu --format=csv,noheader
RECORDED = """\
0, NVIDIA H100 80GB HBM3, 81559 MiB, 79000 MiB, 100 %
1, NVIDIA H100 80GB HBM3, 81559 MiB, 1 MiB, 0 %
2, NVIDIA H100 80GB HBM3, 81559 MiB, 1 MiB, 45 %
3, NVIDIA H100 80GB HBM3, 81559 MiB, [N/A], [N/A]
"""


def test_parse_and_rank_recorded_nvidia_smi():
    parsed = gpus.parse_query(RECORDED)
    assert parsed[0] == {"index": 0, "name": "NVIDIA H100 80GB HBM3", "memory_total_mib": 81559.0,
                         "memory_used_mib": 79000.0, "memory_free_mib": 2559.0, "utilization_pct": 100.0}
    assert parsed[3]["memory_free_mib"] is None and parsed[3]["utilization_pct"] is None
    # most free memory first; ties broken by lower utilization; unknown memory last
    assert [g["index"] for g in gpus.rank(parsed)] == [1, 2, 0, 3]
    nounits = gpus.parse_query("0, Tesla V100-SXM2-16GB, 16160, 0, 0\n")
    assert nounits[0]["memory_free_mib"] == 16160.0
    with pytest.raises(CkError):
        gpus.parse_query("0, only two\n")


def test_gpus_without_nvidia_smi_means_cpu(ck):
    result = ck("launch", "gpus", "--json", env={"PATH": "/usr/bin:/bin"})
    assert result.rc == 0
    assert result.json == {"device": "cpu", "gpus": [], "reason": "nvidia-smi not found on PATH", "suggested": ""}


def test_env_plan_follows_the_seed_order_and_verify_reports_torch(ck, tmp_path):
    repo = write_repo(tmp_path / "r", {
        "train.py": "print(1)\n", "requirements.txt": "numpy\n",
        "setup.py": "from setuptools import setup\nsetup(name='r')\n",
        "pyproject.toml": "[project]\nname='r'\nversion='0'\n", "environment.yml": "dependencies: [pip]\n",
    })
    result = ck("launch", "env", repo, "--kind", "current", "--python", sys.executable, "--with-wandb", "--verify",
                "--json")
    assert result.rc == 0, result
    info = result.json
    py = sys.executable
    assert info["env"]["kind"] == "current"
    # requirements first, one editable install for pyproject/setup.py; wandb is installed already? no:
    # --with-wandb adds it because no dependency file names it
    assert info["commands"] == [f"{py} -m pip install -r requirements.txt", f"{py} -m pip install -e .",
                                f"{py} -m pip install wandb"]
    assert info["skipped"] == ["environment.yml: needs conda"]
    assert info["verify"]["torch"].startswith("2.") and info["verify"]["cuda_available"] is False
    assert info["verify"]["wandb"] is not None
    assert "ran" in info and info["ran"] == []  # --verify alone installs nothing


def test_env_venv_plan_and_missing_conda(ck, tmp_path):
    repo = write_repo(tmp_path / "r", {"train.py": "print(1)\n"})
    plan = ck("launch", "env", repo, "--kind", "venv", "--name", "envs/exp1", "--python", sys.executable,
              "--json").json
    assert plan["env"] == {"kind": "venv", "name": str(repo / "envs/exp1"), "exists": False,
                           "prefix": str(repo / "envs/exp1")}
    assert plan["commands"] == [f"{sys.executable} -m venv {repo / 'envs/exp1'}"]
    assert not (repo / "envs").exists()  # a plan creates nothing

    no_conda = ck("launch", "env", repo, "--kind", "conda", "--json", env={"PATH": "/usr/bin:/bin", "CONDA_EXE": None})
    assert no_conda.rc == 2 and "conda is not installed" in no_conda.json["error"]
