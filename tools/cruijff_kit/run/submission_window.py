"""Submission window: how many of an experiment's jobs may be submitted now, and which.

Clusters cap the jobs one user may have submitted (pending + running) at once: a QOS with
MaxSubmitJobsPerUser=25 refuses the 26th sbatch. ck therefore keeps its submitted-but-unfinished
jobs within the smallest limit it knows (sacctmgr's, via the executor, and `slurm_max_submitted`
in claude.local.md), leaves the rest QUEUED in the ledger (no job id yet), and submits more as
jobs end. Order: every fine-tune first (they are the long part), then evaluations; an evaluation
is eligible only once its own training is submitted (it is then chained `afterok` to it) or has
finished (its checkpoint decides), so a limit smaller than one run's chain -- even 1 -- still
finishes: training first, then its evaluations.

A refusal because of a limit (other jobs of the user count too) is never a failure: the job stays
queued and is retried after `backoff_s`. `stagger_s` spaces submissions for sites that ask for it.

The orchestrator owns submitting and the ledger; this module only decides.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from ..errors import CkError
from ..executors.core import Executor, JobState
from ..util.formats import now_iso

QUEUED = JobState.QUEUED.value  # ledger state of a job ck will submit when the window has room


@dataclass
class SubmissionWindow:
    limit: int | None = None  # most jobs submitted-but-unfinished at once; None = no limit
    source: str = "no limit"
    stagger_s: float = 0.0
    backoff_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    queue: dict[str, str | None] = field(default_factory=dict)  # key -> its training's key, in order
    _blocked_until: float = float("-inf")
    _last_submit: float = float("-inf")

    # ---- what the orchestrator asks -----------------------------------------------------
    def holds(self, key: str, depends_on: str | None, n_live: int) -> bool:
        """Must `key` wait in the queue (no room, earlier jobs waiting, or its training still
        queued)? Jobs are decided in plan order, so a job never overtakes an earlier queued one."""
        if depends_on is not None and depends_on in self.queue:
            return True
        return bool(self.queue) or self.room(n_live) <= 0

    def room(self, n_live: int) -> int:
        if self.clock() < self._blocked_until:
            return 0
        return 1 << 30 if self.limit is None else self.limit - n_live

    def due(self, n_live: int) -> list[str]:
        """Queued keys to submit now, in queue order, at most `room`; an evaluation only after its
        training left the queue."""
        n = self.room(n_live)
        out: list[str] = []
        if n <= 0:
            return out
        for key, dep in self.queue.items():
            if dep is not None and dep in self.queue:
                continue
            out.append(key)
            if len(out) >= n:
                break
        return out

    def pause(self) -> float:
        """Seconds to wait before the next submission (the stagger)."""
        if self.stagger_s <= 0:
            return 0.0
        return max(0.0, self._last_submit + self.stagger_s - self.clock())

    # ---- what the orchestrator tells it ------------------------------------------------
    def add(self, key: str, depends_on: str | None) -> None:
        self.queue[key] = depends_on

    def discard(self, key: str) -> None:
        self.queue.pop(key, None)

    def submitted(self) -> None:
        self._last_submit = self.clock()

    def refused(self) -> None:
        """The scheduler said 'limit reached' (jobs outside this experiment count too)."""
        self._blocked_until = self.clock() + self.backoff_s

    def describe(self) -> str:
        if self.limit is None:
            return "no submission limit known"
        return f"at most {self.limit} job(s) submitted at once ({self.source})"


def configured_stagger(exp_dir: str | Path) -> float:
    """`slurm_submit_stagger` (seconds between two submissions) from claude.local.md; 0 when unset."""
    from ..localconfig import load_local_config

    exp = Path(exp_dir)
    return float(load_local_config(search=(exp, exp.parent)).slurm.submit_stagger or 0)


def configured_limit(exp_dir: str | Path) -> int | None:
    """`slurm_max_submitted` from claude.local.md (searched from the experiment upwards)."""
    from ..localconfig import load_local_config

    exp = Path(exp_dir)
    cfg = load_local_config(search=(exp, exp.parent))
    value = getattr(cfg.slurm, "max_submitted", None)
    if value is not None and value < 1:
        raise CkError(f"slurm_max_submitted must be at least 1, got {value}", file=cfg.path,
                      field="slurm_max_submitted")
    return value


def window_for(executor: Executor, exp_dir: str | Path, scripts: Iterable[Path], *,
               backoff_s: float = 30.0, stagger_s: float = 0.0) -> SubmissionWindow:
    """The window of one `ck run`: the smallest of the scheduler's limit (executors that have
    one: `submission_limit(scripts)`) and claude.local.md's slurm_max_submitted."""
    stagger_s = stagger_s or (configured_stagger(exp_dir) if executor.name == "slurm" else 0.0)

    found: list[tuple[int, str]] = []
    lim = executor.submission_limit(list(scripts))
    if lim.max_submitted is not None:
        found.append((lim.max_submitted, lim.source))
    if executor.name == "slurm":  # slurm_max_submitted is a SLURM setting
        configured = configured_limit(exp_dir)
        if configured is not None:
            found.append((configured, f"claude.local.md slurm_max_submitted={configured}"))
    if not found:
        return SubmissionWindow(backoff_s=backoff_s, stagger_s=stagger_s)
    n, source = min(found)
    return SubmissionWindow(limit=n, source=source, backoff_s=backoff_s, stagger_s=stagger_s)


def mark_queued(ledger, jobs: list, note: str | None = None) -> None:
    """Record in the ledger, in one write, that these (key, PlannedJob) wait for room: state
    QUEUED, no current job id (nothing was submitted; earlier attempts keep theirs)."""
    stamp = now_iso()
    with ledger.transaction() as data:
        for key, job in jobs:
            e = data["jobs"].setdefault(key, {"kind": job.kind, "run": job.run, "attempts": []})
            e.update(state=QUEUED, job_id=None, updated=stamp,
                     reason=note or "waiting for room under the submission limit")
