"""SlurmExecutor: sbatch / squeue / sacct / scancel behind the executor interface.

The scheduler is a shared service, so polling is batched as submitit's SlurmInfoWatcher does:
one poll is at most ONE `squeue` (every id not yet finished, `--states=all` so that recently
finished jobs come with their exit status and reason) plus at most ONE `sacct` (only the ids
squeue no longer shows). Terminal states are cached and never asked about again.
`executor.calls` counts invocations per command, for tests and bench/slurm_poll_calls.py.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Callable, Mapping, Sequence

from ...errors import CkError
from ..core import Executor, JobInfo, JobSpec, JobState, SubmitError
from .limits import SubmitLimit, learn_submit_limit
from .parse import (
    SACCT_FORMAT,
    SQUEUE_FORMAT,
    explain_refusal,
    parse_sacct,
    parse_sbatch,
    parse_squeue,
    requested_options,
    sacct_starttime,
)

Runner = Callable[..., subprocess.CompletedProcess]
_JOB_ID = re.compile(r"\d+(?:_\d+)?")
_NAMES_PER_CALL = 200  # job names per squeue/sacct call (keeps one argument far below 128 KiB)
_HINT = "is the cluster up? `sinfo`; for the local test cluster: scripts/local-slurm status"


class SchedulerError(CkError):
    """A SLURM command could not be run or did not answer (controller down, not installed)."""


def _default_runner(argv: list[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
                    timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def slurm_available(timeout: float = 10) -> bool:
    """True when sbatch is on PATH and the controller answers `sinfo`."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    try:
        p = subprocess.run(["sinfo", "--noheader", "--format=%P"], capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return p.returncode == 0 and bool(p.stdout.strip())


class SlurmExecutor(Executor):
    name = "slurm"

    def __init__(self, exp_dir: str | Path, *, runner: Runner | None = None, timeout: float = 120) -> None:
        self.exp_dir = Path(exp_dir)
        self.calls: Counter[str] = Counter()  # command name -> invocations
        self._runner = runner or _default_runner
        self._timeout = timeout
        self._final: dict[str, JobInfo] = {}  # terminal states: never queried again
        self._logs: dict[str, Path] = {}  # job id -> log path, for jobs submitted by this object

    @classmethod
    def affinity(cls) -> int:
        return 10 if shutil.which("sbatch") else -1

    def settings(self) -> dict[str, object]:
        return {}

    def cli_args(self) -> list[str]:
        return []

    @staticmethod
    def job_name(tag: str) -> str:
        """The SLURM job name carrying a submission tag (what find_tagged asks squeue/sacct for)."""
        return re.sub(r"[^A-Za-z0-9._:-]", ".", tag)

    @property
    def scheduler_calls(self) -> int:
        """squeue + sacct invocations so far (the polling cost)."""
        return self.calls["squeue"] + self.calls["sacct"]

    def _run(self, argv: list[str], *, cwd: Path | None = None,
             env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
        self.calls[argv[0]] += 1
        try:
            return self._runner(argv, cwd=cwd, env=env, timeout=self._timeout)
        except FileNotFoundError as e:
            raise SchedulerError(f"{argv[0]} is not installed (not on PATH)",
                                 hint="use --executor local, or install SLURM's client (scripts/local-slurm start)") from e
        except subprocess.TimeoutExpired as e:
            raise SchedulerError(f"{argv[0]} did not answer within {self._timeout:.0f} s", hint=_HINT) from e

    # ------------------------------------------------------------------ submit
    def submit_argv(self, spec: JobSpec, after: str | None = None) -> list[str]:
        script = Path(spec.script)
        argv = ["sbatch", "--parsable"]
        if spec.tag:
            argv.append(f"--job-name={self.job_name(spec.tag)}")
        if after is not None:
            after = str(after)
            if not _JOB_ID.fullmatch(after):
                raise SubmitError(f"dependency {after!r} is not a SLURM job id", file=script, field="after")
            argv += [f"--dependency=afterok:{after}", "--kill-on-invalid-dep=yes"]
        argv += [str(a) for a in spec.sbatch_args]
        # Submitted from its own directory by name, exactly as `cd run && sbatch finetune.slurm`,
        # so sbatch's working directory (and so slurm-%j.out) is the script's directory.
        argv.append(script.name)
        return argv

    def submit(self, spec: JobSpec, after: str | None = None) -> str:
        script = Path(spec.script)
        if not script.is_file():
            raise SubmitError("script to submit does not exist", file=script,
                              hint="scaffold the experiment first (ck scaffold)")
        argv = self.submit_argv(spec, after)
        env = {**os.environ, **{str(k): str(v) for k, v in spec.env.items()}} if spec.env else None
        p = self._run(argv, cwd=script.parent, env=env)
        if p.returncode != 0:
            try:
                text = script.read_text(errors="replace")
            except OSError:
                text = ""
            partitions = self._partitions() if "partition" in p.stderr.lower() else None
            raise explain_refusal(p.stderr or p.stdout, script, requested_options(text, spec.sbatch_args),
                                  partitions)
        try:
            job_id, _cluster = parse_sbatch(p.stdout)
        except ValueError as e:
            raise SubmitError(f"sbatch answered without a job id: {p.stdout.strip()!r} {p.stderr.strip()!r}",
                              file=script, hint=_HINT) from e
        self._logs[job_id] = self.log_path(spec, job_id)
        return job_id

    def _partitions(self) -> list[str]:
        """Partition names for an error hint (only called when sbatch refused a partition)."""
        try:
            p = self._run(["sinfo", "--noheader", "--format=%P"])
        except SchedulerError:
            return []
        if p.returncode != 0:
            return []
        names = {ln.strip() for ln in p.stdout.splitlines() if ln.strip()}
        return sorted(n[:-1] + " (default)" if n.endswith("*") else n for n in names)

    # ------------------------------------------------------------------ limits
    def submission_limit(self, scripts: Sequence[Path] = ()) -> SubmitLimit:
        """The most jobs this user may have submitted at once (limits.py), for the QOS/account
        the given scripts ask for. Two sacctmgr calls; call it once per `ck run`."""
        requested = []
        for script in dict.fromkeys(Path(s) for s in scripts):
            try:
                requested.append(requested_options(script.read_text(errors="replace")[:20000]))
            except OSError:
                continue
        return learn_submit_limit(lambda argv: self._run(argv), requested)

    # ------------------------------------------------------------------ poll
    def peek(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        """poll() without keeping anything: squeue/sacct only read the scheduler."""
        final = dict(self._final)
        try:
            return self.poll(job_ids)
        finally:
            self._final = final

    def find_tagged(self, tags: Sequence[str], since: str | None = None) -> dict[str, list[JobInfo]]:
        """Jobs named after each tag. Batched like poll(): one `squeue --name=a,b,..` and one
        `sacct --name=a,b,..` (for jobs slurmctld forgot) per chunk of names, then one poll of
        the ids found — a handful of scheduler calls whatever the number of tags."""
        by_name = {self.job_name(t): t for t in tags}
        ids: dict[str, str] = {}  # job id -> tag
        names = list(by_name)
        for i in range(0, len(names), _NAMES_PER_CALL):
            chunk = ",".join(names[i:i + _NAMES_PER_CALL])
            p = self._run(["squeue", "--noheader", "--states=all", f"--name={chunk}", "--Format=JobID:|,Name:|"])
            if p.returncode != 0:
                raise SchedulerError(f"squeue failed: {p.stderr.strip() or p.stdout.strip()}", hint=_HINT)
            argv = ["sacct", "--noheader", "--parsable2", "--allocations", f"--name={chunk}",
                    "--format=JobID,JobName"]
            if since:
                argv.append(f"--starttime={sacct_starttime(since)}")
            q = self._run(argv)
            if q.returncode != 0:
                # Without sacct, a job slurmctld already forgot looks never submitted, and would
                # be submitted twice: refuse to guess.
                raise SchedulerError("cannot tell whether interrupted submissions happened: sacct "
                                     f"failed ({q.stderr.strip() or q.returncode})", hint=_HINT)
            for line in (p.stdout + q.stdout).splitlines():
                parts = line.strip().split("|")
                if len(parts) >= 2 and _JOB_ID.fullmatch(parts[0]) and parts[1] in by_name:
                    ids[parts[0]] = by_name[parts[1]]
        infos = self.peek(list(ids)) if ids else {}
        found: dict[str, list[JobInfo]] = {t: [] for t in tags}
        for jid in sorted(ids, key=lambda j: [int(x) for x in j.split("_")]):
            found[ids[jid]].append(infos[jid])
        return found

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        ids = list(dict.fromkeys(str(j) for j in job_ids))
        out: dict[str, JobInfo] = {j: self._final[j] for j in ids if j in self._final}
        todo = [j for j in ids if j not in self._final and _JOB_ID.fullmatch(j)]
        for j in ids:
            if j not in out and j not in todo:
                out[j] = JobInfo(j, JobState.UNKNOWN, reason="not a SLURM job id")
        if todo:
            live = self._squeue(todo)
            gone = [j for j in todo if j not in live]
            acct, acct_error = self._sacct(gone) if gone else ({}, None)
            for j in todo:
                info = live.get(j) or acct.get(j)
                if info is None:
                    why = f"sacct failed: {acct_error}" if acct_error else "neither squeue nor sacct knows this id"
                    info = JobInfo(j, JobState.UNKNOWN, reason=why)
                if j in self._logs:  # what we submitted ourselves, we know for sure
                    info.log = self._logs[j]
                if info.state.terminal:
                    self._final[j] = info
                out[j] = info
        return {j: out[j] for j in ids}

    def _squeue(self, ids: list[str]) -> dict[str, JobInfo]:
        p = self._run(["squeue", "--noheader", "--states=all", f"--jobs={','.join(ids)}",
                       f"--Format={SQUEUE_FORMAT}"])
        if p.returncode != 0:
            # A single id slurmctld has forgotten makes squeue fail; that simply means "ask sacct".
            if "invalid job id" in p.stderr.lower():
                return {}
            raise SchedulerError(f"squeue failed: {p.stderr.strip() or p.stdout.strip()}", hint=_HINT)
        return parse_squeue(p.stdout)

    def _sacct(self, ids: list[str]) -> tuple[dict[str, JobInfo], str | None]:
        # A failing sacct (slurmdbd down) leaves those jobs UNKNOWN, which is not terminal, so the
        # monitor asks again next cycle instead of recording a wrong outcome.
        p = self._run(["sacct", "--noheader", "--parsable2", "--allocations", f"--jobs={','.join(ids)}",
                       f"--format={SACCT_FORMAT}"])
        if p.returncode != 0:
            return {}, (p.stderr.strip() or p.stdout.strip() or f"exit {p.returncode}")
        return parse_sacct(p.stdout), None

    # ------------------------------------------------------------------ cancel
    def cancel(self, job_ids: Sequence[str]) -> None:
        ids = [j for j in dict.fromkeys(str(j) for j in job_ids) if j not in self._final and _JOB_ID.fullmatch(j)]
        if not ids:
            return
        p = self._run(["scancel", *ids])
        if p.returncode != 0:
            err = p.stderr.strip()
            # Unknown or already finished ids are fine to "cancel"; anything else is not.
            benign = ("invalid job id", "already completing or completed", "job is no longer")
            lines = [ln for ln in err.splitlines() if ln.strip() and not any(b in ln.lower() for b in benign)]
            if lines:
                raise SchedulerError(f"scancel failed: {' / '.join(lines)}", hint=_HINT)
