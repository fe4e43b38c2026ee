"""The executor interface shared by the local and SLURM backends.

An executor runs generated `*.slurm` scripts (plain bash with #SBATCH headers) and reports
their states. Like submitit's `Executor`/`Job`, the interface is small but complete, so no caller
tests for attributes or imports a backend:

    job_id = executor.submit(spec, after=None | other_job_id)
    infos  = executor.poll([job_id, ...])      # ONE batched scheduler query for all ids
    infos  = executor.peek([job_id, ...])      # the same answer, with no side effect (ck status)
    executor.cancel([job_id, ...])
    found  = executor.find_tagged([tag, ...])  # tag -> jobs the scheduler knows carrying it
    argv   = executor.submit_argv(spec, after) # what submit() runs, for display
    Executor.affinity()                        # -1 unusable here, higher = preferred (auto)
    executor.settings()                        # its own options (max_parallel, gpus, ...)
    executor.cli_args()                        # `ck run` flags that rebuild it (detached supervisor)

`spec.tag` names the job uniquely (experiment identity, job key, attempt): a backend attaches it
to what it submits (SLURM job name, local job record) so that after a crash between "submitted"
and "recorded" the orchestrator finds the job instead of submitting it twice.

`after` means `--dependency=afterok:<after> --kill-on-invalid-dep=yes`: the job starts only
when `after` COMPLETED and ends as DEPENDENCY_NEVER_SATISFIED if `after` ends in any other
terminal state. The local backend implements the same contract in-process: its `poll()` is also
its scheduler tick (it starts queued jobs whose dependency completed, within --max-parallel).

Backends never touch the ledger or the logs; the run orchestrator (cruijff_kit.run) owns those.
"""
from __future__ import annotations

import abc
import enum
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Mapping, Sequence

from ..errors import CkError
from .resources import Resources


