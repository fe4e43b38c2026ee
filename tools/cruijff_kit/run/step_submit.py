"""Step 3: the one place that submits: intent recorded, submit, id recorded; jobs over the
submission limit wait QUEUED in the ledger and are submitted as others end.

A step of the run orchestrator (run/orchestrator.py): its methods work on the Orchestrator's
state (plan, executor, ledger, live jobs, outcomes, submission window)."""
from __future__ import annotations

import time

from ..executors.core import JobState, SubmitError, SubmitLimitReached
from . import recovery
from .events import EventType
from ..state.identity import claim_output_dir
from ..state.ledger import Ledger
from .outcome import Action, Verdict
from ..state.jobs import PlannedJob, pending_tasks
from .submission_window import mark_queued
from .submission import DRY_ID, Submission, job_tag


class SubmitStep:
    # ---- step 3: submit within the submission limit -------------------------------------------
    def _dependency_key(self, job: PlannedJob) -> str | None:
        return job.depends_on if job.kind == "eval" and self.only != "inspect" else None

    def dispatch(self, todo: list[Submission]) -> None:
        """Submit what fits under the submission limit; queue the rest (ledger state QUEUED, no
        job id) in plan order. An evaluation whose training waits, waits too."""
        now: list[Submission] = []
        queued: list[PlannedJob] = []
        for sub in todo:
            key = sub.job.key
            if self.window.holds(key, self._dependency_key(sub.job), self._n_live() + len(now)):
                self.window.add(key, self._dependency_key(sub.job))
                self._queued_notes[key] = sub.note
                if self.live.get(key) == DRY_ID:
                    del self.live[key]
                queued.append(sub.job)
            else:
                now.append(sub)
        if queued:
            self._mark_queued(queued)
        self.submit(now)

    def _mark_queued(self, jobs: list[PlannedJob], note: str | None = None) -> None:
        mark_queued(self.ledger, [(j.key, j) for j in jobs], note=note)
        for job in jobs:
            self._outcome(job, Action.QUEUE, Verdict.QUEUED, state=JobState.QUEUED, note=self.window.describe())
            self._event(EventType.QUEUED, job, state=JobState.QUEUED.value, note=note or self.window.describe())

    def drain(self) -> bool:
        """Submit queued jobs while the window has room (jobs ended, or a refusal's back-off
        passed). Returns whether anything was submitted or decided."""
        keys = self.window.due(self._n_live())
        if not keys:
            return False
        todo: list[Submission] = []
        for key in keys:
            self.window.discard(key)
            job = self.plan.get(key)
            sub = Submission(job, note=self._queued_notes.pop(key, None))
            if job.kind == "eval":
                why_not = self._eval_dependency(job, sub)
                if why_not is not None:
                    self._outcome(job, Action.SKIP, Verdict.DEPENDENCY_FAILED, note=why_not)
                    self._event(EventType.SKIPPED, job, state="SKIPPED", note=why_not)
                    with self.ledger.transaction() as data:
                        Ledger.clear_queued(data, key)
                    continue
            todo.append(sub)
        self.submit(todo)
        return True

    # ---- the one place that submits ---------------------------------------------------------
    def submit(self, todo: list[Submission]) -> None:
        """Record every intent (one ledger write), submit, record every id (one ledger write).
        A crash anywhere in between is repaired by reconcile() on the next `ck run`."""
        if not todo:
            return
        for sub in todo:
            if sub.job.kind == "finetune" and sub.job.output_dir is not None:
                claim_output_dir(sub.job.output_dir, self.plan.exp_dir, self.exp_id)
        plans = []
        with self.ledger.transaction() as data:
            for sub in todo:
                e = data["jobs"].get(sub.job.key) or {}
                attempt = len(e.get("attempts", [])) + 1
                overrides = self.overrides.get(sub.job.key, {})
                tag = job_tag(self.exp_id, sub.job.key, attempt)
                Ledger.apply_intent(data, sub.job.key, kind=sub.job.kind, run=sub.job.run,
                                    executor=self.ex.name, tag=tag, overrides=overrides, note=sub.note)
                plans.append((sub, tag, overrides))
        done: list[tuple[Submission, str, str, str | None, dict]] = []
        failed: list[Submission] = []
        limited: list[tuple[Submission, str]] = []  # refused for a submission limit: requeued
        try:
            for sub, tag, overrides in plans:
                after = sub.after
                if limited:  # the scheduler is at the user's limit: the rest waits too
                    failed.append(sub)
                    limited.append((sub, limited[0][1]))
                    continue
                if sub.after_key is not None:
                    after = self.live.get(sub.after_key)
                    if after in (None, DRY_ID):  # its training could not be submitted
                        failed.append(sub)
                        self._outcome(sub.job, Action.SKIP, Verdict.DEPENDENCY_FAILED,
                                      note="skipped: training failed (not submitted)")
                        self._event(EventType.SKIPPED, sub.job, state="SKIPPED",
                                    note="skipped: training failed (not submitted)")
                        continue
                env = {recovery.ENV_VAR: recovery.format_overrides(overrides)} if overrides else {}
                env.update(self._eval_env(sub.job))
                spec = sub.job.spec(env=env, tag=tag)
                pause = self.window.pause()
                if pause:
                    (self.sleep or time.sleep)(pause)
                try:
                    job_id = self.ex.submit(spec, after=after)
                except SubmitLimitReached as err:
                    # Over the scheduler's limit (the user's other jobs count too): never a failed
                    # run. It waits first in line and is retried after the back-off.
                    failed.append(sub)
                    limited.append((sub, str(err).splitlines()[0]))
                    continue
                except SubmitError as err:
                    failed.append(sub)
                    if sub.job.kind == "finetune":
                        self.live.pop(sub.job.key, None)
                    self._outcome(sub.job, Action.SKIP, Verdict.SUBMIT_FAILED, note=str(err))
                    self._event(EventType.SUBMIT_FAILED, sub.job, state="SUBMIT FAILED",
                                note=str(err).splitlines()[0], details=str(err))
                    continue
                self.live[sub.job.key] = job_id
                self.window.submitted()
                done.append((sub, tag, job_id, after, overrides))
                self.report.submitted.append(job_id)
                self._outcome(sub.job, Action.SUBMIT, Verdict.LIVE, job_id=job_id,
                              state=JobState.PENDING, note=sub.note)
                self._event(EventType.SUBMITTED, sub.job, job_id=job_id, state="SUBMITTED",
                            note=((f"after {after}" if after else "") + (f" {sub.note}" if sub.note else "")).strip(),
                            details=f"script {sub.job.script}" + (f"; after {after}" if after else "")
                                    + (f"; {recovery.ENV_VAR}={env[recovery.ENV_VAR]}" if recovery.ENV_VAR in env else ""))
        finally:
            # Whatever happened (even Ctrl-C mid-way), every id we got is recorded now.
            with self.ledger.transaction() as data:
                for sub, tag, job_id, after, overrides in done:
                    Ledger.apply_submit(data, sub.job.key, job_id, after=after, overrides=overrides,
                                        tag=tag, executor=self.ex.name, note=sub.note)
                for sub in failed:
                    Ledger.clear_intent(data, sub.job.key)
            if limited:
                self._requeue(limited)

    def _requeue(self, limited: list[tuple[Submission, str]]) -> None:
        """Jobs the scheduler refused for a submission limit go back to the front of the queue."""
        self.window.refused()
        front = {}
        for sub, _why in limited:
            self.live.pop(sub.job.key, None)
            front[sub.job.key] = self._dependency_key(sub.job)
            self._queued_notes[sub.job.key] = sub.note
        self.window.queue = {**front, **{k: v for k, v in self.window.queue.items() if k not in front}}
        self._mark_queued([sub.job for sub, _ in limited], note=f"submission limit reached ({limited[0][1]}); "
                                                                "retrying as jobs end")

    def _pending(self, job: PlannedJob) -> list[str]:
        return [e.task for e in pending_tasks(job)]

    def _eval_env(self, job: PlannedJob) -> dict[str, str]:
        """Tag the evaluation's inspect logs with the job they belong to (inspect --metadata); a
        script of several tasks also gets $CK_TASKS: the tasks not done yet, with their
        fingerprints (all of them when the checkpoint is trained again), so a done task is never
        evaluated twice."""
        if job.kind != "eval":
            return {}
        from ..state.artifacts import eval_fingerprint, expected_metadata, job_metadata, metadata_args

        expected = job.expected()
        if job.per_task:
            return {"CK_INSPECT_ARGS": metadata_args(expected_metadata(expected[0], self.exp_id))}
        todo = expected if job.key in self._retrained else pending_tasks(job)
        tasks = {e.task: eval_fingerprint(e.script, e.task) for e in todo}  # names: plan.TASK_NAME
        return {"CK_INSPECT_ARGS": metadata_args(job_metadata(expected[0], self.exp_id)),
                "CK_TASKS": " ".join(f"{t}={fp}" for t, fp in tasks.items())}
