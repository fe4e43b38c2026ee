"""Step 2: per planned job, done / re-attach / skip / refuse / to submit (no side effects).

A step of the run orchestrator (run/orchestrator.py): its methods work on the Orchestrator's
state (plan, executor, ledger, live jobs, outcomes, submission window)."""
from __future__ import annotations

from ..errors import CkError
from ..executors.core import JobState
from .events import EventType
from ..state.ledger import Ledger, entry_state, is_live
from .outcome import Action, Verdict
from ..state.jobs import PlannedJob, has_checkpoint, is_done
from .submission import DRY_ID, Submission


class DecideStep:
    # ---- step 2: decide ----------------------------------------------------------------
    def decide(self, entries: dict, dry_run: bool) -> list[Submission]:
        for key, e in entries.items():
            if is_live(e) and e.get("executor") not in (None, self.ex.name):
                raise CkError(f"{key} is still {e['state']} under the {e['executor']} executor "
                              f"(job {e.get('job_id')})", file=self.ledger.path, field="executor",
                              hint=f"run again with --executor {e['executor']}")
        todo: list[Submission] = []
        found: list[PlannedJob] = []
        for job in self._jobs():
            sub = self._decide(job, entries.get(job.key), dry_run, found)
            if sub is not None:
                todo.append(sub)
        if found and not dry_run:
            with self.ledger.transaction() as data:
                for job in found:
                    Ledger.apply_found(data, job.key, kind=job.kind, run=job.run)
        return todo

    def _decide(self, job: PlannedJob, e: dict | None, dry_run: bool,
                found: list[PlannedJob]) -> Submission | None:
        handled, sub = self._decide_trial(job, e, dry_run)  # a search's trial (run/step_search.py)
        if handled:
            return sub
        state = entry_state(e)
        if state is JobState.QUEUED:  # waited for room under the submission limit: decide again
            state = None
        if is_live(e):
            self.live[job.key] = e["job_id"]
            self._outcome(job, Action.REATTACH, Verdict.LIVE, job_id=e["job_id"], state=state)
            self._event(EventType.REATTACHED, job, job_id=e["job_id"], state=state.value, note="re-attached")
            return None
        # an evaluation of a checkpoint that is trained again in this pass is stale, log or not
        retrained = job.kind == "eval" and (self.live.get(job.depends_on or "") == DRY_ID
                                            or (job.depends_on or "") in self.window.queue)
        if retrained:
            self._retrained.add(job.key)
        done = not retrained and is_done(job, self.plan)
        if done and state in (None, JobState.COMPLETED):
            verdict = Verdict.DONE if state else Verdict.FOUND
            if state is None:
                found.append(job)
            jid = (e or {}).get("job_id")
            self._outcome(job, Action.DONE, verdict, job_id=jid, state=JobState.COMPLETED,
                          note="done" if state else "found on disk")
            self._event(EventType.DONE, job, job_id=jid, state=JobState.COMPLETED.value, note="done" if state else "found on disk")
            return None
        if state is not None and state not in (JobState.COMPLETED, JobState.DEPENDENCY_NEVER_SATISFIED) \
                and not self.retry_failed:
            self._outcome(job, Action.SKIP, Verdict.NOT_RETRIED, job_id=e.get("job_id"), state=state,
                          note=f"{state.value} earlier; --retry-failed resubmits it")
            self._event(EventType.NOT_RETRIED, job, job_id=e.get("job_id"), state=state.value,
                        note="not resubmitted (use --retry-failed)")
            return None
        sub = Submission(job)
        if job.kind == "eval":
            why_not = self._eval_dependency(job, sub)
            if why_not is not None:
                refuse = self.only == "inspect"
                if refuse and job.run not in self.report.refused:
                    self.report.refused.append(job.run)
                ft = self.outcomes.get(job.depends_on or "")
                verdict = Verdict.NO_CHECKPOINT if (refuse or ft is None or ft.verdict is Verdict.DONE) \
                    else Verdict.DEPENDENCY_FAILED
                self._outcome(job, Action.REFUSE if refuse else Action.SKIP, verdict, note=why_not)
                self._event(EventType.REFUSED if refuse else EventType.SKIPPED, job,
                            state="REFUSED" if refuse else "SKIPPED", note=why_not)
                return None
        partly = job.kind == "eval" and not retrained and len(job.tasks) > 1 and self._pending(job)
        if state is JobState.COMPLETED and partly and len(partly) < len(job.tasks):
            sub.note = f"evaluating {', '.join(partly)}: the job's other tasks are done"
        elif state is JobState.COMPLETED:
            sub.note = "artifacts missing or incomplete although the ledger says COMPLETED; resubmitting"
        elif state is not None:
            sub.note = f"retrying after {state.value}"
        return self._to_submit(job, sub, dry_run)

    def _to_submit(self, job: PlannedJob, sub: Submission, dry_run: bool) -> Submission | None:
        """The submission to make in this pass (None: a dry run's, or queued under the limit)."""
        if dry_run and self.window.holds(job.key, self._dependency_key(job), self._n_live() + self._dry_submits):
            self.window.add(job.key, self._dependency_key(job))
            self._outcome(job, Action.QUEUE, Verdict.QUEUED, state=JobState.QUEUED, note=self.window.describe())
            self._event(EventType.WOULD_SUBMIT, job, state="WOULD QUEUE", note=self.window.describe())
            return None
        if dry_run:
            self._dry_submits += 1
            self.live[job.key] = DRY_ID  # so its evaluations are planned "after" it
            after = sub.after or (DRY_ID if sub.after_key else None)
            self._outcome(job, Action.SUBMIT, Verdict.WOULD_SUBMIT,
                          note=sub.note or (f"after {after}" if after else None))
            self._event(EventType.WOULD_SUBMIT, job, state="WOULD SUBMIT", note=f"after {after}" if after else "")
            return None
        # the training it chains to will be submitted in this pass: mark it so
        if job.kind == "finetune":
            self.live[job.key] = DRY_ID
        return sub

    def _eval_dependency(self, job: PlannedJob, sub: Submission) -> str | None:
        """Fill `sub.after` / `sub.after_key`; return why the evaluation cannot run, or None."""
        ckpt = job.checkpoints[0] if job.checkpoints else None
        if self.only == "inspect" or job.depends_on is None:
            if has_checkpoint(job):
                return None
            orphan = job.depends_on is None and job.epoch is not None and self.only != "inspect"
            return f"no checkpoint at {ckpt}" + (f" and no finetune.slurm in {job.run}/" if orphan else "")
        ft = self.outcomes.get(job.depends_on)
        if job.depends_on in self.window.queue:
            sub.after_key = job.depends_on  # it waits with its training (dispatch queues it)
            return None
        if job.depends_on in self.live:
            if self.live[job.depends_on] == DRY_ID:
                sub.after_key = job.depends_on
            else:
                sub.after = self.live[job.depends_on]
            return None
        if has_checkpoint(job):
            return None  # training finished (or failed after saving this epoch)
        if ft is not None and ft.action is Action.DONE:
            return f"no checkpoint at {ckpt} although training is done (epoch beyond its epochs?)"
        return "skipped: training failed" + (f" ({(ft.state.value if ft.state else None) or ft.note})" if ft else "")
