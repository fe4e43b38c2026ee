"""A search that prunes: each trial trains rung by rung; at each rung's epoch the search metric
decides (run/search_rules.py) whether it goes on (resumed from its last checkpoint, never
retrained) or stops (nothing more is submitted for it).

A step of the run orchestrator (run/orchestrator.py), hooked into the others:
- decide: a trial's training is submitted with `stop_after_epochs=<the rung's epochs>` (and
  `resume_from_checkpoint=True` once it has a checkpoint); its evaluations up to that epoch are
  chained to that training (`afterok` on SLURM); later ones are HELD until it is promoted; a pruned
  trial's are PRUNED.
- monitor: a training that stopped at its rung is done for now; after every cycle the decisions
  that can be made are made, recorded in the ledger (state/search.py) and the Optuna journal
  (run/search_study.py), and the promoted trials' next rung is submitted through the submit step,
  so the submission window and QOS limits hold as for any job.
Everything is derived from the ledger's decisions and the checkpoints on disk, so a killed
`ck run` picks up where it stopped and decides nothing twice.
"""
from __future__ import annotations

from ..errors import CkError
from ..experiment.search_progress import gpu_hours
from ..executors.core import JobState
from ..state import layout
from ..state.jobs import PlannedJob, is_done
from ..state.ledger import entry_state, is_live
from ..state.artifacts import completed_epochs
from ..state.search import FAILED, PRUNED, Decision, append_decisions, decisions, epoch_val_loss, \
    task_metric
from . import recovery, search_study
from .events import EventType
from .outcome import Action, Verdict
from .plan import SearchPlan, search_plan
from .search_rules import TrialView, walk
from .submission import Submission

_RETRYABLE_STATES = (None, JobState.COMPLETED, JobState.QUEUED, JobState.DEPENDENCY_NEVER_SATISFIED)
_GAVE_UP = (Verdict.FAILED, Verdict.NOT_RETRIED, Verdict.SUBMIT_FAILED, Verdict.NO_ARTIFACT)


def load_search(exp_dir) -> SearchPlan | None:
    """The plan's search; a plan with a `## Search` section that cannot be read is an error (its
    trials would otherwise train every epoch, as a grid)."""
    try:
        return search_plan(exp_dir)
    except CkError:
        text = (exp_dir / layout.SUMMARY).read_text(encoding="utf-8", errors="replace")
        if "## Search" in text:
            raise
        return None


