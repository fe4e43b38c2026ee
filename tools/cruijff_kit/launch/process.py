"""Start a training command detached from ck, and watch / stop it by its recorded pid.

The command runs under templates/launch/run.sh.j2 (nohup, new session), which writes the exit
code to exit.json when the command ends. Every signal goes to the recorded process group, and
only after checking that the pid still belongs to the process we started (its start time in
/proc/<pid>/stat, or `ps -o lstart` elsewhere): pids are reused.
"""
from __future__ import annotations

import datetime as _dt
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import CkError
from ..util.fs import atomic_write_text
from . import env as envmod
from . import gpus as gpumod
from . import state
from ..templating import render

_LEADING_PYTHON = re.compile(r"^(\s*(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*)(python(?:3(?:\.\d+)?)?)(?=\s|$)")
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


# --------------------------------------------------------------------------- process facts

def proc_info(pid: int) -> dict[str, Any] | None:
    """State, process group, start token and usage of `pid`; None when there is no such process."""
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            raw = stat.read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return None
        # The command name may hold spaces and ')' so split after the last ')'.
        fields = raw[raw.rindex(")") + 2:].split()
        return {
            "state": fields[0],
            "pgrp": int(fields[2]),
            "start": fields[19],
            "cpu_s": (int(fields[11]) + int(fields[12])) / _CLK_TCK,
            "rss_mib": int(fields[21]) * _PAGE / 2**20,
        }
    proc = subprocess.run(["ps", "-o", "stat=,pgid=,lstart=", "-p", str(pid)], capture_output=True, text=True)
    line = proc.stdout.strip()
    if proc.returncode != 0 or not line:
        return None
    st, pgid, start = line.split(None, 2)
    return {"state": st[0], "pgrp": int(pgid), "start": start, "cpu_s": None, "rss_mib": None}


def group_usage(pgid: int) -> dict[str, Any]:
    """CPU time, resident memory and GPU memory of every live process in the run's group."""
    pids = []
    if Path("/proc/self/stat").exists():
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                info = proc_info(int(entry.name))
                if info and info["pgrp"] == pgid and info["state"] != "Z":
                    pids.append((int(entry.name), info))
    else:
        info = proc_info(pgid)
        pids = [(pgid, info)] if info else []
    gpu = gpumod.memory_by_pid()
    return {
        "processes": len(pids),
        "pids": [p for p, _ in pids],
        "cpu_s": round(sum(i["cpu_s"] or 0 for _, i in pids), 2),
        "rss_mib": round(sum(i["rss_mib"] or 0 for _, i in pids), 1),
        "gpu_mem_mib": round(sum(gpu.get(p, 0.0) for p, _ in pids), 1) if gpu else None,
    }


def is_ours(meta: dict[str, Any]) -> bool:
    """True while the recorded pid is alive and is still the process `start` launched."""
    pid = meta.get("pid")
    if not pid:
        return False
    info = proc_info(pid)
    return bool(info and info["state"] != "Z" and info["start"] == meta.get("pid_start")
                and info["pgrp"] == meta.get("pgid"))


# --------------------------------------------------------------------------- start

def _check_entry(repo: Path, command: str) -> None:
    """`python missing.py` is bad input, not a run that fails a second later."""
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise CkError(f"cannot parse --command: {exc}", field="--command") from None
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        words.pop(0)
    if not words:
        raise CkError("--command is empty", field="--command", hint='e.g. --command "python train.py --epochs 3"')
    if re.fullmatch(r"python(3(\.\d+)?)?", Path(words[0]).name):
        script = next((w for w in words[1:] if not w.startswith("-")), None)
        if words[1:2] == ["-m"] or words[1:2] == ["-c"]:
            return
        if script and script.endswith(".py") and not (repo / script).is_file():
            raise CkError(f"entry point {script} not found in {repo}", field="--command",
                          hint="`ck launch detect REPO --json` lists the entry points")


