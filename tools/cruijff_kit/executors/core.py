"""The executor interface shared by the local and SLURM backends.

An executor runs generated `*.slurm` scripts (plain bash with #SBATCH headers) and reports
their states. It is deliberately small, like submitit's `Executor`/`Job`:

    job_id = executor.submit(spec, after=None | other_job_id)
    infos  = executor.poll([job_id, ...])      # ONE batched scheduler query for all ids
    executor.cancel([job_id, ...])

`after` means `--dependency=afterok:<after> --kill-on-invalid-dep=yes`: the job starts only
when `after` COMPLETED and ends as DEPENDENCY_NEVER_SATISFIED if `after` ends in any other
terminal state. The local backend implements the same contract in-process: its `poll()` is also
its scheduler tick (it starts queued jobs whose dependency completed, within --max-parallel).

Backends never touch the ledger or the logs; the run orchestrator (cruijff_kit.run) owns those.
"""
from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Mapping, Sequence

from ..errors import CkError


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

    @property
    def terminal(self) -> bool:
        return self not in (JobState.PENDING, JobState.RUNNING, JobState.UNKNOWN)

    @property
    def ok(self) -> bool:
        return self is JobState.COMPLETED


@dataclass(frozen=True)
class JobSpec:
    """What to run. `key` is unique within an experiment, e.g. 'rank8_lr1e-5/finetune' or
    'rank8_lr1e-5/eval/capitalization_epoch0'."""

    key: str
    script: Path  # absolute path of the .slurm file; it is run from its own directory
    kind: str  # "finetune" | "eval"
    run: str  # run directory name
    gpus: int = 0
    env: Mapping[str, str] = field(default_factory=dict)
    sbatch_args: Sequence[str] = ()  # extra CLI flags (e.g. OOM retry overrides), slurm only

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


class SubmitError(CkError):
    """The scheduler refused the job (bad partition, impossible memory, ...). Nothing was submitted."""


class SubmitLimitReached(SubmitError):
    """Refused only because the user has as many jobs submitted as a limit allows (QOS/association
    MaxSubmitJobs). Nothing was submitted; the same job will be accepted once jobs end."""


class Executor(abc.ABC):
    name: ClassVar[str]

    @abc.abstractmethod
    def submit(self, spec: JobSpec, after: str | None = None) -> str:
        """Queue `spec`; return its job id. Raise SubmitError if refused."""

    @abc.abstractmethod
    def poll(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        """Current state of every id, with at most one query per scheduler command."""

    @abc.abstractmethod
    def cancel(self, job_ids: Sequence[str]) -> None:
        """Cancel; unknown or finished ids are ignored."""

    def log_path(self, spec: JobSpec, job_id: str) -> Path:
        """Where the job's stdout/stderr goes (the seeds' slurm-<id>.out beside the script)."""
        return spec.workdir / f"slurm-{job_id}.out"