class SearchStep:
    search: SearchPlan | None = None
    _decided: dict[tuple[int, int], Decision] | None = None
    _study_synced = False  # the Optuna journal caught up with the ledger in this invocation

    # ---- what the ledger and disk say ------------------------------------------------------
    def _decisions(self) -> dict[tuple[int, int], Decision]:
        if self._decided is None:
            self._decided = {(d.trial, d.rung): d for d in decisions(self.ledger.read(), self.ledger.path)}
        return self._decided

    def _position(self, trial: int) -> tuple[int, Decision | None]:
        """(the rung the trial is in, its final decision if it has one)."""
        decided = self._decisions()
        for r in range(len(self.search.search.rung_epochs)):
            d = decided.get((trial, r))
            if d is None:
                return r, None
            if not d.goes_on:
                return r, d
        return len(self.search.search.rung_epochs) - 1, None  # not reached: the last rung decides

    def _trial_of(self, job: PlannedJob) -> int | None:
        return None if self.search is None else self.search.trial_of(job.run)

    def _finetune_of(self, run: str) -> PlannedJob | None:
        return self.plan.get(f"{run}/finetune")

    # ---- hook: decide ----------------------------------------------------------------------
    def _decide_trial(self, job: PlannedJob, e: dict | None, dry_run: bool) -> tuple[bool, Submission | None]:
        """(handled, submission) for a trial's job; not handled: the generic rules apply."""
        trial = self._trial_of(job)
        ft = self._finetune_of(job.run)
        if trial is None or ft is None or is_live(e) or self.only == "inspect":
            return False, None
        rung, final = self._position(trial)
        rung_epochs = self.search.search.rung_epochs
        epochs = rung_epochs[rung]
        trained = completed_epochs(ft.output_dir)
        if final is not None and final.decision == FAILED and (job.kind == "finetune" or (
                job.epoch is not None and job.epoch >= trained)):
            self._failed_trial(job, e, final)
            return True, None
        if job.kind == "finetune":
            if final is not None and final.decision == PRUNED:
                self._pruned(job, final)
                return True, None
            if final is not None:
                return False, None  # completed (done on disk)
            if trained >= epochs:
                note = f"trial {trial}: rung {rung} trained ({trained} epoch(s)); waits for the search's decision"
                self._outcome(job, Action.DONE, Verdict.DONE, job_id=(e or {}).get("job_id"),
                              state=JobState.COMPLETED, note=note)
                self._event(EventType.DONE, job, state=JobState.COMPLETED.value, note=note)
                return True, None
            if entry_state(e) not in _RETRYABLE_STATES and not self.retry_failed:
                return False, None
            return True, self._to_submit(job, self._rung_submission(job, trial, rung, trained), dry_run)
        if job.epoch is None:
            return False, None
        if job.epoch < trained:
            # its checkpoint exists: it waits for no training (not even the next rung's)
            if self.live.get(ft.key) is None or is_done(job, self.plan) or (
                    entry_state(e) not in _RETRYABLE_STATES and not self.retry_failed):
                return False, None
            return True, self._to_submit(job, Submission(job), dry_run)
        if final is not None and final.decision == PRUNED:
            self._pruned(job, final)
            return True, None
        if final is None and job.epoch >= epochs:
            self._hold(job, trial, rung)
            return True, None
        return False, None  # chained to this rung's training (or skipped with it)

    def _rung_submission(self, job: PlannedJob, trial: int, rung: int, trained: int) -> Submission:
        rung_epochs = self.search.search.rung_epochs
        # the previous attempt's other overrides (an OOM retry's halved batch) carry over
        previous = dict(self.ledger.entry(job.key) or {}).get("attempts") or [{}]
        self.overrides[job.key] = recovery.rung_overrides(dict(previous[-1].get("overrides") or {}),
                                                          stop_after=rung_epochs[rung], resume=trained > 0)
        note = f"trial {trial} rung {rung}: train to {rung_epochs[rung]} epoch(s)"
        return Submission(job, note=note + (f", resuming after epoch_{trained - 1}" if trained else ""))

    def _hold(self, job: PlannedJob, trial: int, rung: int) -> None:
        note = f"trial {trial}: epoch {job.epoch} is trained only if the search promotes it past rung {rung}"
        self._outcome(job, Action.HOLD, Verdict.WAITING, note=note)
        self._event(EventType.HELD, job, state="HELD", note=note)

    def _pruned(self, job: PlannedJob, final: Decision) -> None:
        note = f"trial {final.trial} pruned at rung {final.rung} ({final.epochs} epoch(s)): {final.why}"
        o = self.outcomes.get(job.key)
        if o is not None and job.kind == "finetune" and o.state is JobState.COMPLETED:
            o.verdict, o.note = Verdict.PRUNED, note  # its last rung ran; the trial stops here
            return
        self._outcome(job, Action.SKIP, Verdict.PRUNED, note=note)
        self._event(EventType.SKIPPED, job, state="PRUNED", note=note)

    def _failed_trial(self, job: PlannedJob, e: dict | None, final: Decision) -> None:
        """A trial the search recorded as failed is never trained again (--retry-failed or not):
        the trials after it were decided without it, and no decision is made twice. Without this,
        the generic rules resubmitted its training with no rung overrides: every epoch, from scratch."""
        if job.kind == "finetune":
            note = f"trial {final.trial} failed at rung {final.rung} ({final.why}); the search went on without it"
            state = entry_state(e)
            self._outcome(job, Action.SKIP, Verdict.FAILED, job_id=(e or {}).get("job_id"), state=state, note=note)
            self._event(EventType.NOT_RETRIED, job, job_id=(e or {}).get("job_id"),
                        state=state.value if state else FAILED.upper(), note=note)
            return
        note = f"skipped: trial {final.trial} failed at rung {final.rung} ({final.why})"
        self._outcome(job, Action.SKIP, Verdict.DEPENDENCY_FAILED, note=note)
        self._event(EventType.SKIPPED, job, state="SKIPPED", note=note)

    # ---- hook: monitor -----------------------------------------------------------------------
    def _rung_trained(self, job: PlannedJob) -> bool:
        """A trial's training that exited 0 after its rung's epochs (stopped on purpose)."""
        trial = self._trial_of(job)
        if trial is None or job.kind != "finetune":
            return False
        rung, final = self._position(trial)
        return final is None and completed_epochs(job.output_dir) >= self.search.search.rung_epochs[rung]

    # ---- the decisions ---------------------------------------------------------------------------
    def advance_search(self) -> bool:
        """Make every decision the evidence on disk allows, record it, act on it. Returns whether
        anything was decided."""
        if self.search is None or self.only == "inspect":
            return False
        self._decided = None
        s = self.search.search
        # the ledger's attempts, read once for every promotion the budget is checked for
        entries = self.ledger.entries() if s.budget_gpu_hours is not None else {}
        new = walk(self._views(), tuple(s.rung_epochs), s.reduction_factor, s.metric,
                   s.direction == "maximize", self._decisions(),
                   lambda view, rung, nxt: self._afford(view, nxt, entries))
        if new:
            with self.ledger.transaction() as data:
                append_decisions(data, new)
            self._decided = None
        if new or not self._study_synced:  # the first call catches up after a killed `ck run`
            self._sync_study()
            self._study_synced = True
        subs: list[Submission] = []
        for d in new:
            ft = self._finetune_of(d.run)  # decisions name the trial's run directory
            self._event(EventType.SEARCH, ft, state=d.decision.upper(),
                        note=f"rung {d.rung} ({d.epochs} epoch(s)): {d.metric} "
                             f"{'-' if d.value is None else format(d.value, '.4g')}; {d.why}",
                        details=f"trial {d.trial} rung {d.rung}: {d.decision}")
            if d.goes_on:
                subs += self._next_rung(ft, d)
            elif d.decision in (PRUNED, FAILED):
                self._stop_trial(ft, d)
        if subs:
            self.dispatch(subs)
        return bool(new)

    def _views(self) -> list[TrialView]:
        s = self.search.search
        open_keys = set(self.live) | set(self.window.queue)
        views = []
        for run, trial in self.search.trials.items():
            ft = self._finetune_of(run)
            if ft is None:
                continue  # not scaffolded
            # the evidence of a rung is final once the jobs that write it have ended: its
            # training (validation loss), and for a task metric its evaluations too
            busy = ft.key in open_keys if s.metric_task is None else \
                any(k.split("/", 1)[0] == run for k in open_keys)
            # a trial outside --runs is never decided here, and the trials after it wait for it
            # (left out, they were decided against fewer trials than the ones before them)
            busy = busy or (self.runs is not None and run not in self.runs)
            o = self.outcomes.get(ft.key)
            failed = None
            if o is not None and o.verdict in _GAVE_UP and not busy:
                failed = f"training {o.state.value if o.state else o.verdict.value}" + (f": {o.note}" if o.note else "")
            views.append(TrialView(trial, run, completed_epochs(ft.output_dir), busy, failed,
                                   self._metric_reader(run, ft)))
        return views

    def _metric_reader(self, run: str, ft: PlannedJob):
        task = self.search.rung_task  # the evaluation on the validation split that decides
        if task is None:
            return lambda epochs: epoch_val_loss(ft.output_dir).get(epochs - 1)
        run_dir = self.plan.exp_dir / run
        return lambda epochs: task_metric(run_dir, task, epochs - 1, self.search.search.metric_name)

    def _afford(self, view: TrialView, next_epochs: int, entries: dict) -> str | None:
        budget = self.search.search.budget_gpu_hours
        if budget is None:
            return None
        # GPU-hours as `ck status` counts them (experiment/search_progress.gpu_hours): every job
        # of the trials, running attempts up to now
        gpus = {run: self._finetune_of(run).gpus for run in self.search.trials if self._finetune_of(run)}
        used = gpu_hours(entries, gpus)
        ft = self._finetune_of(view.run)
        spent = _seconds(entries.get(ft.key))
        per_epoch = spent / max(view.trained, 1) * max(ft.gpus, 1) / 3600
        more = per_epoch * (next_epochs - view.trained)
        if used + more > budget:
            return (f"over the budget: {used:.3g} GPU-hours used + {more:.3g} for epochs "
                    f"{view.trained + 1}..{next_epochs} > {budget:g}")
        return None

    def _next_rung(self, ft: PlannedJob, d: Decision) -> list[Submission]:
        rung = d.rung + 1
        trained = completed_epochs(ft.output_dir)
        subs = [self._rung_submission(ft, d.trial, rung, trained)]
        upto = self.search.search.rung_epochs[rung]
        for ev in self.plan.dependents(ft.key):
            if ev.epoch is not None and trained <= ev.epoch < upto and not is_done(ev, self.plan):
                subs.append(Submission(ev, after_key=ft.key, note=f"trial {d.trial} promoted to rung {rung}"))
        return subs

    def _stop_trial(self, ft: PlannedJob, d: Decision) -> None:
        for job in [ft, *self.plan.dependents(ft.key)]:
            o = self.outcomes.get(job.key)
            if job.kind == "finetune":
                if o is not None and d.decision == PRUNED:
                    self._pruned(job, d)
            elif o is not None and o.verdict is Verdict.WAITING:
                if d.decision == PRUNED:
                    self._pruned(job, d)
                else:
                    o.action, o.verdict = Action.SKIP, Verdict.DEPENDENCY_FAILED
                    o.note = f"skipped: trial {d.trial} failed at rung {d.rung} ({d.why})"

    def _sync_study(self) -> None:
        """Mirror the ledger's decisions into the Optuna journal; the ledger stays the record, so
        a journal that cannot be written is a warning, never a stop."""
        s = self.search
        trials = [(t, run, s.params.get(t, {})) for run, t in s.trials.items()]
        try:
            search_study.sync(self.plan.exp_dir, s.search, trials, list(self._decisions().values()))
        except Exception as exc:  # noqa: BLE001 - optuna raises its own and RuntimeError kinds
            self._event(EventType.WARNING, key="search journal",
                        note=f"could not update {layout.CK_DIR}/search.journal: {exc}")


def _seconds(entry) -> float:
    if entry is None:
        return 0.0
    return sum(a.seconds or 0.0 for a in entry.attempts)
