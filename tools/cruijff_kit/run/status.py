"""`ck status DIR`: what the ledger says, refreshed from disk where that is free. Submits nothing,
starts nothing, takes no monitor lock (it must work while a supervisor runs)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..errors import CkError
from .ledger import LIVE_STATES, Ledger, duration, lock_holder
from .plan import is_done, plan_experiment
from .supervisor import pid_running, supervisor_pid


def _local_refresh(exp: Path, entries: dict) -> dict[str, str]:
    """Live local jobs' states from EXP/.ck/local (read-only peek: nothing is launched)."""
    ids = [e["job_id"] for e in entries.values()
           if e.get("executor") == "local" and e.get("state") in LIVE_STATES and e.get("job_id")]
    if not ids:
        return {}
    from ..executors.local import LocalExecutor

    infos = LocalExecutor(exp, gpus=[]).peek(ids)
    return {jid: info.state.value for jid, info in infos.items()}


def experiment_status(exp_dir: str | Path) -> dict:
    exp = Path(exp_dir).resolve()
    entries = Ledger(exp).jobs()
    try:
        plan = plan_experiment(exp)
    except CkError as err:
        plan, plan_error = None, str(err)
    else:
        plan_error = None
    fresh = _local_refresh(exp, entries)
    jobs = []
    keys = [j.key for j in plan.jobs] if plan else []
    keys += [k for k in entries if k not in keys]  # jobs the ledger knows but the disk no longer shows
    for key in keys:
        e = entries.get(key) or {}
        job = plan.get(key) if plan else None
        state = fresh.get(e.get("job_id"), e.get("state") or "")
        jobs.append({
            "key": key, "run": job.run if job else e.get("run", key.split("/")[0]),
            "job": job.label if job else key.split("/", 1)[-1], "kind": job.kind if job else e.get("kind"),
            "executor": e.get("executor"), "job_id": e.get("job_id"), "state": state,
            "ledger_state": e.get("state"), "reason": e.get("reason") or e.get("note"),
            "duration": duration(e), "attempts": len(e.get("attempts", [])),
            "artifacts": bool(job and is_done(job, plan)),
        })
    if plan is not None:  # measured resources of finished jobs (run/resources.py)
        from .resources import format_resources, job_resources

        used = job_resources(plan, entries)
        for j in jobs:
            r = used.get(j["key"])
            j["resources"], j["resources_text"] = (r.to_dict() if r else None), format_resources(r)
    pid = supervisor_pid(exp)
    counts = Counter(j["state"] or "NOT_SUBMITTED" for j in jobs)
    return {
        "experiment": str(exp),
        "supervisor": {"holder": lock_holder(exp) if (exp / ".ck").is_dir() else None,
                       "pid": pid, "running": bool(pid and pid_running(pid))},
        "jobs": jobs, "counts": dict(sorted(counts.items())), "plan_error": plan_error,
    }
