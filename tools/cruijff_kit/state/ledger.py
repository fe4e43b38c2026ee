"""EXP/.ck/ledger.json: every job id ever submitted for this experiment, and what became of it.

One entry per job key:

    {"kind", "run", "executor", "job_id", "state", "reason", "found", "updated",
     "intent": {...} (only between "about to submit" and "submitted"),
     "attempts": [{"job_id", "tag", "submitted", "started", "ended", "exit_code", "state", "reason",
                   "sbatch_args", "overrides", "after"}]}

`state` is a JobState value (executors/core.py) or null; nothing else carries meaning.

Exactly once: the orchestrator records an *intent* (with the submission's tag) before it submits
and replaces it with the job id after; a crash in between leaves the intent, and the next `ck run`
asks the scheduler for jobs carrying that tag instead of submitting again.

Cost: a change is applied to the in-memory document inside `transaction()`, which reads once and
writes once (atomic rename, fsync'd: the file holds job ids that must survive a power cut). The
monitor batches a whole poll cycle into one transaction, so N jobs changing state cost one write.
The long-lived monitor lock (EXP/.ck/lock) is separate: it says "someone is running this
experiment". Readers (`ck status`) never write, not even to a lock file.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import CkError
from ..executors.core import JobInfo, JobState
from ..util.fs import LockHeld, atomic_write_json, exclusive_lock
from . import layout
from ..util.formats import duration_short, now_iso, parse_time, seconds_between

VERSION = 1
MAX_LEDGER_BYTES = 256 * 1024 * 1024  # a ledger of a million jobs is ~0.5 GB; refuse beyond sane


def entry_state(entry: dict | None) -> JobState | None:
    """The entry's JobState (validated when the ledger was read)."""
    return JobState.parse((entry or {}).get("state"))


def is_live(entry: dict | None) -> bool:
    state = entry_state(entry)
    return bool(state is not None and state.live and (entry or {}).get("job_id"))


def _shape_error(path: Path, what: str) -> CkError:
    return CkError(f"ledger has the wrong shape: {what}", file=path,
                   hint="fix or move it aside; job ids in it may still be running")


def validate(data: object, path: Path) -> dict:
    if not isinstance(data, dict):
        raise _shape_error(path, f"top level is a {type(data).__name__}, not an object")
    version = data.get("version", VERSION)
    if not isinstance(version, int) or version > VERSION:
        raise _shape_error(path, f"version {version!r} (this ck writes version {VERSION})")
    jobs = data.setdefault("jobs", {})
    if not isinstance(jobs, dict):
        raise _shape_error(path, "'jobs' is not an object")
    for key, e in jobs.items():
        if not isinstance(e, dict):
            raise _shape_error(path, f"jobs[{key!r}] is not an object")
        try:
            JobState.parse(e.get("state"))
        except ValueError:
            raise _shape_error(path, f"jobs[{key!r}].state {e.get('state')!r} is not a job state") from None
        if not isinstance(e.setdefault("attempts", []), list) or not all(
                isinstance(a, dict) for a in e["attempts"]):
            raise _shape_error(path, f"jobs[{key!r}].attempts is not a list of objects")
        if e.get("job_id") is not None and not isinstance(e["job_id"], str):
            raise _shape_error(path, f"jobs[{key!r}].job_id is not a string")
        if "intent" in e and not isinstance(e["intent"], dict):
            raise _shape_error(path, f"jobs[{key!r}].intent is not an object")
    return data


@dataclass(frozen=True)
class Attempt:
    """One submission of a job, as the ledger recorded it."""
    job_id: str | None
    state: JobState | None
    started: str | None = None
    ended: str | None = None
    exit_code: int | None = None

    @classmethod
    def from_dict(cls, d: dict) -> "Attempt":
        try:
            state = JobState.parse(d.get("state"))
        except ValueError:
            state = None
        code = d.get("exit_code")
        return cls(d.get("job_id"), state, d.get("started"), d.get("ended"),
                   code if isinstance(code, int) else None)

    @property
    def seconds(self) -> float | None:
        """Wall time from start to end (None unless both are known and in order)."""
        try:
            s = seconds_between(self.started, self.ended)
        except (TypeError, ValueError):
            return None
        return s if s is not None and s > 0 else None


