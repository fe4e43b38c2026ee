"""The run is its process group, in its own environment (issue 11, items 1-2): real process trees."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cruijff_kit.util import procs

from .training_repos import write_repo

pytestmark = pytest.mark.slow  # real training, evaluation or training processes: `make test`, not test-fast

# A trainer that starts a worker (like a DataLoader worker or a torchrun rank) and keeps logging.
TREE = """\
import subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", "import time\\nwhile True: time.sleep(0.1)"])
print(f"worker {worker.pid}", flush=True)
for i in range(600):
    print(f"step {i} loss 1.0", flush=True)
    time.sleep(0.1)
"""
WHO = """\
import os, sys
print("prefix=" + sys.prefix)
print("executable=" + sys.executable)
print("virtual_env=" + os.environ.get("VIRTUAL_ENV", ""))
print("path=" + os.environ["PATH"])
"""
CK_BIN = str(Path(sys.executable).parent)  # ck's own venv (the tests run ck from it)


def _worker_pid(ck, run_id: str, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(r"^worker (\d+)$", ck("launch", "logs", run_id).out, re.M)
        if match:
            return int(match.group(1))
        time.sleep(0.2)
    raise AssertionError("the trainer never printed its worker's pid")


def _gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not procs.is_alive(pid):
            return True
        time.sleep(0.1)
    return False


def _marked(run_id: str) -> list[int]:
    return [s.pid for s in procs.find(lambda st: procs.has_env(st.pid, "CK_LAUNCH_RUN_ID", run_id))]


@pytest.fixture(scope="session")
def venv_repo(tmp_path_factory) -> Path:
    """A repo with its own .venv, made by `python -m venv` (no pip: nothing to download)."""
    repo = write_repo(tmp_path_factory.mktemp("venv-repo"), {"train.py": WHO, "loop.py": TREE})
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(repo / ".venv")], check=True, timeout=120)
    return repo


def test_kill_9_of_the_reported_pid_ends_the_whole_training(ck, script_repo, wait_done):
    repo = script_repo(TREE)
    started = ck("launch", "start", repo, "--command", "python train.py", "--wait", "0.5", "--json")
    assert started.rc == 0, started
    run_id, pid = started.json["run_id"], started.json["pid"]
    worker = _worker_pid(ck, run_id)
    status = ck("launch", "status", run_id, "--json").json
    assert {pid, worker} <= set(status["resources"]["pids"])
    assert procs.stat(worker).pgrp == pid  # the reported pid leads the training's process group

    os.kill(pid, signal.SIGKILL)
    final = wait_done(run_id)
    assert (final["state"], final["exit_code"], final["signal"]) == ("killed", 137, "SIGKILL")
    assert _gone(worker), "the trainer's worker outlived kill -9 of the reported pid"
    assert _marked(run_id) == []
    assert "leftover_pids" not in final
    after = ck("launch", "stop", run_id, "--json")  # nothing left to stop: reported, not an error
    assert after.rc == 0 and after.json["stopped"] is False and after.json["signal_sent"] is None
    assert (after.json["state"], after.json["exit_code"]) == ("killed", 137)
    assert "SIGKILL" in ck("launch", "diagnose", run_id, "--json").json["advice"]


def test_a_killed_supervisor_takes_the_trainer_and_status_still_sees_the_rest(ck, script_repo, launch_env):
    repo = script_repo(TREE)
    run_id = ck("launch", "start", repo, "--command", "python train.py", "--wait", "0.5", "--json").json["run_id"]
    worker = _worker_pid(ck, run_id)
    meta = json.loads((launch_env / run_id / "meta.json").read_text())
    os.kill(meta["supervisor_pid"], signal.SIGKILL)
    assert _gone(meta["pid"]), "the trainer outlived its supervisor"

    status = ck("launch", "status", run_id, "--json").json
    assert status["state"] == "killed" and status["alive"] is True  # the worker is still running
    assert status["leftover_pids"] == [worker]
    stopped = ck("launch", "stop", run_id, "--json")
    assert stopped.rc == 0, stopped
    assert _gone(worker, timeout=5) and _marked(run_id) == []
    assert ck("launch", "status", run_id, "--json").json["alive"] is False


def test_without_env_the_repos_venv_runs_it_and_ck_never_leaks(ck, venv_repo, wait_done):
    env = {"PATH": f"{CK_BIN}{os.pathsep}{os.environ['PATH']}"}  # ck's venv first on the user's PATH
    started = ck("launch", "start", venv_repo, "--command", "python train.py", "--wait", "0", "--json", env=env)
    assert started.rc == 0, started
    assert started.json["environment"]["kind"] == "venv"
    assert started.json["environment"]["source"] == "the repo's own venv (.venv/)"
    assert started.json["environment"]["interpreter"] == str(venv_repo / ".venv" / "bin" / "python")
    wait_done(started.json["run_id"])
    log = ck("launch", "logs", started.json["run_id"], "--tail", "100").out
    facts = dict(line.split("=", 1) for line in log.splitlines() if "=" in line and not line.startswith("["))
    assert Path(facts["prefix"]).resolve() == (venv_repo / ".venv").resolve()
    assert facts["virtual_env"] == str(venv_repo / ".venv")
    assert CK_BIN not in facts["path"].split(os.pathsep)
    assert facts["path"].split(os.pathsep)[0] == str(venv_repo / ".venv" / "bin")
    # which interpreter ran is in the log's first lines
    head = log.splitlines()[:4]
    assert any(l.startswith(f"[ck launch] python: {venv_repo / '.venv' / 'bin' / 'python'} (Python 3.") for l in head), head


def test_done_means_kill_of_the_reported_pid_in_the_repos_venv(ck, venv_repo, wait_done):
    started = ck("launch", "start", venv_repo, "--command", "python loop.py", "--wait", "0.5", "--json").json
    worker = _worker_pid(ck, started["run_id"])
    assert procs_exe(started["pid"]) == str(venv_repo / ".venv" / "bin" / "python")  # the trainer itself
    os.kill(started["pid"], signal.SIGKILL)
    wait_done(started["run_id"])
    assert _gone(worker) and _marked(started["run_id"]) == []


def procs_exe(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()


def test_without_any_env_the_users_python_not_cks(ck, script_repo):
    repo = script_repo(WHO)
    env = {"PATH": f"{CK_BIN}{os.pathsep}{os.environ['PATH']}"}
    run = ck("launch", "start", repo, "--command", "python train.py", "--wait", "2", "--json", env=env).json
    assert run["environment"]["source"] == "python on PATH"
    assert Path(run["environment"]["interpreter"]).parent != Path(CK_BIN)
    out = ck("launch", "logs", run["run_id"]).out
    path = next(l for l in out.splitlines() if l.startswith("path="))[5:]
    assert CK_BIN not in path.split(os.pathsep)


def test_missing_imports_are_proposed_for_the_runs_env_not_installed(ck, tmp_path):
    """A repo with only imports (no requirements file): every missing one at once, pip into the run's env."""
    repo = write_repo(tmp_path / "imports-only", {"train.py": (
        "import json\nimport numpy as np\nimport ck_surely_missing_a\nfrom ck_surely_missing_b.sub import x\n"
        "from model import Net\nif False:\n    import wandb\n"), "model.py": "class Net: pass\n"})
    info = ck("launch", "detect", repo, "--json").json
    assert [(d["import"], d["conditional"]) for d in info["inferred_dependencies"]] == [
        ("ck_surely_missing_a", False), ("ck_surely_missing_b", False), ("numpy", False), ("wandb", True)]
    plan = ck("launch", "env", repo, "--kind", "current", "--python", sys.executable, "--json").json
    assert plan["commands"] == [f"{sys.executable} -m pip install ck_surely_missing_a ck_surely_missing_b numpy"]

    started = ck("launch", "start", repo, "--command", "python train.py", "--python", sys.executable,
                 "--wait", "2", "--json")
    missing = started.json["missing_dependencies"]
    assert missing["modules"] == ["ck_surely_missing_a", "ck_surely_missing_b"]  # numpy is there
    assert missing["install_command"] == f"{sys.executable} -m pip install ck_surely_missing_a ck_surely_missing_b"


