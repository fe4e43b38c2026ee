"""`ck status DIR`: what the ledger says, refreshed where that is free. Read-only: submits
nothing, starts nothing, takes no lock and writes no file (it must work while a supervisor runs,
and on an experiment the user can only read)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..errors import CkError
from ..executors.core import JobState
from ..state.identity import check_place
from ..state.ledger import Ledger, duration, entry_state, found_on_disk, is_live, lock_holder
from ..state.jobs import Plan, PlannedJob, is_done
from .outcome import JobOutcome, Verdict
from .plan import plan_experiment
from .search_status import search_status
from .supervisor import supervisor_pid, supervisor_running

# Peeking is free for the local backend (files under .ck/); asking SLURM costs a scheduler call
# per status, so SLURM states come from the ledger the monitor keeps current.
PEEK_BACKENDS = ("local",)


def job_row(key: str, job: PlannedJob | None, entry: dict, state: str) -> dict:
    """The columns every status view has for one job (the plan's `## Status` table, `ck status`):
    run, job, job id, state, duration; a job the plan no longer has is named from its key."""
    return {"run": job.run if job else entry.get("run", key.split("/")[0]),
            "job": job.label if job else key.split("/", 1)[-1],
            "job_id": entry.get("job_id") or "", "state": state, "duration": duration(entry)}


def table_rows(plan: Plan, entries: dict, outcomes: dict[str, JobOutcome] | None = None) -> list[dict]:
    """The rows of experiment_summary.md's `## Status` table, written by the monitor: the ledger's
    state, or why a job was not submitted this pass."""
    rows = []
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
        rows.append(job_row(job.key, job, e, state))
    return rows


def _refresh(exp: Path, entries: dict) -> dict[str, JobState]:
    """Live jobs' states from backends whose peek is free (nothing is launched or written)."""
    from ..executors import backend

    by_backend: dict[str, list[str]] = {}
    for e in entries.values():
        if is_live(e) and e.get("executor") in PEEK_BACKENDS:
            by_backend.setdefault(e["executor"], []).append(e["job_id"])
    fresh: dict[str, JobState] = {}
    for name, ids in by_backend.items():
        infos = backend(name).observer(exp).peek(ids)
        fresh.update({jid: info.state for jid, info in infos.items()})
    return fresh


def experiment_status(exp_dir: str | Path) -> dict:
    exp = Path(exp_dir).resolve()
    entries = Ledger(exp).jobs()
    plan_error = place_error = None
    plan = None
    try:
        ident = check_place(exp)
    except CkError as err:  # a copied .ck/: its ledger is another experiment's (ck status exits 2)
        ident, plan_error = None, str(err)
        place_error = plan_error
    try:
        if place_error is None:
            plan = plan_experiment(exp, exp_id=ident["id"] if ident else None)
    except CkError as err:
        plan_error = str(err)
    fresh = _refresh(exp, entries)
    jobs = []
    keys = [j.key for j in plan.jobs] if plan else []
    keys += [k for k in entries if k not in keys]  # jobs the ledger knows but the plan no longer has
    for key in keys:
        e = entries.get(key) or {}
        job = plan.get(key) if plan else None
        state = fresh.get(e.get("job_id")) or entry_state(e)
        jobs.append({
            "key": key, **job_row(key, job, e, state.value if state else ""),
            "kind": job.kind if job else e.get("kind"),
            "executor": e.get("executor"), "job_id": e.get("job_id"),
            "ledger_state": e.get("state"), "reason": e.get("reason") or e.get("note"),
            "found_on_disk": found_on_disk(e), "submitting": bool(e.get("intent")),
            "attempts": len(e.get("attempts", [])),
            "in_plan": job is not None,
            "artifacts": bool(job and is_done(job, plan)),
        })
    if plan is not None:  # measured resources of finished jobs (run/resources.py)
        from ..state.resources import format_resources, job_resources

        used = job_resources(plan, entries)
        for j in jobs:
            r = used.get(j["key"])
            j["resources"], j["resources_text"] = (r.to_dict() if r else None), format_resources(r)
    search = search_status(exp, plan) if place_error is None else None
    pid = supervisor_pid(exp)
    counts = Counter(j["state"] or "NOT_SUBMITTED" for j in jobs)
    return {
        "experiment": str(exp),
        "supervisor": {"holder": lock_holder(exp), "pid": pid, "running": supervisor_running(exp, pid)},
        "jobs": jobs, "counts": dict(sorted(counts.items())), "plan_error": plan_error, "place_error": place_error,
        "stale": plan.stale if plan else [], "unscaffolded": plan.unscaffolded if plan else [],
        "warnings": plan.warnings if plan else [],
        **({"search": search} if search is not None else {}),
    }
