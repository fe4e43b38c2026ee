"""Step 4: one poll per cycle, one ledger write per cycle; the local executor wakes the loop
when a job ends, SLURM is asked every poll interval.

A step of the run orchestrator (run/orchestrator.py): its methods work on the Orchestrator's
state (plan, executor, ledger, live jobs, outcomes, submission window)."""
from __future__ import annotations

import time
from pathlib import Path

from ..executors.core import JobInfo, JobState
from ..util import procs
from .events import EventType
from ..state.ledger import duration
from ..util.formats import duration_short as format_seconds
from .outcome import Action, Verdict
from ..state.jobs import PlannedJob, is_done
from .submission import TAIL_BYTES, TAIL_LINES, UNKNOWN_POLLS_BEFORE_GIVING_UP


class MonitorStep:
    # ---- step 4: monitor ---------------------------------------------------------------
    def monitor(self) -> None:
        if not self.live and not self.window.queue:
            return
        self._event(EventType.MONITORING, details=f"{len(self.live)} live job(s), poll every {self.poll_s}s"
                    + (f"; {len(self.window.queue)} queued, {self.window.describe()}" if self.window.queue else ""))
        ft_open = self._open("finetune")
        ev_open = self._open("eval")
        t0 = time.monotonic()
        try:
            while self.live or self.window.queue:
                changed = self.cycle() if self.live else False
                if self.window.queue:
                    changed = self.drain() or changed  # jobs that ended made room
                if changed:
                    self._event(EventType.COUNTS, note=self._counts())
                    self.write_status()
                if ft_open and not self._open("finetune"):
                    ft_open = False
                    self._phase_done("finetune", "RUN_TORCHTUNE_COMPLETE", "Fine-tuning finished", t0)
                if ev_open and not self._open("eval"):
                    ev_open = False
                    self._phase_done("eval", "RUN_INSPECT_COMPLETE", "Evaluation finished", t0)
                if self.live or self.window.queue:
                    self._idle()
        except KeyboardInterrupt:
            self._event(EventType.INTERRUPTED, details=f"{len(self.live)} job(s) still live",
                        note="jobs keep running; run `ck run` again to resume monitoring")
            raise

    def _idle(self) -> None:
        """Wait for the next cycle: the poll interval, or less when the executor sees a job end."""
        if self.sleep is not None:
            self.sleep(self.poll_s)
        else:
            self.ex.wait(list(self.live.values()), self.poll_s)

    def cycle(self) -> bool:
        """One poll of every live job, one ledger write for every change; then the reactions
        (events, recovery resubmissions). Returns whether anything changed."""
        infos = self.ex.poll(list(self.live.values()))  # ONE batched query per cycle
        changes: list[tuple[PlannedJob, JobInfo]] = []
        for key, jid in list(self.live.items()):
            info = self._judge(self.plan.get(key), infos.get(jid) or JobInfo(jid, JobState.UNKNOWN))
            if info is not None:
                changes.append((self.plan.get(key), info))
        if not changes:
            return False
        with self.ledger.transaction() as data:
            for job, info in changes:
                self.ledger.apply_info(data, job.key, info)
        entries = self.ledger.jobs() if any(i.state.terminal for _, i in changes) else {}
        for job, info in changes:
            if self.live.get(job.key) != info.job_id:
                continue  # replaced by a recovery resubmission earlier in this cycle
            self._react(job, info, entries.get(job.key))
        if entries:
            self.advance_search()  # a job ended: evidence for the search (run/step_search.py)
        return True

    def _judge(self, job: PlannedJob, info: JobInfo) -> JobInfo | None:
        """The info to record, or None when nothing changed."""
        o = self.outcomes[job.key]
        if info.state is JobState.UNKNOWN:
            n = self._unknown[job.key] = self._unknown.get(job.key, 0) + 1
            if n < UNKNOWN_POLLS_BEFORE_GIVING_UP:
                return None
            # The scheduler forgot the job: the artifacts decide.
            state = JobState.COMPLETED if is_done(job, self.plan) else JobState.FAILED
            info = JobInfo(info.job_id, state, reason="scheduler lost track of the job; judged from disk")
        self._unknown.pop(job.key, None)
        if o.state is info.state:
            return None
        return info

    def _react(self, job: PlannedJob, info: JobInfo, entry: dict | None) -> None:
        o = self.outcomes[job.key]
        o.state = info.state
        if not info.state.terminal:
            self._event(EventType.STATE, job, job_id=info.job_id, state=info.state.value)
            return
        del self.live[job.key]
        dur = duration(entry)
        if info.state is JobState.COMPLETED:
            if is_done(job, self.plan) or self._rung_trained(job):  # a trial stops at its rung
                o.verdict = Verdict.DONE
            else:
                o.verdict = Verdict.NO_ARTIFACT
                o.note = ("exit 0 but checkpoints missing or incomplete" if job.kind == "finetune"
                          else "exit 0 but no successful .eval log in eval/logs/ for this evaluation")
            self._event(EventType.FINISHED, job, job_id=info.job_id, state=JobState.COMPLETED.value,
                        note=f"{dur} {o.note or ''}".strip(), details=o.note or "", data={"duration": dur})
            return
        if info.state is JobState.DEPENDENCY_NEVER_SATISFIED:
            ft = self.outcomes.get(job.depends_on or "")
            o.verdict = Verdict.DEPENDENCY_FAILED
            o.note = "skipped: training failed" + (f" ({ft.state.value})" if ft and ft.state else "")
            self._event(EventType.FINISHED, job, job_id=info.job_id, state=info.state.value, note=o.note,
                        details=info.reason or "", data={"dependency_failed": True})
            return
        o.verdict = Verdict.FAILED
        o.note = info.reason or ""
        log = info.log or self.ex.log_path(job.spec(), info.job_id)
        self._event(EventType.FINISHED, job, job_id=info.job_id, state=info.state.value,
                    note=f"{dur} {o.note}".strip(), tail=_tail(info.log),
                    details=f"{info.state.value}: {info.reason or ''}".strip(), log=str(log))
        if job.kind == "finetune":
            self._recover(job, info, entry)

    def _phase_done(self, kind: str, action: str, title: str, t0: float) -> None:
        outs = [o for o in self.outcomes.values() if o.kind == kind]
        ok = sum(o.state is JobState.COMPLETED for o in outs)
        self._event(EventType.PHASE_DONE, details=f"{len(outs)} job(s): {ok} COMPLETED, {len(outs) - ok} not",
                    note=f"see run-{'torchtune' if kind == 'finetune' else 'inspect'}.log",
                    data={"action": action, "title": title,
                          "duration": format_seconds(time.monotonic() - t0)})

    def _counts(self) -> str:
        outs = list(self.outcomes.values())
        parts = [f"{n} {s.value.lower()}" for s in (JobState.RUNNING, JobState.PENDING, JobState.QUEUED,
                                                     JobState.COMPLETED)
                 if (n := sum(o.state is s for o in outs))]
        bad = sum(1 for o in outs if o.state is not None and o.state.terminal and o.state is not JobState.COMPLETED)
        skipped = sum(1 for o in outs if o.action in (Action.SKIP, Action.REFUSE) and o.state is None)
        parts += [f"{bad} failed"] if bad else []
        parts += [f"{skipped} skipped"] if skipped else []
        return ", ".join(parts)


def _tail(path: Path | None) -> list[str]:
    """The last lines of a job's log, reading at most TAIL_BYTES."""
    return [] if path is None else procs.tail_lines(path, TAIL_LINES, max_bytes=TAIL_BYTES)
