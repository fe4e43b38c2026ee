"""How many jobs SLURM lets this user have submitted (pending + running) at once.

Sites cap it per user in the QOS (MaxSubmitJobsPerUser, GrpSubmitJobs) or in the user's
association (MaxSubmitJobs, GrpSubmitJobs); sbatch refuses the job over the cap with
QOSMaxSubmitJobPerUserLimit / AssocMaxSubmitJobLimit. Two `sacctmgr` queries (once per `ck run`)
give the smallest cap that applies to the QOS and account the jobs will use. MaxJobs (running at
once) is not a submission limit: jobs over it simply pend (reason AssocMaxJobsLimit), so ck does
not throttle for it.

Nothing here fails a run: a cluster without accounting, or a sacctmgr that does not answer, just
means "no known limit", and a refusal at submit time is still caught (SubmitLimitReached).
"""
from __future__ import annotations

import getpass
import os
from typing import Callable, Iterable

from ..core import SubmitLimit

ASSOC_FIELDS = ("account", "maxsubmit", "grpsubmit", "qos", "defaultqos")
QOS_FIELDS = ("name", "maxsubmitpu", "maxsubmitpa", "grpsubmit")




def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None


def parse_assoc(stdout: str) -> list[dict[str, str]]:
    """Rows of `sacctmgr -n -P show assoc where user=U format=<ASSOC_FIELDS>`."""
    rows = []
    for line in stdout.splitlines():
        cols = line.split("|")
        if len(cols) >= len(ASSOC_FIELDS):
            rows.append(dict(zip(ASSOC_FIELDS, (c.strip() for c in cols))))
    return rows


def parse_qos(stdout: str) -> dict[str, dict[str, str]]:
    """Rows of `sacctmgr -n -P show qos format=<QOS_FIELDS>`, by QOS name."""
    out = {}
    for line in stdout.splitlines():
        cols = line.split("|")
        if len(cols) >= len(QOS_FIELDS) and cols[0].strip():
            row = dict(zip(QOS_FIELDS, (c.strip() for c in cols)))
            out[row["name"]] = row
    return out


def smallest_limit(assocs: list[dict[str, str]], qos: dict[str, dict[str, str]], *,
                   account: str | None = None, qos_name: str | None = None) -> SubmitLimit:
    """The tightest submit cap for jobs of `account` (any of the user's when None) under `qos_name`
    (else each association's default QOS, else 'normal')."""
    found: list[tuple[int, str]] = []
    rows = [a for a in assocs if not account or a["account"] == account] or assocs
    for a in rows:
        for field, label in (("maxsubmit", "MaxSubmitJobs"), ("grpsubmit", "GrpSubmitJobs")):
            n = _int(a[field])
            if n is not None:
                found.append((n, f"association {a['account']} {label}={n}"))
        name = qos_name or a["defaultqos"] or "normal"
        q = qos.get(name)
        if q is None:
            continue
        for field, label in (("maxsubmitpu", "MaxSubmitJobsPerUser"), ("maxsubmitpa", "MaxSubmitJobsPerAccount"),
                             ("grpsubmit", "GrpSubmitJobs")):
            n = _int(q[field])
            if n is not None:
                found.append((n, f"QOS {name} {label}={n}"))
    if not found:
        return SubmitLimit(None, "no submit limit in sacctmgr")
    n, source = min(found)
    return SubmitLimit(n, source)


def learn_submit_limit(run: Callable[[list[str]], object], requested: Iterable[dict[str, str]] = ()) -> SubmitLimit:
    """Ask sacctmgr (through `run`, the executor's counted runner). `requested` are the sbatch
    options of the scripts to submit (parse.requested_options): their --qos / --account, else
    $SBATCH_QOS / $SBATCH_ACCOUNT, choose the QOS and association."""
    qos_name = account = None
    for opts in requested:
        qos_name = qos_name or opts.get("qos")
        account = account or opts.get("account")
    qos_name = qos_name or os.environ.get("SBATCH_QOS") or None
    account = account or os.environ.get("SBATCH_ACCOUNT") or None
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        return SubmitLimit(None, "user name unknown")
    try:
        pa = run(["sacctmgr", "--noheader", "--parsable2", "show", "assoc", "where", f"user={user}",
                  f"format={','.join(ASSOC_FIELDS)}"])
        pq = run(["sacctmgr", "--noheader", "--parsable2", "show", "qos", f"format={','.join(QOS_FIELDS)}"])
    except Exception as exc:  # no sacctmgr / no slurmdbd: no known limit, refusals still handled
        return SubmitLimit(None, f"sacctmgr unavailable ({exc})")
    if getattr(pa, "returncode", 1) != 0 or getattr(pq, "returncode", 1) != 0:
        return SubmitLimit(None, "sacctmgr did not answer (no accounting?)")
    return smallest_limit(parse_assoc(pa.stdout), parse_qos(pq.stdout), account=account, qos_name=qos_name)
