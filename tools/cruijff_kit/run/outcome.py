"""The job-state vocabulary of `ck run` and `ck status`, typed: no meaning lives in note text.

- JobState (executors/core.py): what the scheduler says (PENDING, RUNNING, COMPLETED, FAILED, ...).
- Action: what this invocation did with a planned job (submit it, re-attach to it, ...).
- Verdict: what the job amounts to now, artifacts included (a job that exited 0 without its
  checkpoint or evaluation log is NO_ARTIFACT, not a result).

The ledger stores JobState values; the orchestrator and the status table derive everything else
from these enums (`verdict.ok`, `verdict.label`).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ..executors.core import JobState


class Action(str, enum.Enum):
    SUBMIT = "submit"
    REATTACH = "reattach"
    DONE = "done"
    SKIP = "skip"
    REFUSE = "refuse"
    QUEUE = "queue"  # waits for room under the submission limit
    HOLD = "hold"  # a search trial's job beyond the rung it was promoted to: waits for the search

    __hash__ = str.__hash__  # so Action.DONE and "done" are one set member / dict key
    __str__ = str.__str__


class Verdict(str, enum.Enum):
    DONE = "done"  # artifacts complete (and the ledger agrees)
    FOUND = "found on disk"  # artifacts complete, made by no job this ledger knows
    LIVE = "live"  # pending or running
    WOULD_SUBMIT = "would submit"  # dry run
    NO_ARTIFACT = "exit 0 but its artifact is missing or incomplete"
    FAILED = "failed"  # the scheduler's terminal state says why (FAILED, TIMEOUT, ...)
    DEPENDENCY_FAILED = "skipped: training failed"
    NO_CHECKPOINT = "no checkpoint"  # an evaluation whose checkpoint does not exist
    NOT_RETRIED = "failed earlier; --retry-failed resubmits it"
    SUBMIT_FAILED = "submit failed"
    QUEUED = "queued"  # not submitted yet: the submission limit is reached
    STALE = "not in the plan"  # a run directory the summary no longer lists
    WAITING = "waits for the search"  # a trial's job the search has not reached yet
    PRUNED = "pruned by the search"  # a trial the search stopped: its later jobs never run

    __hash__ = str.__hash__
    __str__ = str.__str__

    @property
    def ok(self) -> bool:
        # a pruned trial's jobs ended as the search planned: nothing is missing or to redo
        return self in (Verdict.DONE, Verdict.FOUND, Verdict.PRUNED)

    @property
    def blocking(self) -> bool:
        """Counts as a failure of the invocation (exit 1)."""
        return self in (Verdict.NO_ARTIFACT, Verdict.FAILED, Verdict.DEPENDENCY_FAILED,
                        Verdict.NO_CHECKPOINT, Verdict.NOT_RETRIED, Verdict.SUBMIT_FAILED)


@dataclass
class JobOutcome:
    key: str
    run: str
    kind: str
    label: str
    action: Action
    job_id: str | None = None
    state: JobState | None = None
    verdict: Verdict = Verdict.LIVE
    note: str | None = None  # for people only; never parsed

    @property
    def ok(self) -> bool:
        return self.verdict.ok

    def to_dict(self) -> dict:
        return {"key": self.key, "run": self.run, "kind": self.kind, "label": self.label,
                "action": self.action.value, "job_id": self.job_id,
                "state": self.state.value if self.state else None,
                "verdict": self.verdict.value, "note": self.note,
                # null while undecided (would submit, queued, live): false would read as a failure
                "ok": None if self.verdict in (Verdict.WOULD_SUBMIT, Verdict.QUEUED, Verdict.LIVE) else self.ok}


@dataclass
class RunReport:
    """What one `ck run` did. Detached runs fill `supervisor` and leave `jobs` empty."""

    exp_dir: str
    executor: str
    jobs: list[JobOutcome] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)  # job ids submitted by this invocation
    refused: list[str] = field(default_factory=list)  # runs --only inspect could not evaluate
    stale: list[str] = field(default_factory=list)  # run dirs not in the summary: not submitted
    unscaffolded: list[str] = field(default_factory=list)  # planned runs with no run dir
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)
    supervisor: dict | None = None  # --detach: pid, pid_file, log
    executor_reason: str = ""  # why this backend: flag, ledger, CK_EXECUTOR, affinity

    @property
    def detached(self) -> bool:
        return self.supervisor is not None

    @property
    def failed(self) -> list[JobOutcome]:
        if self.dry_run:
            return []
        return [j for j in self.jobs if j.verdict.blocking and j.action is not Action.REFUSE]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.refused

    def to_dict(self) -> dict:
        return {"experiment": self.exp_dir, "executor": self.executor,
                **({"executor_reason": self.executor_reason} if self.executor_reason else {}),
                "dry_run": self.dry_run,
                "detached": self.detached, "supervisor": self.supervisor,
                "submitted": self.submitted, "refused": self.refused, "stale": self.stale,
                "unscaffolded": self.unscaffolded, "warnings": self.warnings,
                "jobs": [j.to_dict() for j in self.jobs], "ok": self.ok}
