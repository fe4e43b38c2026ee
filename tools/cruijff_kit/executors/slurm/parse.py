"""Pure functions: SLURM command output -> JobInfo, sbatch refusals -> SubmitError.

Nothing here runs a process, so every function is tested against recorded outputs
(tests/slurm/test_parse.py). The column layouts are fixed by the format strings below; the
executor (executor.py) passes exactly these to squeue / sacct.
"""
from __future__ import annotations

import datetime as _dt
import re
import shlex
from pathlib import Path
from typing import Iterable, Sequence

from ...util.formats import parse_time
from ..core import JobInfo, JobState, SubmitError, SubmitLimitReached

# `-O field:|` means "no padding, '|' after the value": unambiguous, since none of these fields
# can contain '|'. exit_code is the raw wait status (768 == exit 3), only squeue -O offers it.
SQUEUE_FIELDS = ("JobID", "State", "Reason", "StartTime", "EndTime", "exit_code", "StdOut")
SQUEUE_FORMAT = ",".join(f"{f}:|" for f in SQUEUE_FIELDS)
SACCT_FIELDS = ("JobID", "State", "ExitCode", "Start", "End", "Reason", "WorkDir")
SACCT_FORMAT = ",".join(SACCT_FIELDS)

DEPENDENCY_NEVER_SATISFIED = "DependencyNeverSatisfied"

# SLURM's job states -> ours. Live states not listed as terminal keep the job "in flight".
_PENDING = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SPECIAL_EXIT"}
_RUNNING = {"RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING",
            "STAGE_OUT", "RESIZING"}
_TERMINAL = {
    "COMPLETED": JobState.COMPLETED,
    "FAILED": JobState.FAILED,
    "TIMEOUT": JobState.TIMEOUT,
    "DEADLINE": JobState.TIMEOUT,
    "CANCELLED": JobState.CANCELLED,
    "REVOKED": JobState.CANCELLED,
    "OUT_OF_MEMORY": JobState.OUT_OF_MEMORY,
    "NODE_FAIL": JobState.NODE_FAIL,
    "BOOT_FAIL": JobState.NODE_FAIL,
    "PREEMPTED": JobState.PREEMPTED,
}


# How far before a recorded time `sacct --starttime` looks: the intent's time comes from this host's
# clock, the submit time from slurmctld's. Looking earlier costs nothing (the tags are unique).
CLOCK_SKEW = _dt.timedelta(minutes=10)


def sacct_starttime(iso: str) -> str:
    """`sacct --starttime` text for an ISO time, less CLOCK_SKEW. sacct takes only local wall time
    (YYYY-MM-DDTHH:MM:SS): the UTC offset that ck's aware stamps carry ('+00:00') is refused
    ('Invalid time specification'), and a resume after an interrupted submit could never ask. An
    unreadable time asks from the epoch: slower, but a submission missed would be made twice."""
    t = parse_time(iso)
    if t is None:
        return "1970-01-01T00:00:00"
    return (t.astimezone() - CLOCK_SKEW).strftime("%Y-%m-%dT%H:%M:%S")


def _time(value: str) -> str | None:
    value = value.strip()
    return None if value.upper() in ("", "N/A", "NONE", "UNKNOWN") else value


def slurm_state(raw: str, reason: str | None = None) -> JobState:
    """Map a SLURM state word ("CANCELLED by 0" included) and reason to a JobState."""
    word = raw.strip().split(" ", 1)[0].rstrip("+").upper()
    if reason == DEPENDENCY_NEVER_SATISFIED and word in _PENDING | {"CANCELLED"}:
        # Pending forever (no --kill-on-invalid-dep) or killed by it: either way its
        # dependency ended badly, which is what the orchestrator must report.
        return JobState.DEPENDENCY_NEVER_SATISFIED
    if word in _PENDING:
        return JobState.PENDING
    if word in _RUNNING:
        return JobState.RUNNING
    return _TERMINAL.get(word, JobState.UNKNOWN)


def decode_wait_status(status: int) -> int:
    """squeue's exit_code is a wait(2) status: exit code in the high byte, signal in the low 7 bits."""
    sig = status & 0x7F
    return 128 + sig if sig else (status >> 8) & 0xFF


def decode_sacct_exit(value: str) -> int | None:
    """sacct's ExitCode is 'code:signal'; a signal-only death reads as 128+signal, like a shell."""
    m = re.fullmatch(r"\s*(\d+):(\d+)\s*", value)
    if not m:
        return None
    code, sig = int(m.group(1)), int(m.group(2))
    return code if code or not sig else 128 + sig


def parse_sbatch(stdout: str) -> tuple[str, str | None]:
    """`sbatch --parsable` prints 'jobid' or 'jobid;cluster' (warnings may precede it)."""
    lines = [ln.strip() for ln in stdout.splitlines() if ln.strip()]
    for line in reversed(lines):
        m = re.fullmatch(r"(\d+)(?:;(\S+))?", line)
        if m:
            return m.group(1), m.group(2)
    raise ValueError(f"no job id in sbatch output: {stdout.strip()!r}")