class JobState(str, enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TIMEOUT = "TIMEOUT"
    CANCELLED = "CANCELLED"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    NODE_FAIL = "NODE_FAIL"
    PREEMPTED = "PREEMPTED"
    DEPENDENCY_NEVER_SATISFIED = "DependencyNeverSatisfied"
    UNKNOWN = "UNKNOWN"  # the scheduler no longer knows the id and nothing on disk tells
    # ck's own state, never a scheduler's: not submitted yet because the user's submission limit
    # is reached (run/submission_window.py); no job id; submitted as other jobs end
    QUEUED = "QUEUED"

    @property
    def terminal(self) -> bool:
        return self not in LIVE and self is not JobState.QUEUED

    @property
    def live(self) -> bool:
        """Still in the scheduler's hands (UNKNOWN too: the scheduler may answer next time)."""
        return self in LIVE

    @property
    def ok(self) -> bool:
        return self is JobState.COMPLETED

    @classmethod
    def parse(cls, value: object) -> "JobState | None":
        """A ledger's state string -> JobState; None for none; ValueError for anything else."""
        if value is None or value == "":
            return None
        return cls(str(value))


LIVE = frozenset({JobState.PENDING, JobState.RUNNING, JobState.UNKNOWN})


@dataclass(frozen=True)
class JobSpec:
    """What to run. `key` is unique within an experiment, e.g. 'rank8_lr1e-5/finetune' or
    'rank8_lr1e-5/eval/capitalization_epoch0'."""

    key: str
    script: Path  # absolute path of the .slurm file; it is run from its own directory
    kind: str  # "finetune" | "eval"
    run: str  # run directory name
    # what the job asks the scheduler for (the script's #SBATCH lines were rendered from the same
    # value; the scaffold stores it beside the script): the local executor hands out its GPUs
    resources: Resources = Resources()
    env: Mapping[str, str] = field(default_factory=dict)
    sbatch_args: Sequence[str] = ()  # extra CLI flags (e.g. OOM retry overrides), slurm only
    tag: str | None = None  # unique name of this submission (see module doc); [A-Za-z0-9._:/-]

    @property
    def gpus(self) -> int:
        """GPUs per node (one machine: the local executor's slots)."""
        return self.resources.gpus_per_node

    @property
    def workdir(self) -> Path:
        return self.script.parent


@dataclass
class JobInfo:
    job_id: str
    state: JobState
    exit_code: int | None = None
    started: str | None = None  # ISO timestamps when known
    ended: str | None = None
    reason: str | None = None  # scheduler's reason / failure note
    log: Path | None = None  # stdout+stderr of the job (slurm-<id>.out)


@dataclass(frozen=True)
class SubmitLimit:
    max_submitted: int | None  # None: no limit known
    source: str  # what set it, for logs: "QOS cklimit3 MaxSubmitJobsPerUser=3"


class SubmitError(CkError):
    """The scheduler refused the job (bad partition, impossible memory, ...). Nothing was submitted."""


class SubmitLimitReached(SubmitError):
    """Refused only because the user has as many jobs submitted as a limit allows (QOS/association
    MaxSubmitJobs). Nothing was submitted; the same job will be accepted once jobs end."""


class Executor(abc.ABC):
    name: ClassVar[str]

    @classmethod
    def from_options(cls, exp_dir: str | Path, **options) -> "Executor":
        """Build from `ck run` options; an option this backend does not have is an error (a
        setting that is silently ignored looks like it worked)."""
        given = sorted(k for k, v in options.items() if v is not None)
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in given)
            raise CkError(f"{flags} do(es) not apply to the {cls.name} executor", field=flags,
                          hint="drop the option, or choose the executor it belongs to")
        return cls(exp_dir)

    @classmethod
    def observer(cls, exp_dir: str | Path) -> "Executor":
        """An instance for peek() only (ck status): cheap to build, starts nothing."""
        return cls(exp_dir)

    @classmethod
    @abc.abstractmethod
    def affinity(cls) -> int:
        """-1 when this backend cannot run here; otherwise higher means preferred by `auto`."""

    @abc.abstractmethod
    def settings(self) -> dict[str, object]:
        """This executor's own options, for display and the JSON report."""

    @abc.abstractmethod
    def cli_args(self) -> list[str]:
        """`ck run` flags that rebuild this executor with the same settings."""

    @abc.abstractmethod
    def submit_argv(self, spec: JobSpec, after: str | None = None) -> list[str]:
        """The command submit() runs (for display; nothing is run)."""

    @abc.abstractmethod
    def peek(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        """Like poll(), but changes nothing anywhere (no job started, no file written)."""

    @abc.abstractmethod
    def find_tagged(self, tags: Sequence[str], since: str | None = None) -> dict[str, list[JobInfo]]:
        """For each tag, the jobs the scheduler knows that were submitted with JobSpec.tag == tag
        (oldest first; [] when none). `since`: ISO time before the first such submission. One
        batched query, like poll(). Raises when the scheduler cannot answer (never guesses)."""

    @abc.abstractmethod
    def submit(self, spec: JobSpec, after: str | None = None) -> str:
        """Queue `spec`; return its job id. Raise SubmitError if refused."""

    @abc.abstractmethod
    def poll(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        """Current state of every id, with at most one query per scheduler command."""

    @abc.abstractmethod
    def cancel(self, job_ids: Sequence[str]) -> None:
        """Cancel; unknown or finished ids are ignored."""

    def wait(self, job_ids: Sequence[str], timeout: float) -> None:
        """Block until one of `job_ids` may have changed state, or `timeout` seconds passed.
        A scheduler that can only be asked (SLURM) waits the whole poll interval; a backend
        that sees its jobs end (local) returns as soon as one does, so its freed slot is filled
        at once rather than at the next poll."""
        time.sleep(timeout)

    def submission_limit(self, scripts: Sequence[Path] = ()) -> "SubmitLimit":
        """The most jobs this user may have submitted at once for these scripts (None: no limit;
        a backend that has limits learns them, e.g. SLURM from sacctmgr)."""
        return SubmitLimit(None, "no limit")

    def log_path(self, spec: JobSpec, job_id: str) -> Path:
        """Where the job's stdout/stderr goes (the seeds' slurm-<id>.out beside the script)."""
        return spec.workdir / f"slurm-{job_id}.out"
