"""`ck status`'s view of a search that prunes: trials per rung, best so far, budget used
(experiment/search_progress.py reads it; this module only finds the plan's search and the trials'
output directories). Read-only like the rest of `ck status`."""
from __future__ import annotations

from pathlib import Path

from ..errors import CkError
from ..experiment.parse import load_experiment
from ..experiment.search_progress import read_progress
from ..state import layout
from ..state.jobs import Plan


def search_status(exp_dir: Path, plan: Plan | None) -> dict | None:
    """The search's progress as JSON-ready data; None when the plan has no search (or cannot be
    read: status says why elsewhere); {"error": why} when the ledger's search record is unreadable."""
    try:
        exp = load_experiment(Path(exp_dir) / layout.SUMMARY)
    except CkError:
        return None
    if getattr(exp, "search", None) is None:
        return None
    outputs = {j.run: j.output_dir for j in (plan.finetunes if plan else ())}
    try:
        return read_progress(exp_dir, exp, outputs).to_dict()
    except CkError as err:
        return {"error": str(err)}
