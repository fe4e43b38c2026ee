"""LocalExecutor: the SLURM contract (submit / afterok dependency / poll / cancel) on one machine.

Every job's state lives on disk under EXP/.ck/local/jobs/, so a supervisor that dies (even
kill -9) loses nothing: running jobs are in their own session and keep going, a tiny bash
wrapper writes their exit code when they end, and the next LocalExecutor re-attaches by
(pid, /proc start time). Files per job number N:

    N.job.json    what to run + launch facts (pid, start time, GPUs); rewritten atomically
    N.pid         written by the wrapper itself: covers a supervisor killed between fork and record
    N.exit        "<exit code> <epoch seconds>", written by the wrapper when the script ends
    N.cancel      cancel() was asked: a vanished process is CANCELLED, not FAILED
    N.final.json  the terminal state once decided (so it never changes afterwards)

Queued jobs start only inside poll() (the scheduler tick), i.e. while a supervisor runs.

State mapping: exit 0 -> COMPLETED; exit 137 (SIGKILL, what the kernel OOM killer sends) or an
out-of-memory message in the log tail -> OUT_OF_MEMORY (so `ck run` retries with a smaller batch);
other exits -> FAILED. #SBATCH --time is not enforced locally, so TIMEOUT never happens here.
"""
from __future__ import annotations

import functools
import json
import os
import re
import select
import subprocess
import time
from pathlib import Path
from typing import Sequence

from ...util import procs as util_procs
from ...util.fs import atomic_write_json, atomic_write_text, exclusive_lock
from ...errors import CkError
from ..core import Executor, JobInfo, JobSpec, JobState, SubmitError
from ..resources import Resources
from ...util.formats import epoch_iso, now_iso


@functools.lru_cache(maxsize=1)
def _wrapper() -> str:
    """The job wrapper (templates/local_job_wrapper.sh.j2): records the job's pid and exit code."""
    from ...templating import render

    return render("local_job_wrapper.sh.j2")

# What a process killed for memory looks like locally: SIGKILL from the kernel's OOM killer
# (bash reports 128+9) or PyTorch / the CPU allocator saying so in the log.
OOM_EXIT_CODES = {137}
OOM_PATTERNS = re.compile(
    r"CUDA out of memory|OutOfMemoryError|DefaultCPUAllocator: can't allocate memory"
    r"|\bMemoryError\b|oom-kill|Out of memory: Killed process"
)

_ID = re.compile(r"^local-(\d+)$")
CANCEL_GRACE_S = 5.0  # SIGTERM, then SIGKILL for what is left


