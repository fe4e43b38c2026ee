"""What the orchestrator reports, as typed events; reporters decide where they go.

The orchestrator's control flow only calls `emit(Event(...))`. Reporters:
- TerminalReporter: one progress line per event (stdout, or stderr with --json),
- JsonLinesReporter: one JSON object per event (machine-readable progress),
- ActionLogReporter: the experiment's run-experiment.log / run-torchtune.log / run-inspect.log
  in the "[YYYY-MM-DD HH:MM:SS] ACTION: ..." format.
"""
from __future__ import annotations

import enum
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Protocol

from ..errors import CkError
from ..executors.core import JobState
from ..util.log import ActionLog


class EventType(str, enum.Enum):
    DISCOVERED = "discovered"  # the plan: counts of jobs
    STALE = "stale"  # a run directory not in the summary (not submitted)
    UNSCAFFOLDED = "unscaffolded"  # a planned run without a run directory
    RECONCILED = "reconciled"  # a submission found at the scheduler after a crash
    REATTACHED = "reattached"
    DONE = "done"  # nothing to do: artifacts complete
    NOT_RETRIED = "not_retried"
    SKIPPED = "skipped"  # an evaluation that cannot run (no checkpoint, training failed)
    REFUSED = "refused"  # --only inspect without a checkpoint
    WOULD_SUBMIT = "would_submit"
    SUBMITTED = "submitted"
    SUBMIT_FAILED = "submit_failed"
    SUBMIT_SUMMARY = "submit_summary"
    MONITORING = "monitoring"
    STATE = "state"  # a live job changed state (PENDING -> RUNNING)
    FINISHED = "finished"  # a job reached a terminal state
    COUNTS = "counts"
    PHASE_DONE = "phase_done"
    RECOVERY = "recovery"
    INTERRUPTED = "interrupted"
    COMPLETE = "complete"
    WARNING = "warning"
    SUBMISSION_LIMIT = "submission_limit"  # the limit this run keeps to
    QUEUED = "queued"  # a job waits for room under the submission limit
    SEARCH = "search"  # a search decision: a trial promoted, pruned, completed or failed at a rung
    HELD = "held"  # a trial's job waits for the search to promote the trial


@dataclass
class Event:
    type: EventType
    key: str | None = None
    run: str | None = None
    label: str | None = None
    kind: str | None = None  # finetune | eval
    job_id: str | None = None
    state: str | None = None  # JobState value or a display word (SUBMITTED, SKIPPED ...)
    note: str = ""
    details: str = ""
    log: str | None = None
    tail: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if v not in (None, "", [], {})}
        out["type"] = self.type.value
        return out


class Reporter(Protocol):
    def __call__(self, event: Event) -> None: ...


class Fanout:
    def __init__(self, reporters: Iterable[Reporter]) -> None:
        self.reporters = list(reporters)

    def __call__(self, event: Event) -> None:
        for r in self.reporters:
            r(event)


_SILENT = {EventType.DISCOVERED, EventType.SUBMIT_SUMMARY, EventType.MONITORING, EventType.PHASE_DONE,
           EventType.COMPLETE}


class TerminalReporter:
    """Progress lines as `ck run` has always printed them."""

    def __init__(self, out: Callable[[str], None]) -> None:
        self.out = out

    def __call__(self, e: Event) -> None:
        if e.type in _SILENT:
            return
        if e.type is EventType.COUNTS:
            self.out("    " + e.note)
            return
        if e.type is EventType.SUBMISSION_LIMIT:
            self.out(f"    submission limit: {e.details}")
            return
        if e.type in (EventType.WARNING, EventType.STALE, EventType.UNSCAFFOLDED):
            self.out(f"    warning: {e.note}")
            return
        if e.type is EventType.RECOVERY and not e.key:
            self.out(f"    {e.note}")
            return
        if e.type is EventType.INTERRUPTED:
            self.out(f"    interrupted: {e.note}")
            return
        stamp = time.strftime("%H:%M:%S")
        note = f"  {e.note}" if e.note else ""
        self.out(f"[{stamp}] {e.run or '':<24} {e.label or '':<30} {e.job_id or '-':<12} {e.state or ''}{note}")
        if e.tail:
            self.out("\n".join(f"    | {line}" for line in e.tail))


