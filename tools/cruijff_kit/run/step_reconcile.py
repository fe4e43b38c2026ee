"""Steps 0 and 1: say how the plan stands against the summary; match the intents a crash left
with what the scheduler has (exactly once).

A step of the run orchestrator (run/orchestrator.py): its methods work on the Orchestrator's
state (plan, executor, ledger, live jobs, outcomes, submission window)."""
from __future__ import annotations

from ..errors import CkError
from ..executors.core import JobInfo
from .events import EventType
from ..state.ledger import Ledger
from ..state import layout


class ReconcileStep:
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
