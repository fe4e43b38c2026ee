"""`ck run --detach`: a background supervisor with nohup semantics.

It is simply `python -m cruijff_kit run DIR ...` in its own session (so closing the terminal or
killing the parent does not touch it), output to EXP/.ck/supervisor.log, pid in
EXP/.ck/supervisor.pid. Killing it (even kill -9) loses nothing: the ledger has every job id and
`ck run DIR` re-attaches.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from ..errors import CkError
from ..executors.core import Executor
from .ledger import lock_holder

START_WAIT_S = 15.0


def supervisor_argv(exp: Path, executor: Executor, *, only: str | None, poll_s: float,
                    retry_failed: bool, runs: str | None = None, analyze: bool = False,
                    notify: str | None = None) -> list[str]:
    # Name the resolved executor (not "auto"): the supervisor must drive the same backend.
    argv = ["run", str(exp), "--executor", executor.name, "--poll", str(poll_s)]
    argv += (["--runs", runs] if runs else []) + (["--analyze"] if analyze else []) \
        + (["--notify", notify] if notify else [])
    if only:
        argv += ["--only", only]
    if retry_failed:
        argv.append("--retry-failed")
    if getattr(executor, "max_parallel", None):
        argv += ["--max-parallel", str(executor.max_parallel)]
    gpus = getattr(executor, "gpus", None)
    if gpus is not None:
        argv += ["--gpus", ",".join(gpus) if gpus else "none"]
    return argv


def spawn(exp: Path, argv: list[str]) -> dict:
    holder = lock_holder(exp)
    if holder:
        raise CkError(f"another `ck run` is already monitoring this experiment ({holder})",
                      file=exp / ".ck" / "lock", hint="watch it with `ck status`")
    ck_dir = exp / ".ck"
    ck_dir.mkdir(parents=True, exist_ok=True)
    log_path, pid_path = ck_dir / "supervisor.log", ck_dir / "supervisor.pid"
    with open(log_path, "ab") as log:
        log.write(f"\n=== ck run --detach at {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen([sys.executable, "-m", "cruijff_kit", *argv], cwd=str(exp),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    pid_path.write_text(f"{proc.pid}\n")
    # Return once the supervisor holds the monitor lock (or report why it died).
    lock_file = ck_dir / "lock"
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").splitlines()[-15:]
            if proc.returncode == 0:
                break  # finished already (nothing to do)
            raise CkError("the background supervisor exited at once (exit code "
                          f"{proc.returncode}):\n" + "\n".join(tail), file=log_path)
        try:
            if lock_file.read_text().startswith(f"pid {proc.pid} "):
                break
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    return {"detached": True, "pid": proc.pid, "pid_file": str(pid_path), "log": str(log_path),
            "experiment": str(exp)}


def supervisor_pid(exp: Path) -> int | None:
    try:
        return int((exp / ".ck" / "supervisor.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def pid_running(pid: int) -> bool:
    from ..executors.local.procs import is_alive

    return is_alive(pid)  # zombies count as dead (os.kill(pid, 0) would say alive)
