"""EXP/.ck/ledger.json: every job id ever submitted for this experiment, and what became of it.

One entry per job key:

    {"kind", "run", "executor", "job_id", "state", "reason", "note", "updated",
     "attempts": [{"job_id", "submitted", "started", "ended", "exit_code", "state", "reason",
                   "sbatch_args", "overrides", "after"}]}

Each change is read-modify-write under a short flock (EXP/.ck/ledger.lock) and an atomic
rename, so the file is always valid JSON and a crash loses at most the change in flight. The
long-lived monitor lock (EXP/.ck/lock) is separate: it says "someone is running this experiment".
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
from pathlib import Path
from typing import Iterator

from ..errors import CkError
from ..executors.core import JobInfo
from ..util.fs import LockHeld, atomic_write_text, exclusive_lock

VERSION = 1
LIVE_STATES = ("PENDING", "RUNNING", "UNKNOWN")


def now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


def encode(data: dict) -> str:
    """One job per line, each line C-encoded: a 1,000-job ledger is written in milliseconds
    (indent= would switch json to its pure-Python encoder, ~20x slower), and stays diffable."""
    jobs = data.get("jobs", {})
    head = {k: v for k, v in data.items() if k != "jobs"}
    lines = [json.dumps(k) + ": " + json.dumps(jobs[k], sort_keys=True) for k in sorted(jobs)]
    body = ",\n".join(lines)
    return (json.dumps(head, sort_keys=True)[:-1] + (", " if head else "") + '"jobs": {\n' + body
            + ("\n" if lines else "") + "}}\n")


class Ledger:
    def __init__(self, exp_dir: str | Path) -> None:
        self.exp_dir = Path(exp_dir)
        self.path = self.exp_dir / ".ck" / "ledger.json"
        self._lock_path = self.exp_dir / ".ck" / "ledger.lock"
        self._mem: dict | None = None  # set inside deferred(): the cycle's in-memory copy
        self._dirty = False

    def read(self) -> dict:
        if self._mem is not None:
            return self._mem
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"version": VERSION, "jobs": {}}
        try:
            data = json.loads(text)
        except ValueError as exc:
            # Never overwrite it: it holds job ids that may still be running.
            raise CkError(f"ledger is not valid JSON ({exc})", file=self.path,
                          hint="fix or move it aside; job ids in it may still be running") from None
        data.setdefault("jobs", {})
        return data

    def jobs(self) -> dict[str, dict]:
        return self.read()["jobs"]

    def entry(self, key: str) -> dict | None:
        return self.jobs().get(key)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[dict]:
        if self._mem is not None:  # inside deferred(): written once when the cycle ends
            yield self._mem
            self._dirty = True
            return
        with exclusive_lock(self._lock_path, owner=f"pid {os.getpid()}", blocking=True):
            data = self.read()
            yield data
            self._write(data)

    def _write(self, data: dict) -> None:
        data["version"] = VERSION
        atomic_write_text(self.path, encode(data))

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """One read and at most one write for all state changes of a monitor cycle (a 1,000-job
        experiment would otherwise rewrite the whole ledger per changed job). Submissions are
        still written the moment they happen (record_submit flushes)."""
        if self._mem is not None:
            yield
            return
        with exclusive_lock(self._lock_path, owner=f"pid {os.getpid()}", blocking=True):
            self._mem, self._dirty = self.read(), False
            try:
                yield
            finally:
                mem, dirty, self._mem = self._mem, self._dirty, None
                if dirty:
                    self._write(mem)

    # ---- changes -----------------------------------------------------------------------
    def record_submit(self, key: str, *, kind: str, run: str, executor: str, job_id: str,
                      after: str | None = None, sbatch_args=(), overrides: dict | None = None,
                      note: str | None = None) -> None:
        """Called the moment submit() returns: the id must never be lost."""
        stamp = now()
        with self.transaction() as data:
            e = data["jobs"].setdefault(key, {"kind": kind, "run": run, "attempts": []})
            e.update(executor=executor, job_id=job_id, state="PENDING", reason=note, updated=stamp)
            e.pop("note", None)
            e["attempts"].append({
                "job_id": job_id, "submitted": stamp, "started": None, "ended": None,
                "exit_code": None, "state": "PENDING", "reason": note, "after": after,
                "sbatch_args": list(sbatch_args), "overrides": dict(overrides or {}),
            })
        if self._mem is not None:  # never hold a job id only in memory
            self._write(self._mem)
            self._dirty = False

    def record_info(self, key: str, info: JobInfo, reason: str | None = None) -> None:
        with self.transaction() as data:
            e = data["jobs"].get(key)
            if e is None or e.get("job_id") != info.job_id:
                return  # a newer attempt replaced it; keep the record of the current one
            a = next((a for a in reversed(e["attempts"]) if a["job_id"] == info.job_id), None)
            why = reason or info.reason
            e.update(state=info.state.value, reason=why, updated=now())
            if a is not None:
                a.update(state=info.state.value, reason=why)
                if info.started:
                    a["started"] = a.get("started") or info.started
                if info.ended:
                    a["ended"] = info.ended
                if info.exit_code is not None:
                    a["exit_code"] = info.exit_code
                if info.log is not None:
                    a["log"] = str(info.log)

    def record_found(self, key: str, *, kind: str, run: str) -> None:
        """Artifacts exist but no job of ours made them (or the ledger was lost)."""
        with self.transaction() as data:
            data["jobs"][key] = {"kind": kind, "run": run, "executor": None, "job_id": None,
                                 "state": "COMPLETED", "reason": None, "note": "found on disk",
                                 "updated": now(), "attempts": []}


def duration(entry: dict | None) -> str:
    """'8m 2s' for the current attempt (running ones count up to now)."""
    if not entry or not entry.get("attempts"):
        return ""
    a = entry["attempts"][-1]
    if not a.get("started"):
        return ""
    try:
        start = _dt.datetime.fromisoformat(a["started"])
        end = _dt.datetime.fromisoformat(a["ended"]) if a.get("ended") else _dt.datetime.now()
    except ValueError:
        return ""
    return format_seconds((end - start).total_seconds())


def format_seconds(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h {m}m"
    return f"{m}m {s}s" if m else f"{s}s"


@contextlib.contextmanager
def monitor_lock(exp_dir: str | Path) -> Iterator[None]:
    """One monitor per experiment. The kernel drops the flock if the holder dies (kill -9)."""
    path = Path(exp_dir) / ".ck" / "lock"
    owner = f"pid {os.getpid()} on {socket.gethostname()} since {now()}"
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(exclusive_lock(path, owner=owner))
        except LockHeld as held:
            raise CkError(f"another `ck run` is already monitoring this experiment ({held.holder})",
                          file=path, hint="watch it with `ck status`, or stop that process first") from None
        yield


def lock_holder(exp_dir: str | Path) -> str | None:
    """Who monitors the experiment now (None when nobody does). Does not keep the lock."""
    try:
        with exclusive_lock(Path(exp_dir) / ".ck" / "lock", owner="probe"):
            return None
    except LockHeld as held:
        return held.holder or "another process"