def parse_squeue(stdout: str) -> dict[str, JobInfo]:
    """Rows of `squeue --noheader --states=all --Format=SQUEUE_FORMAT`."""
    infos: dict[str, JobInfo] = {}
    for line in stdout.splitlines():
        if not line.strip():
            continue
        cols = line.split("|")
        if len(cols) < len(SQUEUE_FIELDS):
            continue  # a warning line, not a row
        job_id, raw_state, reason, start, end, status, stdout_path = (c.strip() for c in cols[:7])
        reason_v = None if reason in ("", "None") else reason
        state = slurm_state(raw_state, reason_v)
        exit_code = None
        if state.terminal and state is not JobState.DEPENDENCY_NEVER_SATISFIED and status.isdigit():
            exit_code = decode_wait_status(int(status))
        started = _time(start) if raw_state not in _PENDING else None  # pending: an estimate
        ended = _time(end) if state.terminal else None  # running: the time-limit estimate
        infos[job_id] = JobInfo(
            job_id=job_id,
            state=state,
            exit_code=exit_code,
            started=started,
            ended=ended,
            reason=reason_v,
            log=_expand_log(stdout_path, job_id),
        )
    return infos


def _expand_log(pattern: str, job_id: str) -> Path | None:
    """squeue shows the --output pattern unexpanded ('slurm-%j.out'); expand what is knowable."""
    if not pattern or pattern == "N/A":
        return None
    text = re.sub(r"%[jJA]", job_id, pattern.replace("%%", "\0"))
    if "%" in text:
        return None  # %x, %u, %N...: not worth guessing
    return Path(text.replace("\0", "%"))


def parse_sacct(stdout: str) -> dict[str, JobInfo]:
    """Rows of `sacct --noheader --parsable2 --allocations --format=SACCT_FORMAT`.

    Only consulted for jobs squeue no longer shows (slurmctld forgets them MinJobAge after they
    end), so squeue's DependencyNeverSatisfied reason is gone. A job that ended "CANCELLED"
    without "by <uid>" (the scheduler, not a user) while its reason was Dependency was killed
    by --kill-on-invalid-dep. slurmdbd does not always record that reason (it races the
    cancel), so such a job may read plain CANCELLED here: the monitor sees it through squeue
    first, polling well within MinJobAge.
    """
    infos: dict[str, JobInfo] = {}
    for line in stdout.splitlines():
        cols = line.split("|")
        if len(cols) < len(SACCT_FIELDS):
            continue
        job_id, raw_state, exit_code, start, end, reason, workdir = (c.strip() for c in cols[:7])
        if not re.fullmatch(r"\d+", job_id):
            continue  # steps (123.batch) are excluded by --allocations; arrays are not ours
        reason_v = None if reason in ("", "None") else reason
        state = slurm_state(raw_state, reason_v)
        if (state is JobState.CANCELLED and raw_state.strip() == "CANCELLED"
                and reason_v == "Dependency"):
            state = JobState.DEPENDENCY_NEVER_SATISFIED
            reason_v = DEPENDENCY_NEVER_SATISFIED
        infos[job_id] = JobInfo(
            job_id=job_id,
            state=state,
            exit_code=decode_sacct_exit(exit_code)
            if state.terminal and state is not JobState.DEPENDENCY_NEVER_SATISFIED else None,
            started=_time(start),
            ended=_time(end) if state.terminal else None,
            reason=reason_v if reason_v else (raw_state if " by " in raw_state else None),
            log=Path(workdir) / f"slurm-{job_id}.out" if workdir else None,
        )
    return infos


# ----------------------------------------------------------------------------- submissions
# sbatch options a user may set, long and short spellings -> canonical name
_OPTS = {
    "--partition": "partition", "-p": "partition",
    "--mem": "mem", "--mem-per-cpu": "mem-per-cpu", "--mem-per-gpu": "mem-per-gpu",
    "--gres": "gres", "--gpus": "gpus", "-G": "gpus", "--gpus-per-node": "gpus",
    "--gpus-per-task": "gpus",
    "--cpus-per-task": "cpus-per-task", "-c": "cpus-per-task",
    "--ntasks": "ntasks", "-n": "ntasks", "--nodes": "nodes", "-N": "nodes",
    "--ntasks-per-node": "ntasks-per-node",
    "--constraint": "constraint", "-C": "constraint",
    "--account": "account", "-A": "account", "--qos": "qos", "-q": "qos",
    "--time": "time", "-t": "time",
}


def requested_options(script_text: str, extra_args: Sequence[str] = ()) -> dict[str, str]:
    """The sbatch options a submission asks for: #SBATCH headers, overridden by CLI args.

    sbatch reads #SBATCH lines until the first command line, as done here.
    """
    args: list[str] = []
    for line in script_text.splitlines()[1:] if script_text.startswith("#!") else script_text.splitlines():
        s = line.strip()
        if not s:
            continue
        if not s.startswith("#"):
            break
        if s.startswith("#SBATCH"):
            try:
                args += shlex.split(s[len("#SBATCH"):], comments=True)
            except ValueError:
                continue
    args += list(extra_args)
    found: dict[str, str] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("--") and "=" in a:
            name, value = a.split("=", 1)
            if name in _OPTS:
                found[_OPTS[name]] = value
        elif a in _OPTS and i + 1 < len(args):
            found[_OPTS[a]] = args[i + 1]
            i += 1
        elif len(a) > 2 and a[:2] in _OPTS and not a.startswith("--"):
            found[_OPTS[a[:2]]] = a[2:]  # -pdebug
        i += 1
    return found


