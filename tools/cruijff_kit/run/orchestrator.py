"""run-experiment: submit every job an experiment needs, chain each run's evaluations to its own
training, monitor them all with one batched poll per cycle, recover, and keep the ledger, logs and
status table current. Shared by the local and SLURM executors (they only submit / poll / cancel).

Why per-run chaining: an evaluation waits only for its own run's training (`after=`), never for
the slowest run of the experiment (the seeds' barrier).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import CkError
from ..executors.core import Executor, JobInfo, JobState, SubmitError, SubmitLimitReached
from ..util.log import ActionLog
from . import recovery
from .ledger import LIVE_STATES, Ledger, duration, format_seconds, monitor_lock
from .plan import Plan, PlannedJob, has_checkpoint, is_done, plan_experiment
from .after_run import analyze_when_done, select_runs
from .after_run import notify as notify_command
from .submission_window import QUEUED, SubmissionWindow, mark_queued, window_for

TAIL_LINES = 20
UNKNOWN_POLLS_BEFORE_GIVING_UP = 3
DRY_ID = "(its training job)"
NO_ARTIFACT = "exit 0 but"


@dataclass
class JobOutcome:
    key: str
    run: str
    kind: str
    label: str
    action: str  # submit | reattach | done | skip | refuse
    job_id: str | None = None
    state: str | None = None
    note: str | None = None

    @property
    def ok(self) -> bool:
        # exit 0 without the artifact (no checkpoint / no successful .eval) is not a result
        return self.state == "COMPLETED" and not (self.note or "").startswith(NO_ARTIFACT)

    def to_dict(self) -> dict:
        return {**self.__dict__, "ok": self.ok}


@dataclass
class RunReport:
    exp_dir: str
    executor: str
    jobs: list[JobOutcome] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)  # job ids submitted by this invocation
    refused: list[str] = field(default_factory=list)  # runs --only inspect could not evaluate
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[JobOutcome]:
        if self.dry_run:
            return []
        return [j for j in self.jobs if not j.ok and j.action != "refuse"]

    def to_dict(self) -> dict:
        return {"experiment": self.exp_dir, "executor": self.executor, "dry_run": self.dry_run,
                "submitted": self.submitted, "refused": self.refused, "warnings": self.warnings,
                "jobs": [j.to_dict() for j in self.jobs],
                "ok": not self.failed and not self.refused}


class Orchestrator:
    def __init__(self, plan: Plan, executor: Executor, *, only: str | None = None,
                 retry_failed: bool = False, poll_s: float = 60,
                 out: Callable[[str], None] | None = None, sleep: Callable[[float], None] = time.sleep,
                 window: SubmissionWindow | None = None):
        self.plan, self.ex, self.only = plan, executor, only
        self.window = window  # submission limit (submission_window.py); learnt in start() when None
        self._queued_state: dict[str, str | None] = {}
        self.runs: set[str] | None = None  # --runs GLOB: only these run directories  # queued key -> its ledger state when decided
        self.retry_failed, self.poll_s = retry_failed, poll_s
        self.out = out or (lambda line: print(line, flush=True))
        self.sleep = sleep
        exp = plan.exp_dir
        self.ledger = Ledger(exp)
        self.log = ActionLog(exp / "run-experiment.log")
        self.tune_log = ActionLog(exp / "run-torchtune.log")
        self.inspect_log = ActionLog(exp / "run-inspect.log")
        self.report = RunReport(str(exp), executor.name, warnings=list(plan.warnings))
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
        return jobs if self.runs is None else [j for j in jobs if j.run in self.runs]  # --runs GLOB

    def _wlog(self, job: PlannedJob) -> ActionLog:
        return self.tune_log if job.kind == "finetune" else self.inspect_log

    def _outcome(self, job: PlannedJob, action: str, **kw) -> JobOutcome:
        o = JobOutcome(job.key, job.run, job.kind, job.label, action, **kw)
        self.outcomes[job.key] = o
        return o

    def _say(self, job: PlannedJob, job_id: str | None, state: str, note: str = "") -> None:
        stamp = time.strftime("%H:%M:%S")
        tail = f"  {note}" if note else ""
        self.out(f"[{stamp}] {job.run:<24} {job.label:<30} {job_id or '-':<12} {state}{tail}")

    # ---- phase 1: decide and submit ----------------------------------------------------
    def start(self, dry_run: bool = False) -> None:
        self.report.dry_run = dry_run
        exp = self.plan.exp_dir
        n_ft, n_ev = len(self.plan.finetunes), len(self.plan.evals)
        if not dry_run:
            self.log.write("DISCOVER_EXPERIMENT", "Found experiment", details=str(exp / "experiment_summary.md"),
                           result=f"{n_ft} fine-tuning job(s), {n_ev} evaluation(s); executor {self.ex.name}"
                                  + (f"; only {self.only}" if self.only else ""))
        entries = self.ledger.jobs()
        for key, e in entries.items():
            if e.get("state") in LIVE_STATES and e.get("executor") not in (None, self.ex.name):
                raise CkError(f"{key} is still {e['state']} under the {e['executor']} executor "
                              f"(job {e.get('job_id')})", file=self.ledger.path, field="executor",
                              hint=f"run again with --executor {e['executor']}")
        if self.window is None:
            self.window = window_for(self.ex, exp, [j.script for j in self._jobs()], backoff_s=self.poll_s)
        if self.window.limit is not None:
            self.out(f"    submission limit: {self.window.describe()}")
            if not dry_run:
                self.log.write("SUBMISSION_LIMIT", "Submission window", details=self.window.describe(),
                               result="jobs over it wait in the ledger as QUEUED and are submitted as jobs end")
        for job in self._jobs():
            self._decide(job, entries.get(job.key), dry_run)
        if self.window.queue and not dry_run:
            mark_queued(self.ledger, [(k, self.plan.get(k)) for k in self.window.queue])
        if self.only == "inspect" and self.report.refused and not (
                self.live or any(o.action in ("submit", "queue") for o in self.outcomes.values())):
            raise CkError("no evaluation can run: no checkpoint for run(s) " + ", ".join(self.report.refused),
                          hint="fine-tune first (`ck run DIR --only torchtune` or plain `ck run DIR`)")
        if not dry_run:
            counts = {a: sum(o.action == a for o in self.outcomes.values())
                      for a in ("submit", "queue", "reattach", "done", "skip", "refuse")}
            self.log.write("SUBMIT", "Jobs submitted",
                           details=", ".join(f"{v} {k}" for k, v in counts.items() if v),
                           result=f"job ids: {' '.join(self.report.submitted) or 'none'}")
            self._write_status()

    def _decide(self, job: PlannedJob, e: dict | None, dry_run: bool) -> None:
        state = (e or {}).get("state")
        if state == QUEUED:  # decided earlier, never submitted: decide again
            state = None
        done = is_done(job, self.plan)
        if state in LIVE_STATES and e.get("job_id"):
            self.live[job.key] = e["job_id"]
            self._outcome(job, "reattach", job_id=e["job_id"], state=state)
            self._say(job, e["job_id"], state, "re-attached")
            return
        if done and state in (None, "COMPLETED"):
            note = "done" if state else "found on disk"
            if state is None and not dry_run:
                self.ledger.record_found(job.key, kind=job.kind, run=job.run)
            self._outcome(job, "done", job_id=(e or {}).get("job_id"), state="COMPLETED", note=note)
            self._say(job, (e or {}).get("job_id"), "COMPLETED", note)
            return
        if state and state not in ("COMPLETED", JobState.DEPENDENCY_NEVER_SATISFIED.value) \
                and not self.retry_failed:
            self._outcome(job, "skip", job_id=e.get("job_id"), state=state,
                          note=f"{state} earlier; --retry-failed resubmits it")
            self._say(job, e.get("job_id"), state, "not resubmitted (use --retry-failed)")
            return
        dep = job.depends_on if job.kind == "eval" and self.only != "inspect" else None
        if self.window.holds(job.key, dep, len(self.live)):
            self._queue(job, state, dry_run)
            return
        self._submit_decided(job, state, dry_run)

    def _queue(self, job: PlannedJob, state: str | None, dry_run: bool) -> None:
        """Wait for room under the submission limit (submission_window.py)."""
        dep = job.depends_on if job.kind == "eval" and self.only != "inspect" else None
        self.window.add(job.key, dep)
        self._queued_state[job.key] = state
        self._outcome(job, "queue", state=QUEUED, note=self.window.describe())
        self._say(job, None, "WOULD QUEUE" if dry_run else QUEUED, "")

    def _drain(self) -> bool:
        """Submit queued jobs while the window has room; True when anything changed."""
        changed = False
        for key in self.window.due(len(self.live)):
            if self.window.room(len(self.live)) <= 0:
                break  # a refusal closed the window
            pause = self.window.pause()
            if pause:
                self.sleep(pause)
            self.window.discard(key)
            job = self.plan.get(key)
            self._submit_decided(job, self._queued_state.pop(key, None), False)
            changed = True
        return changed

    def _submit_decided(self, job: PlannedJob, state: str | None, dry_run: bool) -> None:
        after = None
        if job.kind == "eval":
            after, why_not = self._eval_dependency(job)
            if why_not is not None:
                action = "refuse" if self.only == "inspect" else "skip"
                if action == "refuse" and job.run not in self.report.refused:
                    self.report.refused.append(job.run)
                self._outcome(job, action, state=None, note=why_not)
                self._say(job, None, "SKIPPED" if action == "skip" else "REFUSED", why_not)
                if not dry_run:
                    self.inspect_log.write("SKIP_EVAL", f"{job.key}", details=why_not,
                                           result="refused" if action == "refuse" else "skipped")
                return
        note = None
        if state == "COMPLETED":
            note = "artifacts missing although the ledger says COMPLETED; resubmitting"
        elif state:
            note = f"retrying after {state}"
        if dry_run:
            self.live[job.key] = DRY_ID  # so its evaluations are planned "after" it
            self._outcome(job, "submit", note=note or (f"after {after}" if after else None))
            self._say(job, None, "WOULD SUBMIT", f"after {after}" if after else "")
            return
        self._submit(job, after, note=note)

    def _eval_dependency(self, job: PlannedJob) -> tuple[str | None, str | None]:
        """(job id to run after, reason it cannot run)."""
        ckpt = job.checkpoints[0] if job.checkpoints else None
        if self.only == "inspect" or job.depends_on is None:
            if has_checkpoint(job):
                return None, None
            orphan = job.depends_on is None and job.epoch is not None and self.only != "inspect"
            return None, f"no checkpoint at {ckpt}" + (f" and no finetune.slurm in {job.run}/" if orphan else "")
        ft = self.outcomes.get(job.depends_on)
        if job.depends_on in self.live:
            return self.live[job.depends_on], None
        if has_checkpoint(job):
            return None, None  # training finished (or failed after saving this epoch)
        if ft is not None and ft.action == "done":
            return None, f"no checkpoint at {ckpt} although training is done (epoch beyond its epochs?)"
        return None, "skipped: training failed" + (f" ({ft.state or ft.note})" if ft else "")

    def _submit(self, job: PlannedJob, after: str | None, *, note: str | None = None) -> str | None:
        overrides = self.overrides.get(job.key, {})
        env = {recovery.ENV_VAR: recovery.format_overrides(overrides)} if overrides else {}
        spec = job.spec(env=env)
        try:
            job_id = self.ex.submit(spec, after=after)
        except SubmitLimitReached as err:
            # Over the scheduler's limit (jobs outside this experiment count too): wait, retry.
            self.window.refused()
            dep = job.depends_on if job.kind == "eval" and self.only != "inspect" else None
            self.window.queue = {job.key: dep, **self.window.queue}  # first in line again
            prev = (self.ledger.entry(job.key) or {}).get("state")
            self._queued_state[job.key] = None if prev in (None, QUEUED) else prev
            mark_queued(self.ledger, [(job.key, job)], note=str(err).splitlines()[0])
            self._outcome(job, "queue", state=QUEUED, note="submission limit reached; retrying")
            self._say(job, None, QUEUED, "submission limit reached; retrying as jobs end")
            return None
        except SubmitError as err:
            # Nothing was submitted: record nothing as submitted, say exactly why.
            self._outcome(job, "skip", state="SUBMIT_FAILED", note=str(err))
            self._say(job, None, "SUBMIT FAILED", str(err).splitlines()[0])
            self._wlog(job).write("SUBMIT_FAILED", job.key, details=str(err), result="not submitted")
            return None
        self.ledger.record_submit(job.key, kind=job.kind, run=job.run, executor=self.ex.name, job_id=job_id,
                                  after=after, sbatch_args=spec.sbatch_args, overrides=overrides, note=note)
        self.report.submitted.append(job_id)
        self.live[job.key] = job_id
        self._outcome(job, "submit", job_id=job_id, state="PENDING", note=note)
        self._say(job, job_id, "SUBMITTED", (f"after {after}" if after else "") + (f" {note}" if note else ""))
        self._wlog(job).write("SUBMIT_JOB", f"{job.key}", details=f"script {job.script}"
                              + (f"; after {after}" if after else "")
                              + (f"; {recovery.ENV_VAR}={env[recovery.ENV_VAR]}" if env else ""),
                              result=f"job id {job_id}")
        return job_id

    # ---- phase 2: monitor --------------------------------------------------------------
    def monitor(self) -> None:
        if not self.live and not self.window.queue:
            return
        self.log.write("MONITOR", "Monitoring jobs", details=f"{len(self.live)} live job(s), poll every {self.poll_s}s"
                       + (f"; {len(self.window.queue)} queued, {self.window.describe()}" if self.window.queue else ""))
        ft_open = self._open("finetune")
        ev_open = self._open("eval")
        t0 = time.monotonic()
        try:
            while self.live or self.window.queue:
                infos = self.ex.poll(list(self.live.values()))  # ONE batched query per cycle
                changed = False
                with self.ledger.deferred():  # one ledger write per cycle (submissions: at once)
                    for key, jid in list(self.live.items()):
                        if self.live.get(key) != jid:
                            continue  # replaced by a recovery resubmission during this cycle
                        changed |= self._observe(self.plan.get(key), infos.get(jid) or JobInfo(jid, JobState.UNKNOWN))
                    if self.window.queue:
                        changed |= self._drain()  # jobs that ended made room
                    if changed:
                        self._counts()
                        self._write_status()
                if ft_open and not self._open("finetune"):
                    ft_open = False
                    self._phase_done("finetune", "RUN_TORCHTUNE_COMPLETE", "Fine-tuning finished", t0)
                if ev_open and not self.live and not self.window.queue:
                    ev_open = False
                    self._phase_done("eval", "RUN_INSPECT_COMPLETE", "Evaluation finished", t0)
                if self.live or self.window.queue:
                    self.sleep(self.poll_s)
        except KeyboardInterrupt:
            self.log.write("MONITOR_STOPPED", "Interrupted", details=f"{len(self.live)} job(s) still live",
                           result="jobs keep running; run `ck run` again to resume monitoring")
            raise

    def _open(self, kind: str) -> bool:
        """Jobs of this kind still live or queued."""
        return any(self.plan.get(k).kind == kind for k in (*self.live, *self.window.queue))

    def _phase_done(self, kind: str, action: str, title: str, t0: float) -> None:
        outs = [o for o in self.outcomes.values() if o.kind == kind]
        ok = sum(o.state == "COMPLETED" for o in outs)
        self.log.write(action, title, details=f"{len(outs)} job(s): {ok} COMPLETED, {len(outs) - ok} not",
                       duration=format_seconds(time.monotonic() - t0),
                       result=f"see run-{'torchtune' if kind == 'finetune' else 'inspect'}.log")

    def _counts(self) -> None:
        states = [o.state or "" for o in self.outcomes.values()]
        parts = [f"{states.count(s)} {s.lower()}" for s in ("RUNNING", "PENDING", QUEUED, "COMPLETED") if states.count(s)]
        bad = sum(1 for o in self.outcomes.values() if o.state and o.state not in ("RUNNING", "PENDING", QUEUED, "COMPLETED", "UNKNOWN"))
        skipped = sum(1 for o in self.outcomes.values() if o.action in ("skip", "refuse") and not o.state)
        parts += [f"{bad} failed"] if bad else []
        parts += [f"{skipped} skipped"] if skipped else []
        self.out("    " + ", ".join(parts))

    def _observe(self, job: PlannedJob, info: JobInfo) -> bool:
        o = self.outcomes[job.key]
        if info.state is JobState.UNKNOWN:
            n = self._unknown[job.key] = self._unknown.get(job.key, 0) + 1
            if n < UNKNOWN_POLLS_BEFORE_GIVING_UP:
                return False
            # The scheduler forgot the job: the artifacts decide.
            state = JobState.COMPLETED if is_done(job, self.plan) else JobState.FAILED
            info = JobInfo(info.job_id, state, reason="scheduler lost track of the job; judged from disk")
        self._unknown.pop(job.key, None)
        if o.state == info.state.value:
            return False
        o.state = info.state.value
        self.ledger.record_info(job.key, info)
        if not info.state.terminal:
            self._say(job, info.job_id, info.state.value)
            if info.state is JobState.RUNNING:
                self._wlog(job).write("JOB_STARTED", job.key, result=f"job {info.job_id} RUNNING")
            return True
        del self.live[job.key]
        self._finished(job, info)
        return True

    def _finished(self, job: PlannedJob, info: JobInfo) -> None:
        o = self.outcomes[job.key]
        dur = duration(self.ledger.entry(job.key))
        if info.state is JobState.COMPLETED:
            if not is_done(job, self.plan):
                o.note = (f"{NO_ARTIFACT} checkpoints missing" if job.kind == "finetune"
                          else f"{NO_ARTIFACT} no successful .eval log in eval/logs/")
            self._say(job, info.job_id, "COMPLETED", f"{dur} {o.note or ''}".strip())
            self._wlog(job).write("JOB_COMPLETE", job.key, details=o.note, duration=dur or "-",
                                  result=f"job {info.job_id} COMPLETED")
            return
        if info.state is JobState.DEPENDENCY_NEVER_SATISFIED:
            ft = self.outcomes.get(job.depends_on or "")
            o.note = "skipped: training failed" + (f" ({ft.state})" if ft and ft.state else "")
            self._say(job, info.job_id, info.state.value, o.note)
            self.inspect_log.write("SKIP_EVAL", job.key, details=info.reason, result=o.note)
            return
        tail = self._tail(info)
        o.note = info.reason or ""
        self._say(job, info.job_id, info.state.value, f"{dur} {o.note}".strip())
        if tail:
            self.out("\n".join(f"    | {line}" for line in tail))
        self._wlog(job).write("JOB_FAILED", job.key, details=f"{info.state.value}: {info.reason or ''}".strip(),
                              log=str(info.log or self.ex.log_path(job.spec(), info.job_id)),
                              result=f"job {info.job_id} {info.state.value}")
        if job.kind == "finetune":
            self._recover(job, info)

    def _tail(self, info: JobInfo) -> list[str]:
        path = info.log
        if path is None or not Path(path).is_file():
            return []
        try:
            lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return []
        return lines[-TAIL_LINES:]

    # ---- recovery ----------------------------------------------------------------------
    def _recover(self, job: PlannedJob, info: JobInfo) -> None:
        attempts = (self.ledger.entry(job.key) or {}).get("attempts", [])
        previous = dict(attempts[-1].get("overrides") or {}) if attempts else {}
        if info.state is JobState.OUT_OF_MEMORY:
            so_far = sum(a.get("state") == "OUT_OF_MEMORY" for a in attempts) - 1
            new, why = recovery.oom_retry(previous, attempts_so_far=so_far,
                                          finetune_yaml=job.finetune_yaml, setup_yaml=job.setup_yaml)
        elif info.state is JobState.TIMEOUT:
            so_far = sum(a.get("state") == "TIMEOUT" for a in attempts) - 1
            new, why = recovery.timeout_retry(previous, attempts_so_far=so_far, checkpoints=job.checkpoints)
        else:
            return
        if new is None:
            self.log.write("RECOVERY", f"{job.key}: no retry after {info.state.value}", result=why)
            self.out(f"    no retry: {why}")
            return
        self.overrides[job.key] = new
        self.log.write("RECOVERY", f"{job.key}: resubmitting after {info.state.value}", details=why)
        new_id = self._submit(job, None, note=f"retry after {info.state.value}: {why}")
        queued = new_id is None and job.key in self.window.queue  # over the limit: waits its turn
        if new_id is None and not queued:
            return
        # The evaluations waited on the old id; point them at the new one.
        for dep in self.plan.dependents(job.key):
            old = self.live.pop(dep.key, None)
            if old is None and dep.key not in self.outcomes:
                continue
            if old is not None:
                self.ex.cancel([old])
                self.ledger.record_info(dep.key, JobInfo(old, JobState.CANCELLED, reason="superseded: training resubmitted"))
            if queued and (old is not None or self.outcomes[dep.key].action in ("submit", "reattach", "queue")):
                if dep.key not in self.window.queue:
                    self._queue(dep, None, False)
                    mark_queued(self.ledger, [(dep.key, dep)], note="training waits for room to be resubmitted")
            elif old is not None or self.outcomes[dep.key].action in ("submit", "reattach"):
                self._submit(dep, new_id, note="training resubmitted")

    # ---- status table ------------------------------------------------------------------
    def status_rows(self) -> list[dict]:
        return status_rows(self.plan, self.ledger.jobs(), self.outcomes)

    def _write_status(self) -> None:
        try:
            from ..experiment.status import write_status_section

            write_status_section(self.plan.exp_dir / "experiment_summary.md", self.status_rows())
        except Exception as exc:  # the table is a view: never stop monitoring over it
            if not self._status_warned:
                self._status_warned = True
                self.out(f"    warning: could not update the ## Status table: {exc}")
                self.log.write("STATUS_TABLE", "Could not update experiment_summary.md", details=str(exc))


def status_rows(plan: Plan, entries: dict, outcomes: dict[str, JobOutcome] | None = None) -> list[dict]:
    rows = []
    for job in plan.jobs:
        e = entries.get(job.key) or {}
        o = (outcomes or {}).get(job.key)
        state = e.get("state") or ""
        if o is not None and o.action in ("skip", "refuse") and not o.state:
            state = o.note or "skipped"
        elif o is not None and o.note and o.note.startswith("skipped"):
            state = o.note
        elif e.get("note") == "found on disk":
            state = "COMPLETED (found on disk)"
        rows.append({"run": job.run, "job": job.label, "job_id": e.get("job_id") or "",
                     "state": state, "duration": duration(e)})
    return rows


def run_experiment(exp_dir: str | Path, executor: Executor, only: str | None = None, poll_s: float = 60,
                   detach: bool = False, retry_failed: bool = False, max_parallel: int | None = None,
                   dry_run: bool = False, out: Callable[[str], None] | None = None,
                   sleep: Callable[[float], None] = time.sleep, runs: str | None = None,
                   analyze: bool = False, notify: str | None = None) -> RunReport | dict:
    """Submit and monitor an experiment until every job ends. With `detach`, start a background
    supervisor doing exactly that and return where to look (a dict)."""
    if only not in (None, "torchtune", "inspect"):
        raise CkError(f"--only must be torchtune or inspect, not {only!r}", field="--only")
    exp = Path(exp_dir).resolve()
    if max_parallel is not None and hasattr(executor, "max_parallel"):
        executor.max_parallel = max(1, int(max_parallel))
    if detach:
        from .supervisor import spawn, supervisor_argv

        select_runs(plan_experiment(exp), runs)  # fail here, in the foreground, on a broken experiment
        return spawn(exp, supervisor_argv(exp, executor, only=only, poll_s=poll_s, retry_failed=retry_failed,
                                          runs=runs, analyze=analyze, notify=notify))
    plan = plan_experiment(exp)
    selected = select_runs(plan, runs)
    if dry_run:
        orch = Orchestrator(plan, executor, only=only, retry_failed=retry_failed, poll_s=poll_s, out=out)
        orch.runs = selected
        orch.start(dry_run=True)
        return _finish(orch)
    with monitor_lock(exp):
        orch = Orchestrator(plan, executor, only=only, retry_failed=retry_failed, poll_s=poll_s, out=out,
                            sleep=sleep)
        orch.runs = selected
        orch.start()
        orch.monitor()
        report = _finish(orch)
        orch._write_status()
        done = sum(j.state == "COMPLETED" for j in report.jobs)
        orch.log.write("COMPLETE", "Experiment execution finished",
                       details=f"{done}/{len(report.jobs)} job(s) COMPLETED; {len(report.failed)} failed or skipped"
                               + (f"; refused (no checkpoint): {', '.join(report.refused)}" if report.refused else ""),
                       result="logs: run-torchtune.log, run-inspect.log; eval logs: <run>/eval/logs/*.eval")
        if analyze:
            analyze_when_done(exp, orch.log, orch.out)
        if notify:
            notify_command(exp, notify, orch.log, orch.out)
        return report


def _finish(orch: Orchestrator) -> RunReport:
    orch.report.jobs = [orch.outcomes[j.key] for j in orch.plan.jobs if j.key in orch.outcomes]
    return orch.report


def default_out(json_mode: bool) -> Callable[[str], None]:
    stream = sys.stderr if json_mode else sys.stdout
    return lambda line: print(line, file=stream, flush=True)
