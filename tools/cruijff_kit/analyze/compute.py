"""What each run cost, measured, for the report: a researcher weighing "+0.01 accuracy" against
"twice the GPU hours" needs both in one place.

Per run: the fine-tune's elapsed time, peak memory (SLURM accounting), GPU utilisation and peak
GPU memory (the job's own samples), tokens/s (torchtune's log); and the evaluations' total
elapsed time. Everything comes from run/resources.job_resources (the one reader, shared with
`ck status`); a run without a finished job in the ledger has no row.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import CkError
from ..util.formats import duration_hms, size_gib


def compute_table(exp_dir: str | Path) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of measured resources per run; no rows when nothing finished yet or the
    experiment has never been run (no ledger)."""
    from ..state.ledger import Ledger
    from ..state.jobs import plan_experiment
    from ..state.resources import job_resources

    exp_dir = Path(exp_dir)
    try:
        entries = Ledger(exp_dir).jobs()
        plan = plan_experiment(exp_dir)
    except CkError:
        return [], []  # analysis reports results whatever state the run bookkeeping is in
    if not entries:
        return [], []
    used = job_resources(plan, entries)
    runs: dict[str, dict] = {}
    for job in plan.jobs:
        r = used.get(job.key)
        if r is None:
            continue
        row = runs.setdefault(job.run, {"ft": None, "eval_s": 0.0, "evals": 0})
        if job.kind == "finetune":
            row["ft"] = r
        elif r.elapsed_s is not None:
            row["eval_s"] += r.elapsed_s
            row["evals"] += 1
    header = ["run", "fine-tune time", "peak memory", "GPU util", "peak GPU memory", "tokens/s",
              "evaluation time (jobs)"]
    rows = []
    for run, row in runs.items():
        ft = row["ft"]
        rows.append([
            run,
            duration_hms(ft.elapsed_s) if ft else "-",
            size_gib(ft.max_rss_bytes) if ft else "-",
            "-" if ft is None or ft.gpu_util_pct is None else f"{ft.gpu_util_pct:.0f}%",
            size_gib(ft.gpu_mem_bytes) if ft else "-",
            "-" if ft is None or ft.tokens_per_s is None else f"{ft.tokens_per_s:.0f}",
            f"{duration_hms(row['eval_s'])} ({row['evals']})" if row["evals"] else "-",
        ])
    return header, rows