@dataclass(frozen=True)
class Entry:
    """A job key's ledger entry, typed (the ledger's JSON stays the record; see the module doc)."""
    key: str
    kind: str
    run: str
    state: JobState | None
    job_id: str | None
    attempts: tuple[Attempt, ...]

    @classmethod
    def from_dict(cls, key: str, d: dict) -> "Entry":
        return cls(key, str(d.get("kind") or ""), str(d.get("run") or key.split("/")[0]), entry_state(d),
                   d.get("job_id"), tuple(Attempt.from_dict(a) for a in d.get("attempts") or ()))

    @property
    def completed(self) -> bool:
        return self.state is JobState.COMPLETED

    @property
    def last(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None


class Ledger:
    def __init__(self, exp_dir: str | Path) -> None:
        self.exp_dir = Path(exp_dir)
        self.path = self.exp_dir / layout.CK_DIR / layout.LEDGER
        self._lock_path = self.exp_dir / layout.CK_DIR / "ledger.lock"

    def read(self) -> dict:
        try:
            with open(self.path, "rb") as fh:
                raw = fh.read(MAX_LEDGER_BYTES + 1)
        except FileNotFoundError:
            return {"version": VERSION, "jobs": {}}
        except OSError as exc:
            raise CkError(f"cannot read the ledger ({exc.strerror or exc})", file=self.path) from None
        if len(raw) > MAX_LEDGER_BYTES:
            raise CkError(f"ledger is larger than {MAX_LEDGER_BYTES >> 20} MiB", file=self.path)
        try:
            data = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            # Never overwrite it: it holds job ids that may still be running.
            raise CkError(f"ledger is not valid JSON ({exc})", file=self.path,
                          hint="fix or move it aside; job ids in it may still be running") from None
        return validate(data, self.path)

    def jobs(self) -> dict[str, dict]:
        return self.read()["jobs"]

    def entry(self, key: str) -> dict | None:
        return self.jobs().get(key)

    def entries(self) -> dict[str, Entry]:
        """Every entry, typed (read-only users: estimates, reports)."""
        return {k: Entry.from_dict(k, e) for k, e in self.jobs().items()}

    def write(self, data: dict) -> None:
        data["version"] = VERSION
        try:
            atomic_write_json(self.path, data)
        except OSError as exc:
            raise CkError(f"cannot write the ledger ({exc.strerror or exc})", file=self.path,
                          hint="is the experiment directory writable?") from None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[dict]:
        """Read, let the caller change the document, write it once. Callers open one only when
        they have something to change."""
        try:
            lock = exclusive_lock(self._lock_path, owner=f"pid {os.getpid()}", blocking=True)
            lock.__enter__()
        except OSError as exc:
            raise CkError(f"cannot lock the ledger ({exc.strerror or exc})", file=self._lock_path,
                          hint="is the experiment directory writable?") from None
        try:
            data = self.read()
            yield data
            self.write(data)
        finally:
            lock.__exit__(None, None, None)

    # ---- changes to a document (inside a transaction) --------------------------------------
    @staticmethod
    def apply_intent(data: dict, key: str, *, kind: str, run: str, executor: str, tag: str,
                     after: str | None = None, sbatch_args=(), overrides: dict | None = None,
                     note: str | None = None) -> None:
        e = data["jobs"].setdefault(key, {"kind": kind, "run": run, "attempts": []})
        e["intent"] = {"tag": tag, "executor": executor, "at": now_iso(), "after": after,
                       "sbatch_args": list(sbatch_args), "overrides": dict(overrides or {}), "note": note}

    @staticmethod
    def apply_submit(data: dict, key: str, job_id: str, *, kind: str | None = None,
                     run: str | None = None, executor: str | None = None, after: str | None = None,
                     sbatch_args=(), overrides: dict | None = None, note: str | None = None,
                     tag: str | None = None, state: JobState = JobState.PENDING) -> None:
        """The id is known: it must never be lost. Takes the details from the intent if any."""
        e = data["jobs"].setdefault(key, {"kind": kind, "run": run, "attempts": []})
        intent = e.pop("intent", None) or {}
        stamp = now_iso()
        executor = executor or intent.get("executor")
        note = note if note is not None else intent.get("note")
        e.update(executor=executor, job_id=job_id, state=state.value, reason=note, updated=stamp)
        e.pop("found", None)
        e.pop("note", None)
        e["attempts"].append({
            "job_id": job_id, "tag": tag or intent.get("tag"), "submitted": stamp, "started": None,
            "ended": None, "exit_code": None, "state": state.value, "reason": note,
            "after": after if after is not None else intent.get("after"),
            "sbatch_args": list(sbatch_args or intent.get("sbatch_args") or ()),
            "overrides": dict(overrides or intent.get("overrides") or {}),
        })

    @staticmethod
    def clear_queued(data: dict, key: str) -> None:
        """A queued job that will not be submitted after all (e.g. its training failed)."""
        e = data["jobs"].get(key)
        if e is not None and e.get("state") == JobState.QUEUED.value:
            if not e.get("attempts"):
                del data["jobs"][key]
            else:
                last = e["attempts"][-1]
                e.update(state=last.get("state"), job_id=last.get("job_id"), updated=now_iso())

    @staticmethod
    def clear_intent(data: dict, key: str) -> None:
        e = data["jobs"].get(key)
        if e is not None:
            e.pop("intent", None)
            if not e.get("attempts") and not e.get("state"):
                del data["jobs"][key]

    def apply_info(self, data: dict, key: str, info: JobInfo, reason: str | None = None) -> None:
        e = data["jobs"].get(key)
        if e is None or e.get("job_id") != info.job_id:
            return  # a newer attempt replaced it; keep the record of the current one
        a = next((a for a in reversed(e["attempts"]) if a.get("job_id") == info.job_id), None)
        why = reason or info.reason
        e.update(state=info.state.value, reason=why, updated=now_iso())
        if a is not None:
            a.update(state=info.state.value, reason=why)
            if info.started:
                a["started"] = a.get("started") or info.started
            if info.ended:
                a["ended"] = info.ended
            if info.exit_code is not None:
                a["exit_code"] = info.exit_code
            if info.log is not None:
                a["log"] = _rel(Path(info.log), self.exp_dir)

    @staticmethod
    def apply_found(data: dict, key: str, *, kind: str, run: str) -> None:
        """Artifacts exist but no job of ours made them (or the ledger was lost)."""
        data["jobs"][key] = {"kind": kind, "run": run, "executor": None, "job_id": None,
                             "state": JobState.COMPLETED.value, "reason": None, "found": True, "note": "found on disk",
                             "updated": now_iso(), "attempts": []}

    # ---- one change, one transaction (scripts and tests) --------------------------------
    def record_submit(self, key: str, *, kind: str, run: str, executor: str, job_id: str,
                      after: str | None = None, sbatch_args=(), overrides: dict | None = None,
                      note: str | None = None) -> None:
        with self.transaction() as data:
            self.apply_submit(data, key, job_id, kind=kind, run=run, executor=executor, after=after,
                              sbatch_args=sbatch_args, overrides=overrides, note=note)

    def record_info(self, key: str, info: JobInfo, reason: str | None = None) -> None:
        with self.transaction() as data:
            self.apply_info(data, key, info, reason)

def _rel(path: Path, root: Path) -> str:
    """Relative to the experiment when inside it: a moved or copied experiment stays coherent."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except (ValueError, OSError):
        return str(path)


def found_on_disk(entry: dict | None) -> bool:
    e = entry or {}
    return bool(e.get("found")) or e.get("note") == "found on disk"  # older ledgers: only the note


def duration(entry: dict | None) -> str:
    """'8m 2s' for the current attempt (running ones count up to now)."""
    if not entry or not entry.get("attempts"):
        return ""
    a = entry["attempts"][-1]
    if not a.get("started"):
        return ""
    try:
        state = JobState.parse(a.get("state"))
    except ValueError:
        state = None
    # a finished job without an end time (the scheduler forgot it; judged from disk) ends when its
    # final state was recorded: its duration must not grow with every `ck status`
    ended = a.get("ended") or (a.get("updated") or entry.get("updated") if state is not None and state.terminal else None)
    try:
        start = parse_time(a["started"])
        end = parse_time(ended) if ended else parse_time(now_iso())
    except (TypeError, ValueError):
        return ""
    if start is None or end is None:
        return ""
    return duration_short((end - start).total_seconds())


@contextlib.contextmanager
def monitor_lock(exp_dir: str | Path) -> Iterator[None]:
    """One monitor per experiment. The kernel drops the flock if the holder dies (kill -9)."""
    path = Path(exp_dir) / layout.CK_DIR / "lock"
    owner = f"pid {os.getpid()} on {socket.gethostname()} since {now_iso()}"
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(exclusive_lock(path, owner=owner))
        except LockHeld as held:
            raise CkError(f"another `ck run` is already monitoring this experiment ({held.holder})",
                          file=path, hint="watch it with `ck status`, or stop that process first") from None
        except OSError as exc:
            raise CkError(f"cannot take the monitor lock ({exc.strerror or exc})", file=path,
                          hint="is the experiment directory writable?") from None
        yield


def lock_holder(exp_dir: str | Path) -> str | None:
    """Who monitors the experiment now (None when nobody does). Read-only: opens the lock file
    for reading and tries a shared flock, so it neither creates nor writes the file."""
    path = Path(exp_dir) / layout.CK_DIR / "lock"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            return None
        return None
    finally:
        os.close(fd)
