"""What the submit step submits, and the tag that names each submission."""
from __future__ import annotations

from dataclasses import dataclass

from ..state.jobs import PlannedJob

TAIL_LINES = 20
TAIL_BYTES = 64 * 1024
UNKNOWN_POLLS_BEFORE_GIVING_UP = 3
DRY_ID = "(its training job)"


@dataclass
class Submission:
    """One job to submit in the submit step."""

    job: PlannedJob
    after_key: str | None = None  # the training job (key) it chains to, resolved at submit time
    after: str | None = None  # or a known job id
    note: str | None = None


def job_tag(exp_id: str, key: str, attempt: int) -> str:
    """Unique name of one submission: experiment, job key, attempt number."""
    return f"ck-{exp_id}-{attempt}-{key}"