# (pattern in sbatch's stderr, option names it concerns, claude.local.md setting, what is wrong)
_REFUSALS: list[tuple[str, tuple[str, ...], str | None, str]] = [
    (r"invalid partition", ("partition",), "slurm.partition", "partition {v} does not exist"),
    (r"memory specification can not be satisfied", ("mem", "mem-per-cpu", "mem-per-gpu"), "slurm.mem",
     "memory {v} is more than any node offers"),
    (r"invalid generic resource|invalid gres", ("gpus", "gres"), "slurm.gpus",
     "GPU request {v} cannot be met: no node in the partition has such GPUs"),
    (r"more processors requested than permitted", ("cpus-per-task", "ntasks"), "slurm.cpus",
     "CPU request {v} is more than a node has"),
    (r"node count specification invalid", ("nodes",), "slurm.nodes", "node count {v} is more than the partition has"),
    (r"invalid feature specification", ("constraint",), "slurm.constraint", "constraint {v} matches no node"),
    (r"invalid account", ("account",), "slurm.account", "account {v} is not valid here"),
    (r"invalid qos", ("qos",), "slurm.qos", "QOS {v} is not valid here"),
    (r"time limit|--time specification", ("time",), "slurm.time", "time limit {v} is invalid or over the partition's limit"),
    (r"requested node configuration is not available", ("mem", "gpus", "gres", "cpus-per-task", "constraint"),
     "slurm.mem / slurm.gpus / slurm.cpus", "the requested resources ({v}) fit no node"),
]
# Refusals that only mean "too many of your jobs are queued right now": wait, never fail the run.
# The reason names are slurmctld's (slurm/slurm_errno.h, job_reason strings); the last alternative
# is the text of ESLURM_ACCOUNTING_POLICY that accompanies them.
SUBMIT_LIMIT = re.compile(
    r"(QOS|Assoc)(Grp)?MaxSubmitJob(s)?(PerUser|PerAccount)?Limit|(Qos|Assoc)GrpSubmitJobsLimit"
    r"|MaxSubmitJobs?(PerUser|PU|PA)?|job submit limit", re.I)
_UNREACHABLE = r"unable to contact slurm controller|socket timed out|connection refused|zero bytes were transmitted"


def explain_refusal(stderr: str, script: Path, requested: dict[str, str],
                    partitions: Iterable[str] | None = None) -> SubmitError:
    """Turn sbatch's refusal into an error that names the offending setting and value."""
    err = " / ".join(ln.strip() for ln in stderr.strip().splitlines() if ln.strip()) or "(no message)"
    low = err.lower()
    if re.search(_UNREACHABLE, low):
        return SubmitError(
            f"sbatch could not reach the SLURM controller ({err})",
            file=script,
            hint="is the cluster up? `sinfo`; for the local test cluster: scripts/local-slurm status",
        )
    if SUBMIT_LIMIT.search(err):
        return SubmitLimitReached(
            f"submission limit reached ({err}); nothing was submitted, ck submits it when jobs end",
            file=script, field="slurm_max_submitted",
            hint="ck keeps the queue under the limit it learns from sacctmgr or slurm_max_submitted "
                 "in claude.local.md; other jobs of yours count too")
    nodes = requested.get("nodes", "1").split("-")[0]
    if re.search(r"more processors requested than permitted", low) and nodes.isdigit() and int(nodes) > 1:
        # Asked across nodes: the node count (x tasks per node) is what cannot be met, not --cpus.
        given = ", ".join(f"--{o}={requested[o]}" for o in ("nodes", "ntasks-per-node", "cpus-per-task")
                          if o in requested)
        return SubmitError(f"{nodes} nodes ({given}) are more than the partition can give ({err}); "
                           "nothing was submitted", file=script, field="slurm.nodes",
                           hint=f"set slurm.nodes (Nodes in the experiment) to what the partition has, "
                                f"or the #SBATCH lines in {script.name}")
    for pattern, opts, setting, what in _REFUSALS:
        if re.search(pattern, low):
            given = [f"--{o}={requested[o]}" for o in opts if o in requested]
            if len(opts) == 1 and opts[0] in requested:
                value = repr(requested[opts[0]])
            else:
                value = ", ".join(given) if given else "(as requested)"
            hint = f"set {setting} in claude.local.md (or the #SBATCH line in {script.name})"
            if "partition" in opts and partitions:
                hint += f"; partitions on this cluster: {', '.join(partitions)}"
            return SubmitError(f"{what.format(v=value)} ({err}); nothing was submitted",
                               file=script, field=setting, hint=hint)
    return SubmitError(f"sbatch refused the job ({err}); nothing was submitted", file=script,
                       hint=f"check the #SBATCH lines of {script.name} and the slurm.* settings in claude.local.md")
