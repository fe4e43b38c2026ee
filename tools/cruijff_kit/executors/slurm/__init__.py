"""SLURM backend of the executor interface (executors/core.py): sbatch --parsable from each
script's own directory, afterok dependencies with --kill-on-invalid-dep=yes, and polling that
costs at most one squeue + one sacct call per cycle whatever the number of jobs."""
from .executor import SchedulerError, SlurmExecutor, slurm_available

__all__ = ["SchedulerError", "SlurmExecutor", "slurm_available"]
