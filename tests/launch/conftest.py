"""Fixtures for `ck launch` tests: small real training repos in tmp dirs, and the real CLI.

Every test gets its own launch state dir (CK_LAUNCH_HOME) and wandb dir, offline wandb, no API
key, and OMP_NUM_THREADS=1 (the machine is shared). Runs are real detached processes.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from .training_repos import PLAIN_LOOP, write_repo

REPO_ROOT = Path(__file__).resolve().parents[2]
CK = [sys.executable, "-c", "import sys; from cruijff_kit.cli import main; sys.exit(main())"]


@pytest.fixture(autouse=True)
def launch_env(tmp_path, monkeypatch):
    home = tmp_path / "launch-home"
    monkeypatch.setenv("CK_LAUNCH_HOME", str(home))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-dir"))
    monkeypatch.setenv("WANDB_SILENT", "false")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))  # no wandb login from ~/.netrc either
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    (tmp_path / "wandb-dir").mkdir()
    return home


@pytest.fixture
def plain_repo(tmp_path) -> Path:
    return write_repo(tmp_path / "plain", {"train.py": PLAIN_LOOP, "requirements.txt": "torch\nnumpy>=1.26  # arrays\n"})


@pytest.fixture
def script_repo(tmp_path):
    """A repo holding one plain-Python script (no torch: fast) under train.py."""
    def make(body: str, name: str = "train.py") -> Path:
        return write_repo(tmp_path / f"repo-{time.monotonic_ns()}", {name: textwrap.dedent(body)})
    return make


class CkResult:
    def __init__(self, proc: subprocess.CompletedProcess) -> None:
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    @property
    def json(self):
        return json.loads(self.out)

    def __repr__(self) -> str:
        return f"rc={self.rc}\nstdout={self.out}\nstderr={self.err}"


@pytest.fixture
def ck():
    """Run the real `ck` CLI in a subprocess (its own exit code, stdout, stderr)."""
    def run(*args: str, env: dict[str, str | None] | None = None, timeout: float = 60) -> CkResult:
        merged = {**os.environ, **(env or {})}  # a None value removes the variable
        proc = subprocess.run([*CK, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                              env={k: v for k, v in merged.items() if v is not None}, cwd=REPO_ROOT)
        return CkResult(proc)
    return run


@pytest.fixture
def wait_done(ck):
    def wait(run_id: str, timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = ck("launch", "status", run_id, "--json").json
            if not status["alive"] and status["state"] != "starting":
                return status
            time.sleep(0.2)
        raise AssertionError(f"run {run_id} still alive after {timeout} s")
    return wait