def detect_gpus() -> list[str]:
    """GPU ids to hand out: CUDA_VISIBLE_DEVICES if set, else what nvidia-smi lists, else none."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    return [row[0] for row in util_procs.query_gpus(("index",), timeout=10).rows if row and row[0]]


def _gpus_wanted(rec: dict) -> int:
    """GPUs a job record asks for: its typed resources; a record an older ck queued has "gpus"."""
    try:
        return Resources.from_dict(rec["resources"]).gpus_per_node if "resources" in rec else int(rec.get("gpus") or 0)
    except (CkError, TypeError, ValueError):
        return 0  # a record edited into nonsense: run it on CPU rather than never


def _tail_text(path: Path, nbytes: int = 65536) -> str:
    return util_procs.tail_text(path, nbytes)


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, exp_dir: str | Path, max_parallel: int = 1,
                 gpus: list[str] | None = None) -> None:
        self.exp_dir = Path(exp_dir).resolve()
        self.state_dir = self.exp_dir / ".ck" / "local"
        self.jobs_dir = self.state_dir / "jobs"
        self.max_parallel = max(1, int(max_parallel))
        self.gpus = [str(g) for g in gpus] if gpus is not None else detect_gpus()
        self._children: dict[str, subprocess.Popen] = {}  # ours to reap (else they stay zombies)
        self._final: dict[str, JobInfo] = {}  # terminal states never change: cache them

    # ---- paths and records -------------------------------------------------------------
    def _num(self, job_id: str) -> int | None:
        m = _ID.match(job_id or "")
        return int(m.group(1)) if m else None

    def _file(self, n: int, suffix: str) -> Path:
        return self.jobs_dir / f"{n}.{suffix}"

    def _read_json(self, path: Path) -> dict | None:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None

    def _rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.exp_dir))
        except ValueError:
            return str(path)

    def _abs(self, text: str) -> Path:
        path = Path(text)
        return path if path.is_absolute() else self.exp_dir / path

    def _lock(self):
        return exclusive_lock(self.state_dir / "sched.lock", owner=f"pid {os.getpid()}",
                              blocking=True)

    # ---- interface ---------------------------------------------------------------------
    @classmethod
    def from_options(cls, exp_dir: str | Path, *, max_parallel: int | None = None,
                     gpus: list[str] | None = None) -> "LocalExecutor":
        return cls(exp_dir, max_parallel=max_parallel or 1, gpus=gpus)

    @classmethod
    def observer(cls, exp_dir: str | Path) -> "LocalExecutor":
        return cls(exp_dir, gpus=[])  # peek needs no GPU pool (and no nvidia-smi call)

    @classmethod
    def affinity(cls) -> int:
        return 0  # always works, preferred only when nothing better is here

    def settings(self) -> dict[str, object]:
        return {"max_parallel": self.max_parallel, "gpus": list(self.gpus)}

    def cli_args(self) -> list[str]:
        return ["--max-parallel", str(self.max_parallel), "--gpus", ",".join(self.gpus) or "none"]

    def submit_argv(self, spec: JobSpec, after: str | None = None) -> list[str]:
        return ["bash", str(Path(spec.script).name)]

    def find_tagged(self, tags: Sequence[str], since: str | None = None) -> dict[str, list[JobInfo]]:
        """Job records carrying each tag, finished ones included (records are never deleted)."""
        found: dict[str, list[tuple[int, str]]] = {t: [] for t in tags}
        if self.jobs_dir.is_dir():
            for path in self.jobs_dir.glob("*.job.json"):
                rec = self._read_json(path)
                if rec is not None and rec.get("tag") in found:
                    found[rec["tag"]].append((int(path.name.split(".")[0]), rec["job_id"]))
        return {t: [self._info(jid, decide=False) for _, jid in sorted(hits)] for t, hits in found.items()}

    def submit(self, spec: JobSpec, after: str | None = None) -> str:
        script = Path(spec.script)
        if not script.is_file():
            raise SubmitError(f"job script not found: {script}", file=script,
                              hint="run `ck scaffold` again to regenerate it")
        if spec.gpus and self.gpus and spec.gpus > len(self.gpus):
            raise SubmitError(
                f"{spec.key} asks for {spec.gpus} GPU(s) but the local pool has "
                f"{len(self.gpus)} ({','.join(self.gpus)})", field="--gpus",
                hint="give more GPU ids with --gpus or lower num_gpus in setup_finetune.yaml")
        if after is not None and self._num(after) is None:
            raise SubmitError(f"dependency {after!r} is not a local job id", field="after")
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        with self._lock():
            counter = self.state_dir / "counter"
            try:
                n = int(counter.read_text().strip()) + 1
            except (FileNotFoundError, ValueError):
                n = 1
            # Never reuse a number whose files exist (counter lost or edited by hand).
            while self._file(n, "job.json").exists():
                n += 1
            atomic_write_text(counter, f"{n}\n")
            job_id = f"local-{n}"
            atomic_write_json(self._file(n, "job.json"), {
                "job_id": job_id, "key": spec.key, "kind": spec.kind, "run": spec.run,
                "tag": spec.tag,
                # relative to the experiment: a copied or moved experiment runs its own scripts
                "script": self._rel(script.resolve()), "workdir": self._rel(script.resolve().parent),
                "resources": spec.resources.to_dict(), "env": dict(spec.env), "after": after,
                "submitted": now_iso(), "phase": "queued",
            })
        return job_id

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        with self._lock():
            self._reap()
            self._tick()
            return {jid: self._info(jid) for jid in job_ids}

    def peek(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        """States without starting anything (for `ck status`)."""
        return {jid: self._info(jid, decide=False) for jid in job_ids}

    def cancel(self, job_ids: Sequence[str]) -> None:
        with self._lock():
            for jid in job_ids:
                n = self._num(jid)
                rec = self._read_json(self._file(n, "job.json")) if n is not None else None
                if rec is None or self._info(jid).state.terminal:
                    continue
                self._file(n, "cancel").touch()
                if rec["phase"] == "queued":
                    self._finalize(n, JobInfo(jid, JobState.CANCELLED, reason="cancelled while queued",
                                              ended=now_iso()))
                    continue
                pid = self._pid(n, rec)
                if pid and util_procs.is_alive(pid, rec.get("pid_start")):
                    # the job is its own process group (its wrapper leads it): all of it, children too
                    util_procs.terminate(lambda: util_procs.find(lambda st: st.pgrp == pid), CANCEL_GRACE_S,
                                         poll_s=0.05, groups=[pid])
                self._reap()

    def wait(self, job_ids: Sequence[str], timeout: float) -> None:
        """Return as soon as one of the running jobs ends (its wrapper process exits after writing
        the exit record), or after `timeout`. The wait is one select() on pidfds, so it costs
        nothing while jobs run and the next queued job starts within a poll() of the end."""
        deadline = time.monotonic() + max(0.0, timeout)
        fds: list[int] = []
        try:
            for jid in job_ids:
                n = self._num(jid)
                if n is None or jid in self._final:
                    continue
                if self._exit(n) is not None:
                    return  # ended since the last poll: look now
                rec = self._read_json(self._file(n, "job.json"))
                if rec is None or rec.get("phase") == "queued":
                    continue
                pid = self._pid(n, rec)
                if pid is None or not self._ours(pid, jid, rec):
                    return  # gone without a record: the next poll decides its state
                try:
                    fds.append(os.pidfd_open(pid))
                except ProcessLookupError:
                    return
                except (AttributeError, OSError):  # no pidfds here: look at the exit records
                    return self._wait_by_looking(job_ids, deadline)
            if not fds:  # nothing runs (only queued jobs): the next poll starts them
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
                return
            select.select(fds, [], [], max(0.0, deadline - time.monotonic()))
        finally:
            for fd in fds:
                os.close(fd)

    def _wait_by_looking(self, job_ids: Sequence[str], deadline: float) -> None:
        while time.monotonic() < deadline:
            if any(self._num(j) is not None and self._exit(self._num(j)) is not None
                   and j not in self._final for j in job_ids):
                return
            time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))

    # ---- state -------------------------------------------------------------------------
    def _reap(self) -> None:
        for jid, child in list(self._children.items()):
            if child.poll() is not None:
                del self._children[jid]

    def _pid(self, n: int, rec: dict) -> int | None:
        if rec.get("pid"):
            return int(rec["pid"])
        try:  # supervisor died between fork and recording: the wrapper wrote its own pid
            return int(self._file(n, "pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _finalize(self, n: int, info: JobInfo) -> JobInfo:
        atomic_write_json(self._file(n, "final.json"), {
            "state": info.state.value, "exit_code": info.exit_code, "ended": info.ended,
            "reason": info.reason,
        })
        self._final[info.job_id] = info
        return info

    def _info(self, jid: str, decide: bool = True) -> JobInfo:
        """State of one job from its files. With `decide`, terminal states are written down."""
        if jid in self._final:
            return self._final[jid]
        n = self._num(jid)
        rec = self._read_json(self._file(n, "job.json")) if n is not None else None
        if rec is None:
            return JobInfo(jid, JobState.UNKNOWN, reason="no such local job")
        log = self._abs(rec["workdir"]) / f"slurm-{jid}.out"
        base = dict(job_id=jid, started=rec.get("started"), log=log)
        final = self._read_json(self._file(n, "final.json"))
        if final is not None:
            info = JobInfo(state=JobState(final["state"]), exit_code=final.get("exit_code"),
                           ended=final.get("ended"), reason=final.get("reason"), **base)
            self._final[jid] = info
            return info
        if rec["phase"] == "queued":
            waiting = rec.get("after") and self._info(rec["after"], decide).state is not JobState.COMPLETED
            return JobInfo(state=JobState.PENDING, reason="Dependency" if waiting else "Resources", **base)

        ended = self._exit(n)
        if ended is None:
            pid = self._pid(n, rec)
            if pid is not None and self._ours(pid, jid, rec):
                return JobInfo(state=JobState.RUNNING, **base)
            ended = self._exit(n)  # it may have finished between the two looks
        cancelled = self._file(n, "cancel").exists()
        if ended is not None:
            rc, end = ended
            if rc == 0:
                info = JobInfo(state=JobState.COMPLETED, exit_code=0, ended=end, **base)
            elif cancelled:
                info = JobInfo(state=JobState.CANCELLED, exit_code=rc, ended=end, reason="cancelled", **base)
            elif rc in OOM_EXIT_CODES or OOM_PATTERNS.search(_tail_text(log)):
                info = JobInfo(state=JobState.OUT_OF_MEMORY, exit_code=rc, ended=end,
                               reason=f"exit code {rc}: out of memory", **base)
            else:
                why = f"killed by signal {rc - 128}" if rc > 128 else f"exit code {rc}"
                info = JobInfo(state=JobState.FAILED, exit_code=rc, ended=end, reason=why, **base)
        elif cancelled:
            info = JobInfo(state=JobState.CANCELLED, ended=now_iso(), reason="cancelled", **base)
        elif rec["phase"] == "launching" and self._pid(n, rec) is None and not self._file(n, "pid").exists():
            info = JobInfo(state=JobState.FAILED, ended=now_iso(),
                           reason="launch interrupted (supervisor died while starting it)", **base)
        else:
            info = JobInfo(state=JobState.FAILED, ended=now_iso(),
                           reason="process ended without recording an exit code (killed?)", **base)
        return self._finalize(n, info) if decide else info

    def _exit(self, n: int) -> tuple[int, str] | None:
        try:
            rc, epoch = self._file(n, "exit").read_text().split()[:2]
            return int(rc), epoch_iso(float(epoch))
        except (FileNotFoundError, ValueError):
            return None

    def _ours(self, pid: int, jid: str, rec: dict) -> bool:
        if rec.get("pid_start") is not None and int(rec.get("pid", 0)) == pid:
            return util_procs.is_alive(pid, rec["pid_start"])
        return util_procs.is_alive(pid) and util_procs.has_env(pid, "CK_LOCAL_JOB_ID", jid)

    # ---- scheduling --------------------------------------------------------------------
    def _records(self) -> list[tuple[int, dict]]:
        out = []
        if not self.jobs_dir.is_dir():
            return out
        for path in self.jobs_dir.glob("*.job.json"):
            n = int(path.name.split(".")[0])
            if f"local-{n}" in self._final or self._file(n, "final.json").exists():
                continue
            rec = self._read_json(path)
            if rec is not None:
                out.append((n, rec))
        return sorted(out, key=lambda item: item[0])

    def _tick(self) -> None:
        active = self._records()
        busy_gpus: set[str] = set()
        running = 0
        for n, rec in active:
            if rec["phase"] != "queued" and not self._info(rec["job_id"]).state.terminal:
                running += 1
                busy_gpus.update(rec.get("assigned_gpus") or [])
        for n, rec in active:
            if rec["phase"] != "queued":
                continue
            jid = rec["job_id"]
            if rec.get("after"):
                dep = self._info(rec["after"])
                if dep.state is JobState.COMPLETED:
                    pass
                elif dep.state.terminal or dep.state is JobState.UNKNOWN:
                    self._finalize(n, JobInfo(jid, JobState.DEPENDENCY_NEVER_SATISFIED, ended=now_iso(),
                                              reason=f"dependency {rec['after']} ended {dep.state.value}"))
                    continue
                else:
                    continue
            if running >= self.max_parallel:
                continue
            want = _gpus_wanted(rec)
            if want and self.gpus:
                free = [g for g in self.gpus if g not in busy_gpus]
                if len(free) < want:
                    continue  # a later, smaller job may still fit (backfill)
                assigned = free[:want]
            else:
                assigned = []  # CPU job, or no GPUs here at all: run on CPU
            self._launch(n, rec, assigned)
            busy_gpus.update(assigned)
            running += 1

    def _launch(self, n: int, rec: dict, assigned: list[str]) -> None:
        jid = rec["job_id"]
        rec.update(phase="launching", assigned_gpus=assigned, started=now_iso())
        atomic_write_json(self._file(n, "job.json"), rec)  # before fork: never launched twice
        env = dict(os.environ)
        env.update({str(k): str(v) for k, v in (rec.get("env") or {}).items()})
        workdir, script = str(self._abs(rec["workdir"])), str(self._abs(rec["script"]))
        env.update(SLURM_SUBMIT_DIR=workdir, SLURM_JOB_ID=jid, CK_LOCAL_JOB_ID=jid,
                   CUDA_VISIBLE_DEVICES=",".join(assigned))
        log = Path(workdir) / f"slurm-{jid}.out"
        try:
            child = util_procs.start_detached(
                ["bash", "-c", _wrapper(), "ck-local-job", script,
                 str(self._file(n, "exit")), str(self._file(n, "pid"))],
                cwd=workdir, log=log, env=env)
        except OSError as exc:
            self._finalize(n, JobInfo(jid, JobState.FAILED, ended=now_iso(), reason=f"could not start: {exc}"))
            return
        self._children[jid] = child
        rec.update(phase="launched", pid=child.pid, pid_start=util_procs.start_time(child.pid))
        atomic_write_json(self._file(n, "job.json"), rec)
