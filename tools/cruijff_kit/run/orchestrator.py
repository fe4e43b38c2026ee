"""run-experiment: submit every job an experiment needs, chain each run's evaluations to its own
training, monitor them all with one batched poll per cycle, recover, and keep the ledger and
status table current. Shared by the local and SLURM executors (they only submit / poll / cancel).

Why per-run chaining: an evaluation waits only for its own run's training (`after=`), never for
the slowest run of the experiment.

Steps of one `ck run` (each a method below):
  1. reconcile  - intents left by a crash are matched with what the scheduler has (exactly once)
  2. decide     - per planned job: done / re-attach / skip / refuse / to submit (no side effects)
  3. submit     - the one step that submits: intent recorded, submit, id recorded; jobs over the
                  user's submission limit wait QUEUED in the ledger (run/submission_window.py)
  4. monitor    - one poll per cycle, one ledger write per cycle, recovery of OOM / TIMEOUT,
                  queued jobs submitted as others end
Everything the user sees goes out as events (run/events.py); this module prints nothing.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import CkError
from ..util import procs
from ..util.log import ActionLog
from ..executors.core import Executor, JobInfo, JobState, SubmitError, SubmitLimitReached
from . import recovery
from .events import ActionLogReporter, Event, EventType, Fanout, Reporter, TerminalReporter
from ..state.identity import check_place, claim_output_dir, ensure_identity
from ..state.ledger import Ledger, duration, entry_state, is_live, monitor_lock
from ..util.formats import duration_short as format_seconds
from .outcome import Action, JobOutcome, RunReport, Verdict
from ..state.jobs import Plan, PlannedJob, has_checkpoint, is_done, pending_tasks
from .plan import plan_experiment
from .after_run import analyze_when_done, select_runs
from .after_run import notify as notify_command
from .submission_window import SubmissionWindow, mark_queued, window_for
from ..state import layout

TAIL_LINES = 20
TAIL_BYTES = 64 * 1024
UNKNOWN_POLLS_BEFORE_GIVING_UP = 3
DRY_ID = "(its training job)"


@dataclass
class Submission:
    """One job to submit in the submit step."""

    job: PlannedJob
    after_key: str | None = None  # the training job (key) it chains to, resolved at submit time
    after: str | None = None  # or a known job id
    note: str | None = None


def job_tag(exp_id: str, key: str, attempt: int) -> str:
    """Unique name of one submission: experiment, job key, attempt number."""
    return f"ck-{exp_id}-{attempt}-{key}"


class Orchestrator:
    def __init__(self, plan: Plan, executor: Executor, *, only: str | None = None,
                 retry_failed: bool = False, poll_s: float = 60, report: Reporter | None = None,
                 sleep: Callable[[float], None] | None = None, exp_id: str | None = None,
                 window: SubmissionWindow | None = None, runs: set[str] | None = None):
        self.plan, self.ex, self.only = plan, executor, only
        self.window = window or SubmissionWindow()  # the submission limit
        self._learn_window = window is None  # start() asks the executor and claude.local.md
        self.runs = runs  # --runs GLOB: only these run directories (None: all)
        self._queued_notes: dict[str, str | None] = {}  # queued key -> note for its submission
        # evaluations whose checkpoint is trained again in this pass: every task is re-run
        self._retrained: set[str] = set()
        self._dry_submits = 0  # a dry run's would-be submissions (they count against the limit)
        self.retry_failed, self.poll_s = retry_failed, poll_s
        self.emit: Reporter = report or (lambda _e: None)
        # None: between cycles wait on the executor (the local one wakes when a job ends);
        # a callable replaces that wait (tests that control time or simulate a killed monitor)
        self.sleep = sleep
        self.exp_id = exp_id or "dry"
        self.ledger = Ledger(plan.exp_dir)
        self.report = RunReport(str(plan.exp_dir), executor.name, warnings=list(plan.warnings),
                                stale=list(plan.stale), unscaffolded=list(plan.unscaffolded))
        self.outcomes: dict[str, JobOutcome] = {}
        self.live: dict[str, str] = {}  # key -> job id being watched
        self.overrides: dict[str, dict[str, str]] = {}
        self._unknown: dict[str, int] = {}
        self._status_warned = False

    # ---- helpers -----------------------------------------------------------------------
    def _jobs(self) -> list[PlannedJob]:
        if self.only == "torchtune":
            jobs = self.plan.finetunes
        elif self.only == "inspect":
            jobs = self.plan.evals
        else:  # fine-tuning first, so each evaluation can name its training job as dependency
            jobs = self.plan.finetunes + self.plan.evals
        return jobs if self.runs is None else [j for j in jobs if j.run in self.runs]

    def _n_live(self) -> int:
        """Jobs of this experiment submitted and not finished (what a submission limit counts)."""
        return sum(1 for jid in self.live.values() if jid != DRY_ID)

    def _open(self, kind: str) -> bool:
        """Jobs of this kind still live or waiting in the submission queue."""
        return any(self.plan.get(k).kind == kind for k in (*self.live, *self.window.queue))

    def _outcome(self, job: PlannedJob, action: Action, verdict: Verdict, **kw) -> JobOutcome:
        o = JobOutcome(job.key, job.run, job.kind, job.label, action, verdict=verdict, **kw)
        self.outcomes[job.key] = o
        return o

    def _event(self, type_: EventType, job: PlannedJob | None = None, **kw) -> None:
        if job is not None:
            kw.setdefault("key", job.key)
            kw.setdefault("run", job.run)
            kw.setdefault("label", job.label)
            kw.setdefault("kind", job.kind)
        self.emit(Event(type_, **kw))

    # ---- step 0: the plan against the summary -------------------------------------------
    def announce(self) -> None:
        n_ft, n_ev = len(self.plan.finetunes), len(self.plan.evals)
        self._event(EventType.DISCOVERED, details=str(self.plan.exp_dir / layout.SUMMARY),
                    note=f"{n_ft} fine-tuning job(s), {n_ev} evaluation(s); executor {self.ex.name}"
                         + (f"; only {self.only}" if self.only else ""))
        for run in self.plan.stale:
            self._event(EventType.STALE, key=run, note=f"{run}/ is not a run of experiment_summary.md: "
                                                       "not submitted (delete it or add the run to the plan)")
        for run in self.plan.unscaffolded:
            self._event(EventType.UNSCAFFOLDED, key=run, note=f"planned run {run} has no run directory: "
                                                              "scaffold it (`ck scaffold`)")

    # ---- step 1: reconcile intents left by a crash -----------------------------------------
    def reconcile(self, entries: dict) -> None:
        """An intent without a job id means we crashed between deciding to submit and recording
        the id. The scheduler knows whether the submission happened (by its tag)."""
        pending = {k: e["intent"] for k, e in entries.items() if e.get("intent")}
        if not pending:
            return
        for key, intent in pending.items():
            if intent.get("executor") not in (None, self.ex.name):
                raise CkError(f"{key} was being submitted to the {intent['executor']} executor when "
                              "`ck run` stopped", file=self.ledger.path, field="executor",
                              hint=f"run again with --executor {intent['executor']}")
        since = min((i.get("at") or "" for i in pending.values()), default="") or None
        hits = self.ex.find_tagged([i["tag"] for i in pending.values()], since=since)
        found: dict[str, JobInfo | None] = {}
        for key, intent in pending.items():
            jobs = hits.get(intent["tag"]) or []
            found[key] = jobs[-1] if jobs else None
        with self.ledger.transaction() as data:
            for key, info in found.items():
                if info is None:
                    Ledger.clear_intent(data, key)
                    continue
                Ledger.apply_submit(data, key, info.job_id, note="found at the scheduler after an interrupted submit")
                self.ledger.apply_info(data, key, info)
        for key, info in found.items():
            job = self.plan.get(key)
            self._event(EventType.RECONCILED, job, key=key, run=job.run if job else key.split("/")[0],
                        job_id=info.job_id if info else None, state="RECONCILED",
                        note=(f"submission found at the scheduler: job {info.job_id}" if info
                              else "was never submitted; deciding again"),
                        details=pending[key]["tag"])
        entries.clear()
        entries.update(self.ledger.jobs())

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

    # ---- steps 0-3 together -------------------------------------------------------------
    def start(self, dry_run: bool = False) -> None:
        self.report.dry_run = dry_run
        self.announce()
        if self._learn_window:
            self._learn_window = False
            self.window = window_for(self.ex, self.plan.exp_dir, [j.script for j in self._jobs()],
                                     backoff_s=self.poll_s)
        if self.window.limit is not None:
            self._event(EventType.SUBMISSION_LIMIT, details=self.window.describe(),
                        note="jobs over it wait in the ledger as QUEUED and are submitted as jobs end")
        entries = self.ledger.jobs()
        if not dry_run:
            self.reconcile(entries)
        todo = self.decide(entries, dry_run)
        if self.only == "inspect" and self.report.refused and not (
                self.live or todo or any(o.action is Action.SUBMIT for o in self.outcomes.values())):
            raise CkError("no evaluation can run: no checkpoint for run(s) " + ", ".join(self.report.refused),
                          hint="fine-tune first (`ck run DIR --only torchtune` or plain `ck run DIR`)")
        if dry_run:
            return
        self.dispatch(todo)
        counts = {a.value: sum(o.action is a for o in self.outcomes.values()) for a in Action}
        self._event(EventType.SUBMIT_SUMMARY, details=", ".join(f"{v} {k}" for k, v in counts.items() if v),
                    note=f"job ids: {' '.join(self.report.submitted) or 'none'}")
        self.write_status()

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
            if is_done(job, self.plan):
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

    # ---- recovery ----------------------------------------------------------------------
    def _recover(self, job: PlannedJob, info: JobInfo, entry: dict | None) -> None:
        attempts = (entry or {}).get("attempts", [])
        previous = dict(attempts[-1].get("overrides") or {}) if attempts else {}
        if info.state is JobState.OUT_OF_MEMORY:
            so_far = sum(a.get("state") == JobState.OUT_OF_MEMORY.value for a in attempts) - 1
            new, why = recovery.oom_retry(previous, attempts_so_far=so_far,
                                          finetune_yaml=job.finetune_yaml, setup_yaml=job.setup_yaml)
        elif info.state is JobState.TIMEOUT:
            so_far = sum(a.get("state") == JobState.TIMEOUT.value for a in attempts) - 1
            new, why = recovery.timeout_retry(previous, attempts_so_far=so_far, checkpoints=job.checkpoints)
        else:
            return
        if new is None:
            self._event(EventType.RECOVERY, details=f"{job.key}: no retry after {info.state.value}",
                        note=f"no retry: {why}")
            return
        self.overrides[job.key] = new
        self._event(EventType.RECOVERY, details=f"{job.key}: resubmitting after {info.state.value}", note=why)
        # The evaluations waited on the old id: cancel them and chain them to the new one.
        deps = []
        for dep in self.plan.dependents(job.key):
            old = self.live.pop(dep.key, None)
            if old is None and dep.key not in self.outcomes:
                continue
            if old is not None:
                self.ex.cancel([old])
                self.ledger.record_info(dep.key, JobInfo(old, JobState.CANCELLED,
                                                         reason="superseded: training resubmitted"))
            if old is not None or self.outcomes[dep.key].action in (Action.SUBMIT, Action.REATTACH):
                self._retrained.add(dep.key)
                deps.append(Submission(dep, after_key=job.key, note="training resubmitted"))
        self.dispatch([Submission(job, note=f"retry after {info.state.value}: {why}")] + deps)

    # ---- status table ------------------------------------------------------------------
    def status_rows(self) -> list[dict]:
        return status_rows(self.plan, self.ledger.jobs(), self.outcomes)

    def write_status(self) -> None:
        try:
            from ..experiment.status import write_status_section

            write_status_section(self.plan.exp_dir / layout.SUMMARY, self.status_rows())
        except (OSError, CkError, ValueError) as exc:  # the table is a view: never stop monitoring over it
            if not self._status_warned:
                self._status_warned = True
                self._event(EventType.WARNING, key="status table",
                            note=f"could not update the ## Status table: {exc}")


def _tail(path: Path | None) -> list[str]:
    """The last lines of a job's log, reading at most TAIL_BYTES."""
    return [] if path is None else procs.tail_lines(path, TAIL_LINES, max_bytes=TAIL_BYTES)


