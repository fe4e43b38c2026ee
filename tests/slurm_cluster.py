"""The real local SLURM cluster (scripts/local-slurm), started once per session for every test that
asks for the `slurm_cluster` fixture (loaded by tests/conftest.py as a plugin).

It is started (idempotently; with 2 fake GPUs unless it already has some or
LOCAL_SLURM_FAKE_GPUS says otherwise) so GPU requests can be tested, and left running
afterwards: other test sessions may share it, and `scripts/local-slurm stop` ends it. Where it
cannot start (not root, no apt, no Debian), the tests that need it are skipped and the reason
is printed in the terminal summary -- never silently. CK_SLURM_TESTS=0 skips them on purpose.
Under CI (CI=true) a cluster that cannot start fails the tests instead: CI must run them.

The summary also says how the cluster enforces --mem (cgroup, or SLURM's sampled-RSS kill where
this machine gives no writable memory cgroup), so a reader knows what the OOM tests proved.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from cruijff_kit.executors.slurm import slurm_available

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "local-slurm"

_skip_reason: list[str] = []
STATE = Path(os.environ.get("LOCAL_SLURM_STATE", "/tmp/ck-local-slurm"))
TEST_QOS = "cklimit3"  # scripts/local-slurm: MaxSubmitJobsPerUser=3


def memory_enforcement() -> str:
    """'cgroup' | 'sampled' for a cluster scripts/local-slurm runs; 'unknown' otherwise."""
    try:
        for line in (STATE / "etc" / "settings").read_text().splitlines():
            if line.startswith("MEM_ENFORCE="):
                return line.split("=", 1)[1].strip() or "unknown"
    except OSError:
        pass
    return "unknown"


def _has_gpus() -> bool:
    try:
        p = subprocess.run(["sinfo", "--noheader", "--format=%G"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return p.returncode == 0 and "gpu" in p.stdout


def _start() -> str | None:
    """Start the cluster; return why it could not, or None."""
    if os.environ.get("CK_SLURM_TESTS") == "0":
        return "CK_SLURM_TESTS=0"
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        if slurm_available():
            return None  # a cluster someone else runs: use it
        return "scripts/local-slurm needs root (installs packages, starts daemons) and no cluster answers sinfo"
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        return "no apt-get to install SLURM (Debian/Ubuntu only) and slurmctld is not installed"
    env = dict(os.environ)
    if "LOCAL_SLURM_FAKE_GPUS" not in env and not _has_gpus():
        # Only when needed: the setting is sticky, and changing it restarts slurmctld/slurmd
        # under whoever else is using the cluster.
        env["LOCAL_SLURM_FAKE_GPUS"] = "2"
    t0 = time.monotonic()
    try:
        p = subprocess.run([str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return "scripts/local-slurm start did not finish within 600 s"
    if p.returncode != 0:
        tail = "\n".join((p.stdout + p.stderr).strip().splitlines()[-15:])
        return f"scripts/local-slurm start failed (exit {p.returncode}):\n{tail}"
    print(f"\nlocal SLURM cluster up in {time.monotonic() - t0:.1f} s")
    return None if slurm_available() else "scripts/local-slurm start succeeded but sinfo does not answer"


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    if not _skip_reason:
        why = _start()
        _skip_reason.append(why or "")
    if _skip_reason[0]:
        if os.environ.get("CI", "").lower() == "true" and os.environ.get("CK_SLURM_TESTS") != "0":
            pytest.fail(f"CI=true but the local SLURM cluster is unavailable: {_skip_reason[0]}")
        pytest.skip(f"local SLURM cluster unavailable: {_skip_reason[0]}")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _skip_reason and not _skip_reason[0]:
        mode = memory_enforcement()
        terminalreporter.write_sep("=", "local SLURM cluster")
        terminalreporter.write_line(
            f"--mem enforced by: {mode}" + ("" if mode == "cgroup" else
                                            " (no writable cgroup v1 memory controller on this machine: "
                                            "SLURM kills jobs from sampled RSS instead of a kernel limit)"))
    if _skip_reason and _skip_reason[0]:
        terminalreporter.write_sep("=", "SLURM tests skipped")
        terminalreporter.write_line(f"local SLURM cluster unavailable: {_skip_reason[0]}")
