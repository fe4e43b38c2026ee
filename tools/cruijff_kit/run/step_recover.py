"""Recovery: OUT_OF_MEMORY resubmits with a smaller batch (same effective batch), TIMEOUT
resumes from the last epoch checkpoint (run/recovery.py has the rules).

A step of the run orchestrator (run/orchestrator.py): its methods work on the Orchestrator's
state (plan, executor, ledger, live jobs, outcomes, submission window)."""
from __future__ import annotations

from ..executors.core import JobInfo, JobState
from . import recovery
from .events import EventType
from .outcome import Action
from ..state.jobs import PlannedJob
from .submission import Submission


class RecoverStep:
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