def status_rows(plan: Plan, entries: dict, outcomes: dict[str, JobOutcome] | None = None) -> list[dict]:
    rows = []
    from ..state.ledger import found_on_disk

    for job in plan.jobs:
        e = entries.get(job.key) or {}
        o = (outcomes or {}).get(job.key)
        state = e.get("state") or ""
        if o is not None and o.verdict in (Verdict.DEPENDENCY_FAILED, Verdict.NO_CHECKPOINT, Verdict.SUBMIT_FAILED) \
                and o.note:
            state = o.note
        elif o is not None and o.verdict is Verdict.NO_ARTIFACT:
            state = f"COMPLETED but {Verdict.NO_ARTIFACT.value.removeprefix('exit 0 but ')}"
        elif found_on_disk(e):
            state = "COMPLETED (found on disk)"
        rows.append({"run": job.run, "job": job.label, "job_id": e.get("job_id") or "",
                     "state": state, "duration": duration(e)})
    return rows


def run_experiment(exp_dir: str | Path, executor: Executor, only: str | None = None, poll_s: float = 60,
                   detach: bool = False, retry_failed: bool = False, dry_run: bool = False,
                   out: Callable[[str], None] | None = None, sleep: Callable[[float], None] | None = None,
                   reporters: list[Reporter] | None = None, progress: Reporter | None = None,
                   runs: str | None = None, analyze: Callable[[Path], object] | None = None,
                   notify: str | None = None) -> RunReport:
    """Submit and monitor an experiment until every job ends. With `detach`, start a background
    supervisor doing exactly that and return a report naming it (report.supervisor).
    Progress goes to `progress` (default: text lines through `out`); the experiment's action
    logs and any extra `reporters` receive the same events."""
    if only not in (None, "torchtune", "inspect"):
        raise CkError(f"--only must be torchtune or inspect, not {only!r}", field="--only")
    exp = Path(exp_dir).resolve()
    if detach:
        from .supervisor import spawn, supervisor_argv

        check_place(exp)
        select_runs(plan_experiment(exp), runs)  # fail here, in the foreground, on a broken experiment
        report = RunReport(str(exp), executor.name)
        report.supervisor = spawn(exp, supervisor_argv(exp, executor, only=only, poll_s=poll_s,
                                                       retry_failed=retry_failed, runs=runs,
                                                       analyze=analyze is not None, notify=notify))
        return report
    terminal = progress or TerminalReporter(out or (lambda line: print(line, flush=True)))
    if dry_run:
        ident = check_place(exp)
        plan = plan_experiment(exp, exp_id=ident["id"] if ident else None)
        orch = Orchestrator(plan, executor, only=only, retry_failed=retry_failed, poll_s=poll_s,
                            report=Fanout([terminal, *(reporters or [])]), runs=select_runs(plan, runs))
        orch.start(dry_run=True)
        return _finish(orch)
    with monitor_lock(exp):
        exp_id = ensure_identity(exp)
        plan = plan_experiment(exp, exp_id=exp_id)
        orch = Orchestrator(plan, executor, only=only, retry_failed=retry_failed, poll_s=poll_s,
                            report=Fanout([terminal, ActionLogReporter(exp), *(reporters or [])]),
                            sleep=sleep, exp_id=exp_id, runs=select_runs(plan, runs))
        orch.start()
        orch.monitor()
        report = _finish(orch)
        orch.write_status()
        done = sum(j.ok for j in report.jobs)
        orch._event(EventType.COMPLETE,
                    details=f"{done}/{len(report.jobs)} job(s) COMPLETED; {len(report.failed)} failed or skipped"
                            + (f"; refused (no checkpoint): {', '.join(report.refused)}" if report.refused else ""),
                    note="logs: run-torchtune.log, run-inspect.log; eval logs: <run>/eval/logs/")
        if analyze or notify:
            log, say = ActionLog(exp / "run-experiment.log"), out or (lambda line: print(line, flush=True))
            if analyze:
                analyze_when_done(exp, analyze, log, say)
            if notify:
                notify_command(exp, notify, log, say)
        return report


def _finish(orch: Orchestrator) -> RunReport:
    orch.report.jobs = [orch.outcomes[j.key] for j in orch.plan.jobs if j.key in orch.outcomes]
    return orch.report


def default_out(json_mode: bool) -> Callable[[str], None]:
    stream = sys.stderr if json_mode else sys.stdout
    return lambda line: print(line, file=stream, flush=True)