def _wandb_api_key_present() -> bool:
    """Whether wandb can log in without asking (env var or ~/.netrc). The key itself is never read out."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc")).expanduser()
    try:
        import netrc as _netrc

        hosts = _netrc.netrc(str(netrc)).hosts
    except (OSError, _netrc.NetrcParseError):
        return False
    base = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    host = re.sub(r"^https?://", "", base).split("/")[0]
    return host in hosts


def wandb_mode_for_launch() -> str | None:
    """'offline' when no API key is available and the user did not choose a mode."""
    if os.environ.get("WANDB_MODE"):
        return None
    return None if _wandb_api_key_present() else "offline"


def start(repo: str | Path, command: str, *, gpus: str | None = None, env_name: str | None = None,
          python: str | None = None, wandb_project: str | None = None, wait_s: float = 5.0,
          tail: int = 20) -> dict[str, Any]:
    repo = Path(repo).expanduser()
    if not repo.is_dir():
        raise CkError(f"repository not found: {repo} is not a directory", field="REPO")
    repo = repo.resolve()
    if not command or not command.strip():
        raise CkError("--command is empty", field="--command", hint='e.g. --command "python train.py --epochs 3"')
    _check_entry(repo, command)
    run = envmod.runner(repo, env_name, python)
    cuda = gpumod.resolve(gpus)

    variables: dict[str, str] = {"PYTHONUNBUFFERED": "1"}
    if cuda is not None:
        variables["CUDA_VISIBLE_DEVICES"] = cuda
    if wandb_project:
        variables["WANDB_PROJECT"] = wandb_project
    if (mode := wandb_mode_for_launch()) is not None:
        variables["WANDB_MODE"] = mode

    resolved = command
    if run["python"]:
        resolved = _LEADING_PYTHON.sub(lambda m: m.group(1) + shlex.quote(run["python"]), command, count=1)

    run_id = state.new_run_id(repo)
    folder = state.launch_home() / run_id
    folder.mkdir(parents=True, exist_ok=False)
    log = folder / state.LOG
    wrapper = folder / state.WRAPPER
    atomic_write_text(wrapper, render(
        "launch/run.sh.j2", run_id=run_id, repo=str(repo), env=variables, command=resolved,
        prefix=run["prefix"], path_prepend=run.get("path_prepend"), virtual_env=run.get("virtual_env"),
        wrapper=str(wrapper), log=str(log), exit_file=str(folder / state.EXIT),
        exit_tmp=str(folder / (state.EXIT + ".tmp"))), mode=0o755)

    started_at = time.time()
    meta: dict[str, Any] = {
        "run_id": run_id, "repo": str(repo), "command": command, "resolved_command": resolved,
        "environment": {k: run[k] for k in ("kind", "name")}, "env_vars": variables,
        "gpus": cuda, "wandb_project": wandb_project, "log": str(log), "wrapper": str(wrapper),
        "state_dir": str(folder), "started_at": started_at,
        "started": _dt.datetime.fromtimestamp(started_at).isoformat(timespec="seconds"),
        "pid": None, "pgid": None, "pid_start": None, "exit_code": None, "ended_at": None,
    }
    state.write_meta(folder, meta)

    launcher = ["nohup", "bash", str(wrapper)] if shutil.which("nohup") else ["bash", str(wrapper)]
    with open(log, "ab") as out:
        # New session: the run outlives ck and the terminal, and is one process group to signal.
        proc = subprocess.Popen(launcher, cwd=str(repo), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    info = proc_info(proc.pid)
    atomic_write_text(folder / state.PID, f"{proc.pid}\n")
    meta = state.update_meta(folder, pid=proc.pid, pgid=proc.pid,
                             pid_start=info["start"] if info else None)

    deadline = time.monotonic() + max(wait_s, 0.0)
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.poll()  # reap it here if it already ended, so it is not left a zombie of this process
    result = status(run_id, tail=tail)
    result.update({"run_id": run_id, "pid": proc.pid, "log": str(log), "waited_s": wait_s})
    return result


# --------------------------------------------------------------------------- status / logs / stop

def tail_lines(path: Path, n: int) -> list[str]:
    if n <= 0 or not path.exists():
        return []
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        chunk, data = 8192, b""
        while size > 0 and data.count(b"\n") <= n:
            step = min(chunk, size)
            size -= step
            fh.seek(size)
            data = fh.read(step) + data
            chunk *= 2
    return data.decode("utf-8", errors="replace").splitlines()[-n:]


def _signal_name(code: int | None) -> str | None:
    if code is None or not 128 < code <= 128 + 64:
        return None
    try:
        return signal.Signals(code - 128).name
    except ValueError:
        return None


def status(run_id: str, *, tail: int = 0) -> dict[str, Any]:
    folder = state.run_dir(run_id)
    meta = state.read_meta(folder)
    record = state.read_exit(folder)
    alive = record is None and is_ours(meta)
    now = time.time()

    if record is not None and meta.get("exit_code") is None:
        meta = state.update_meta(folder, exit_code=record["exit_code"], ended_at=record["ended_at"])
    elif record is None and not alive and meta.get("pid") and meta.get("ended_at") is None:
        # Wrapper gone without a record: SIGKILLed (OOM killer, kill -9) — the time is when we noticed.
        meta = state.update_meta(folder, ended_at=now, ended_at_approx=True)

    exit_code = meta.get("exit_code")
    if alive:
        run_state = "running" if meta.get("pid") else "starting"
    elif meta.get("stopped_by"):
        run_state = "stopped"
    elif exit_code is None:
        run_state = "killed" if meta.get("pid") else "starting"
    else:
        run_state = "succeeded" if exit_code == 0 else ("killed" if _signal_name(exit_code) else "failed")

    ended = meta.get("ended_at")
    log = Path(meta["log"])
    out: dict[str, Any] = {
        "run_id": run_id, "alive": alive, "state": run_state, "pid": meta.get("pid"),
        "exit_code": exit_code, "signal": _signal_name(exit_code),
        "elapsed_s": round(((ended if ended and not alive else now) - meta["started_at"]), 1),
        "started": meta.get("started"), "ended_at": ended, "command": meta["command"], "repo": meta["repo"],
        "gpus": meta.get("gpus"), "wandb_project": meta.get("wandb_project"),
        "log": str(log), "state_dir": str(folder),
        "last_output_s_ago": round(now - log.stat().st_mtime, 1) if log.exists() else None,
    }
    if meta.get("stopped_by"):
        out["stopped_by"] = meta["stopped_by"]
    if alive:
        out["resources"] = group_usage(meta["pgid"])
    if tail:
        out["log_tail"] = tail_lines(log, tail)
    return out


def logs(run_id: str, *, tail: int = 50) -> dict[str, Any]:
    folder = state.run_dir(run_id)
    meta = state.read_meta(folder)
    return {"run_id": run_id, "log": meta["log"], "lines": tail_lines(Path(meta["log"]), tail)}


def follow(run_id: str, out=sys.stdout, poll_s: float = 0.5) -> None:
    """Print new log output until the run ends (like tail -f, but stops on its own)."""
    folder = state.run_dir(run_id)
    meta = state.read_meta(folder)
    with open(meta["log"], "rb") as fh:
        while True:
            chunk = fh.read()
            if chunk:
                out.write(chunk.decode("utf-8", errors="replace"))
                out.flush()
            elif state.read_exit(folder) is not None or not is_ours(meta):
                out.write(fh.read().decode("utf-8", errors="replace"))
                return
            else:
                time.sleep(poll_s)


def stop(run_id: str, *, timeout_s: float = 15.0) -> dict[str, Any]:
    folder = state.run_dir(run_id)
    meta = state.read_meta(folder)
    if state.read_exit(folder) is not None or not is_ours(meta):
        current = status(run_id)
        raise CkError(
            f"run {run_id} is not running (state {current['state']}, exit code {current['exit_code']})",
            field="RUN_ID", hint=f"nothing to stop; see `ck launch diagnose {run_id}`")
    pgid = meta["pgid"]
    state.update_meta(folder, stopped_by="ck launch stop", stop_requested_at=time.time())
    sent = "SIGTERM"
    os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and is_ours(meta):
        time.sleep(0.1)
    if is_ours(meta):  # checked again right before: never SIGKILL a pid that was reused
        sent = "SIGKILL"
        os.killpg(pgid, signal.SIGKILL)
        while is_ours(meta):
            time.sleep(0.05)
    result = status(run_id)
    result.update({"stopped": True, "signal_sent": sent})
    return result


def list_runs() -> list[dict[str, Any]]:
    out = []
    for folder in state.all_runs():
        try:
            s = status(folder.name)
        except CkError:
            continue
        out.append({k: s[k] for k in ("run_id", "state", "alive", "exit_code", "elapsed_s", "started", "command", "repo")})
    return sorted(out, key=lambda r: r["started"] or "")