def _wheel(folder: Path, name: str) -> Path:
    """A minimal pure-Python wheel, so --install can be exercised offline (PIP_NO_INDEX + PIP_FIND_LINKS)."""
    import base64
    import hashlib
    import zipfile

    files = {f"{name}/__init__.py": "VALUE = 42\n",
             f"{name}-0.1.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n",
             f"{name}-0.1.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: ck-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()},"
                     f"{len(text.encode())}\n" for path, text in files.items())
    files[f"{name}-0.1.dist-info/RECORD"] = record + f"{name}-0.1.dist-info/RECORD,,\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


def test_install_puts_missing_imports_into_the_runs_env_only(ck, tmp_path, wait_done):
    import importlib.util

    repo = write_repo(tmp_path / "needs-dep", {"train.py": "import ck_offline_dep\nprint('value', ck_offline_dep.VALUE)\n"})
    # The repo's own venv needs pip: borrow the base interpreter's (fast) where it has one, else ensurepip.
    base_has_pip = subprocess.run([Path(sys.base_prefix) / "bin" / "python3", "-m", "pip", "--version"],
                                  capture_output=True, timeout=120).returncode == 0
    subprocess.run([sys.executable, "-m", "venv", *(["--without-pip", "--system-site-packages"] if base_has_pip else []),
                    str(repo / ".venv")], check=True, timeout=300)
    offline = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(_wheel(tmp_path / "wheels", "ck_offline_dep").parent),
               "PIP_DISABLE_PIP_VERSION_CHECK": "1"}

    first = ck("launch", "start", repo, "--command", "python train.py", "--wait", "0", "--json", env=offline)
    assert first.json["missing_dependencies"]["modules"] == ["ck_offline_dep"]
    assert first.json["missing_dependencies"]["install_command"] == \
        f"{repo / '.venv' / 'bin' / 'python'} -m pip install ck_offline_dep"
    assert wait_done(first.json["run_id"])["state"] == "failed"  # proposed, not installed

    second = ck("launch", "start", repo, "--command", "python train.py", "--install", "--wait", "0", "--json",
                env=offline, timeout=300)
    assert second.rc == 0, second
    assert second.json["installed"]["exit_code"] == 0 and "missing_dependencies" not in second.json
    assert wait_done(second.json["run_id"])["state"] == "succeeded"
    assert "value 42" in ck("launch", "logs", second.json["run_id"]).out
    assert importlib.util.find_spec("ck_offline_dep") is None  # ck's own environment untouched


def test_stop_escalates_to_sigkill_for_a_trainer_that_ignores_sigterm(ck, script_repo):
    repo = script_repo(
        "import signal, subprocess, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "worker = subprocess.Popen([sys.executable, '-c', 'import signal, time\\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\nwhile True: time.sleep(0.1)'])\n"
        "print(f'worker {worker.pid}', flush=True)\nwhile True:\n    time.sleep(0.1)\n")
    run_id = ck("launch", "start", repo, "--command", "python train.py", "--wait", "0.5", "--json").json["run_id"]
    worker = _worker_pid(ck, run_id)
    stopped = ck("launch", "stop", run_id, "--timeout", "1", "--json")
    assert stopped.rc == 0, stopped
    assert stopped.json["signal_sent"] == "SIGKILL" and stopped.json["state"] == "stopped"
    assert stopped.json["alive"] is False and _gone(worker, timeout=5) and _marked(run_id) == []
