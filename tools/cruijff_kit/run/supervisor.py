"""`ck run --detach`: a background supervisor with nohup semantics.

It is simply `python -m cruijff_kit run DIR ...` in its own session (so closing the terminal or
killing the parent does not touch it), output to EXP/.ck/supervisor.log, pid in
EXP/.ck/supervisor.pid. Killing it (even kill -9) loses nothing: the ledger has every job id and
`ck run DIR` re-attaches.

Whether a supervisor runs is the monitor lock's answer (a kernel flock, dropped when its holder
dies), not the pid file's: the pid file is written only once the new supervisor holds the lock,
so a second --detach that loses the race never overwrites the live supervisor's pid file.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from ..errors import CkError
from ..executors.core import Executor
from ..util import procs
from ..util.fs import atomic_write_text
from ..state.ledger import lock_holder
from ..state import layout

START_WAIT_S = 15.0


def supervisor_argv(exp: Path, executor: Executor, *, only: str | None, poll_s: float,
                    retry_failed: bool, runs: str | None = None, analyze: bool = False,
                    notify: str | None = None) -> list[str]:
    # Name the resolved executor (not "auto"): the supervisor must drive the same backend.
    argv = ["run", str(exp), "--executor", executor.name, "--poll", str(poll_s), *executor.cli_args()]
    argv += (["--runs", runs] if runs else []) + (["--analyze"] if analyze else []) \
        + (["--notify", notify] if notify else [])
    if only:
        argv += ["--only", only]
    if retry_failed:
        argv.append("--retry-failed")
    return argv


def spawn(exp: Path, argv: list[str]) -> dict:
    holder = lock_holder(exp)
    if holder:
        raise CkError(f"another `ck run` is already monitoring this experiment ({holder})",
                      file=exp / layout.CK_DIR / "lock", hint="watch it with `ck status`")
    ck_dir = exp / layout.CK_DIR
    log_path, pid_path = ck_dir / "supervisor.log", ck_dir / "supervisor.pid"
    try:
        ck_dir.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            log.write(f"\n=== ck run --detach at {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(argv)}\n".encode())
        proc = procs.start_detached([sys.executable, "-m", "cruijff_kit", *argv], cwd=exp, log=log_path)
    except OSError as exc:
        raise CkError(f"cannot start the background supervisor ({exc.strerror or exc})", file=log_path,
                      hint="is the experiment directory writable?") from None
    # Return once the supervisor holds the monitor lock (or report why it died).
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = _tail(log_path)
            if proc.returncode == 0:
                break  # finished already (nothing to do)
            raise CkError("the background supervisor exited at once (exit code "
                          f"{proc.returncode}):\n" + "\n".join(tail), file=log_path)
        if (lock_holder(exp) or "").startswith(f"pid {proc.pid} "):
            atomic_write_text(pid_path, f"{proc.pid}\n")
            break
        time.sleep(0.05)
    return {"detached": True, "pid": proc.pid, "pid_file": str(pid_path), "log": str(log_path),
            "experiment": str(exp)}


def _tail(path: Path, lines: int = 15) -> list[str]:
    return procs.tail_lines(path, lines, max_bytes=16384)


def supervisor_pid(exp: Path) -> int | None:
    try:
        return int((exp / layout.CK_DIR / "supervisor.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def supervisor_running(exp: Path, pid: int | None) -> bool:
    """The monitor lock is held by that pid (the kernel drops the lock when it dies)."""
    return bool(pid) and (lock_holder(exp) or "").startswith(f"pid {pid} ")