class JsonLinesReporter:
    def __init__(self, out: Callable[[str], None]) -> None:
        self.out = out

    def __call__(self, e: Event) -> None:
        self.out(json.dumps(e.to_dict()))


class ActionLogReporter:
    """The experiment's action logs. Dry runs write nothing (give dry_run=True)."""

    def __init__(self, exp: Path, *, dry_run: bool = False) -> None:
        self.dry_run = dry_run
        self.main = ActionLog(exp / "run-experiment.log")
        self.tune = ActionLog(exp / "run-torchtune.log")
        self.inspect = ActionLog(exp / "run-inspect.log")

    @staticmethod
    def _w(target: ActionLog, action: str, description: str | None, **kw) -> None:
        details, result = kw.pop("details", None), kw.pop("result", None)
        try:
            target.write(action, description or "-", details=details or None, result=result,
                         **{k: str(v) for k, v in kw.items() if v not in (None, "")})
        except OSError as exc:
            raise CkError(f"cannot write the log ({exc.strerror or exc})", file=target.path,
                          hint="is the experiment directory writable?") from None

    def _worker(self, e: Event) -> ActionLog:
        return self.tune if e.kind == "finetune" else self.inspect

    def __call__(self, e: Event) -> None:
        if self.dry_run:
            return
        t = e.type
        if t is EventType.DISCOVERED:
            self._w(self.main, "DISCOVER_EXPERIMENT", "Found experiment", details=e.details, result=e.note)
        elif t in (EventType.STALE, EventType.UNSCAFFOLDED, EventType.RECONCILED, EventType.WARNING):
            self._w(self.main, t.name, e.key or "plan", details=e.details or None, result=e.note)
        elif t is EventType.SUBMISSION_LIMIT:
            self._w(self.main, "SUBMISSION_LIMIT", "Submission window", details=e.details, result=e.note)
        elif t is EventType.QUEUED:
            self._w(self._worker(e), "QUEUE_JOB", e.key, details=e.note or None,
                    result="waits for room under the submission limit")
        elif t is EventType.SUBMIT_SUMMARY:
            self._w(self.main, "SUBMIT", "Jobs submitted", details=e.details, result=e.note)
        elif t is EventType.SUBMITTED:
            self._w(self._worker(e), "SUBMIT_JOB", e.key, details=e.details, result=f"job id {e.job_id}")
        elif t is EventType.SUBMIT_FAILED:
            self._w(self._worker(e), "SUBMIT_FAILED", e.key, details=e.details, result="not submitted")
        elif t in (EventType.SKIPPED, EventType.REFUSED):
            self._w(self.inspect, "SKIP_EVAL", e.key, details=e.details or e.note,
                               result="refused" if t is EventType.REFUSED else (e.note or "skipped"))
        elif t is EventType.MONITORING:
            self._w(self.main, "MONITOR", "Monitoring jobs", details=e.details)
        elif t is EventType.STATE and e.state == JobState.RUNNING.value:
            self._w(self._worker(e), "JOB_STARTED", e.key, result=f"job {e.job_id} RUNNING")
        elif t is EventType.FINISHED:
            if e.state == JobState.COMPLETED.value:
                self._w(self._worker(e), "JOB_COMPLETE", e.key, details=e.details or None,
                                      duration=e.data.get("duration") or "-", result=f"job {e.job_id} COMPLETED")
            elif e.data.get("dependency_failed"):
                self._w(self.inspect, "SKIP_EVAL", e.key, details=e.details, result=e.note)
            else:
                self._w(self._worker(e), "JOB_FAILED", e.key, details=e.details, log=e.log,
                                      result=f"job {e.job_id} {e.state}")
        elif t is EventType.PHASE_DONE:
            self._w(self.main, e.data["action"], e.data["title"], details=e.details,
                            duration=e.data.get("duration"), result=e.note)
        elif t is EventType.RECOVERY:
            self._w(self.main, "RECOVERY", e.details, details=e.note or None)
        elif t is EventType.SEARCH:
            self._w(self.main, "SEARCH_DECISION", e.details, details=e.note or None, result=e.state)
        elif t is EventType.INTERRUPTED:
            self._w(self.main, "MONITOR_STOPPED", "Interrupted", details=e.details, result=e.note)
        elif t is EventType.COMPLETE:
            self._w(self.main, "COMPLETE", "Experiment execution finished", details=e.details, result=e.note)
