"""Process identity and liveness from /proc, so a new supervisor can tell its jobs from strangers.

A pid alone is not an identity (pids are reused); (pid, start time in clock ticks since boot)
is. The start time is field 22 of /proc/<pid>/stat and never changes for a process's life.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError, OSError):
        return None
    # comm (field 2) may hold spaces and ')'; everything after the LAST ')' is well formed.
    return raw[raw.rfind(")") + 2:].split()


def start_time(pid: int) -> int | None:
    fields = _stat_fields(pid)
    # after comm: fields[0] is state (field 3), so starttime (field 22) is fields[19]
    return int(fields[19]) if fields and len(fields) > 19 else None


def is_alive(pid: int, started: int | None = None) -> bool:
    """True when `pid` runs (zombies count as dead) and, if given, started at `started`."""
    fields = _stat_fields(pid)
    if not fields or fields[0] in ("Z", "X"):
        return False
    return started is None or int(fields[19]) == started


def has_env(pid: int, name: str, value: str) -> bool:
    """Whether the process's initial environment holds name=value (identity check fallback)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{name}={value}".encode() in environ.split(b"\0")


def kill_group(pgid: int, sig: int = signal.SIGTERM) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False
