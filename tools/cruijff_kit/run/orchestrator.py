"""run-experiment: submit every job an experiment needs, chain each run's evaluations to its own
training, monitor them all with one batched poll per cycle, recover, and keep the ledger and
status table current. Shared by the local and SLURM executors (they only submit / poll / cancel).

Why per-run chaining: an evaluation waits only for its own run's training (`after=`), never for
the slowest run of the experiment.

Steps of one `ck run` (each a module: run/step_reconcile.py, step_decide.py, step_submit.py,
step_monitor.py, step_recover.py; the Orchestrator below holds their state and runs them in order):
  1. reconcile  - intents left by a crash are matched with what the scheduler has (exactly once)
  2. decide     - per planned job: done / re-attach / skip / refuse / to submit (no side effects)
  3. submit     - the one step that submits: intent recorded, submit, id recorded; jobs over the
                  user's submission limit wait QUEUED in the ledger (run/submission_window.py)
  4. monitor    - one poll per cycle, one ledger write per cycle, recovery of OOM / TIMEOUT,
                  queued jobs submitted as others end
  5. search     - a search's trials train rung by rung: after each cycle the decisions the evidence
                  allows are made (promote: the next rung is submitted; prune: nothing more)
Everything the user sees goes out as events (run/events.py); this module prints nothing.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from ..errors import CkError
from ..util.log import ActionLog
from ..executors.core import Executor
from .events import ActionLogReporter, Event, EventType, Fanout, Reporter, TerminalReporter
from ..state.identity import check_place, ensure_identity
from ..state.ledger import Ledger, monitor_lock
from .outcome import Action, JobOutcome, RunReport, Verdict
from ..state.jobs import Plan, PlannedJob
from .plan import plan_experiment
from .status import table_rows
from .after_run import analyze_when_done, select_runs
from .after_run import notify as notify_command
from .submission_window import SubmissionWindow, window_for
from ..state import layout
from .step_decide import DecideStep
from .step_monitor import MonitorStep
from .step_reconcile import ReconcileStep
from .step_search import SearchStep, load_search
from .step_recover import RecoverStep
from .step_submit import SubmitStep
from .submission import DRY_ID



class Orchestrator(ReconcileStep, DecideStep, SubmitStep, MonitorStep, RecoverStep, SearchStep):
    """Reconcile -> decide -> submit -> monitor (-> recover), each step its own module (step_*.py);
    this class holds their shared state and runs them in order (start, then monitor)."""

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
        self.search = load_search(plan.exp_dir)  # None: a plain grid (run/step_search.py)

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
        self.advance_search()  # decisions a killed `ck run` left to make
        counts = {a.value: sum(o.action is a for o in self.outcomes.values()) for a in Action}
        self._event(EventType.SUBMIT_SUMMARY, details=", ".join(f"{v} {k}" for k, v in counts.items() if v),
                    note=f"job ids: {' '.join(self.report.submitted) or 'none'}")
        self.write_status()

    # ---- status table ------------------------------------------------------------------
    def status_rows(self) -> list[dict]:
        return table_rows(self.plan, self.ledger.jobs(), self.outcomes)

    def write_status(self) -> None:
        try:
            from ..experiment.status import write_status_section

            write_status_section(self.plan.exp_dir / layout.SUMMARY, self.status_rows())
        except (OSError, CkError, ValueError) as exc:  # the table is a view: never stop monitoring over it
            if not self._status_warned:
                self._status_warned = True
                self._event(EventType.WARNING, key="status table",
                            note=f"could not update the ## Status table: {exc}")


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
        pruned = sum(j.verdict is Verdict.PRUNED for j in report.jobs)
        done = sum(j.ok for j in report.jobs) - pruned
        orch._event(EventType.COMPLETE,
                    details=f"{done}/{len(report.jobs)} job(s) COMPLETED; {len(report.failed)} failed or skipped"
                            + (f"; {pruned} pruned by the search" if pruned else "")
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
