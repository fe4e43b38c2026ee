"""The experiment model: experiment_summary.md <-> typed Experiment."""
from .model import Evaluation, Experiment, Run, RunType, StatusRow, Tools  # noqa: F401
