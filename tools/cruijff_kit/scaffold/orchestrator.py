"""scaffold-experiment: read the plan, check it, call scaffold-torchtune then scaffold-inspect,
log all three levels, report every run.

All or nothing: every run's files are rendered and every input checked (task scripts, epochs,
settings, hand-edited setup files) before the first file is written. If anything is wrong, the
report lists every problem and the experiment directory is left exactly as it was.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import CkError
from ..experiment.naming import check_safe_name, inside, run_directories, varying_parameters
from ..experiment.parse import load_experiment
from ..localconfig import load_local_config
from ..util.log import ActionLog
from .inspect_worker import plan_run_evals, unhonoured_scorer, write_run_evals
from .torchtune_worker import RunPlan, RunResult, plan_run, write_run
from ..state import layout


@dataclass
class ScaffoldReport:
    experiment: str
    experiment_dir: str
    dry_run: bool
    torchtune: list[RunResult] = field(default_factory=list)
    inspect: list[RunResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    written: bool = False  # False when a problem stopped the scaffold before any file was written

    @property
    def failures(self) -> list[RunResult]:
        return [r for r in self.torchtune + self.inspect if not r.ok]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ok"] = not self.failures
        return d


def _counts(results: list[RunResult]) -> str:
    ok = sum(r.ok for r in results)
    return f"{ok} ok, {len(results) - ok} failed"


def _plan_warnings(exp, local, only, exp_dir: Path, summary: str) -> list[str]:
    out = list(exp.warnings) + list(local.warnings)
    for mname, mpath in exp.models:
        if not Path(mpath).expanduser().exists():
            out.append(f"model path for {mname} not found here: {mpath} (may exist on compute nodes)")
    if exp.dataset and not Path(exp.dataset).expanduser().exists():
        out.append(f"dataset not found here: {exp.dataset} (may exist on compute nodes)")
    if not exp.evaluations and only != "torchtune":
        out.append("no evaluations in the plan: scaffold-inspect has nothing to do")
    # Temperature is applied by every eval script (inspect --temperature); Scorer where the task takes one
    out.extend(unhonoured_scorer(exp, exp_dir, summary))
    return out


def scaffold_experiment(exp_dir: str | Path, *, only: str | None = None, dry_run: bool = False,
                        config: str | Path | None = None, force: bool = False) -> ScaffoldReport:
    exp_dir = Path(exp_dir).resolve()
    summary = exp_dir / layout.SUMMARY
    exp = load_experiment(summary)
    # the experiment name becomes a path component of checkpoint directories and job names
    check_safe_name(exp.name, file=summary, line=1, fld="title")
    local = load_local_config(config, search=(exp_dir,))
    dirs = run_directories(exp, str(summary))
    for name, d in dirs.items():
        if not inside(exp_dir, exp_dir / d):
            raise CkError(f"run directory {d!r} would leave the experiment directory", file=summary, field=name)
    report = ScaffoldReport(exp.name, str(exp_dir), dry_run, warnings=_plan_warnings(exp, local, only, exp_dir, str(summary)))

    # 1. check and render everything; nothing touches the disk
    plans: dict[str, RunPlan] = {}
    if only in (None, "torchtune"):
        for run in exp.finetuned_runs:
            try:
                plans[run.name] = plan_run(exp, run, dirs[run.name], exp_dir, local, force=force)
            except CkError as err:
                report.torchtune.append(RunResult(run=run.name, directory=dirs[run.name], ok=False, error=str(err)))
    eval_plans = {}
    if only in (None, "inspect"):
        for run in exp.runs:
            eval_plans[run.name], error = plan_run_evals(exp, run, dirs[run.name], exp_dir, local, str(summary))
            if error is not None:
                report.inspect.append(RunResult(run=run.name, directory=dirs[run.name], ok=False, error=error))
    if report.failures:
        return report  # every problem listed; no file written

    # 2. write
    logs = {n: ActionLog(exp_dir / f"{n}.log") for n in ("scaffold-experiment", "scaffold-torchtune", "scaffold-inspect")}
    if dry_run:
        logs = {n: _NullLog() for n in logs}
    report.written = not dry_run
    orch = logs["scaffold-experiment"]
    orch.write("DISCOVER_EXPERIMENT", "Found experiment", details=str(summary),
               result=f"{len(exp.finetuned_runs)} fine-tuned run(s), {len(exp.control_runs)} control(s), "
                      f"{len(exp.evaluations)} evaluation task(s)")
    orch.write("VERIFY_PREREQUISITES", "Checking required files",
               details=f"claude.local.md: {local.path or 'not found (defaults)'}",
               result="; ".join(report.warnings) or "All prerequisites satisfied")
    orch.write("READ_TOOL_SPECS", "Parsing tool specifications",
               result=f"Preparation={exp.tools.preparation}, Evaluation={exp.tools.evaluation}",
               explanation="Will invoke scaffold-torchtune and scaffold-inspect")

    if only in (None, "torchtune"):
        t0 = time.monotonic()
        tlog = logs["scaffold-torchtune"]
        tlog.write("ANALYZE_PARAMETERS", "Identifying varying parameters",
                   result=f"Varying: {', '.join(varying_parameters(exp.runs)) or 'none'}")
        orch.write("INVOKE_SCAFFOLD_TORCHTUNE", "Generating fine-tuning configs", details="scaffold-torchtune")
        for run in exp.finetuned_runs:
            plan = plans[run.name]
            res = RunResult(run=run.name, directory=dirs[run.name])
            try:
                res.files = write_run(plan, dry_run=dry_run)
            except CkError as err:
                res.ok, res.error = False, str(err)
            if plan.note:
                report.warnings.append(f"{dirs[run.name]}: {plan.note}")
            report.torchtune.append(res)
            details = ", ".join(f"{k}={v}" for k, v in run.settings)
            tlog.write("SCAFFOLD_RUN", dirs[run.name],
                       details=f"run {run.name}: {details or 'plan defaults'}" + (f"; {plan.note}" if plan.note else ""),
                       result="; ".join(f"{Path(f.path).name} {f.status}" for f in res.files)
                       if res.ok else f"FAILED: {res.error}")
        orch.write("SCAFFOLD_TORCHTUNE_COMPLETE", "Fine-tuning configs generated",
                   details=_counts(report.torchtune), duration=f"{time.monotonic() - t0:.2f}s",
                   result="See scaffold-torchtune.log")

    if only in (None, "inspect"):
        t0 = time.monotonic()
        ilog = logs["scaffold-inspect"]
        orch.write("INVOKE_SCAFFOLD_INSPECT", "Generating evaluation configs", details="scaffold-inspect")
        for run in exp.runs:
            if run.finetuned and only == "inspect" and not (exp_dir / dirs[run.name] / layout.FINETUNE_SCRIPT).exists():
                report.warnings.append(f"{dirs[run.name]}: no finetune.slurm yet (run scaffold-torchtune first)")
            try:
                res = write_run_evals(eval_plans[run.name], dry_run=dry_run)  # rendered once, in step 1
            except OSError as exc:
                res = RunResult(run=run.name, directory=dirs[run.name], ok=False,
                                error=f"{exc.filename or exp_dir / dirs[run.name]}: cannot write: {exc.strerror}")
            report.inspect.append(res)
            ilog.write("SCAFFOLD_EVAL", dirs[run.name],
                       result="; ".join(f"eval/{Path(f.path).name} {f.status}" for f in res.files)
                       if res.ok else f"FAILED: {res.error}")
        orch.write("SCAFFOLD_INSPECT_COMPLETE", "Evaluation configs generated",
                   details=_counts(report.inspect), duration=f"{time.monotonic() - t0:.2f}s",
                   result="See scaffold-inspect.log")

    orch.write("COMPLETE", "Experiment scaffolding finished",
               result=f"fine-tuning: {_counts(report.torchtune)}; evaluation: {_counts(report.inspect)}",
               next="ck run " + str(exp_dir))
    return report


class _NullLog:
    def write(self, *args, **kwargs) -> None:
        pass
