"""Which jobs an experiment has, and which are already done — derived from disk only.

    EXP/<run>/finetune.slurm                  -> '<run>/finetune'
    EXP/<run>/eval/epoch<N>.slurm             -> '<run>/eval/epoch<N>'  (every task planned for
                                                 epoch_<N>, one model load; after its finetune)
    EXP/<run>/eval/base.slurm                 -> '<run>/eval/base'      (control / eval-only: no dependency)
    EXP/<run>/eval/<task>_epoch<N>.slurm      -> '<run>/eval/<task>_epoch<N>'  (the per-task layout of
    EXP/<run>/eval/<task>_base.slurm          -> '<run>/eval/<task>_base'       experiments scaffolded
                                                 before one script per checkpoint: one task each)

What each job asks the scheduler for (its GPUs: the local executor's slots) is the Resources
the scaffold stored beside its script (<stem>.resources.json, state/job_resources.py), never
parsed out of the script. A script without one (scaffolded by an older ck, or written by hand)
gets its GPU count re-derived as the scaffold derived it (a fine-tune: its setup_finetune.yaml;
an evaluation: the plan's GPUs, at most 1), and the plan says so in a warning: `ck scaffold`
records them without changing the scripts.

Done-ness is the artifacts module's answer (cruijff_kit/artifacts.py): a fine-tuning job when
every epoch_<N> checkpoint is complete, an evaluation job when the inspect log of every one of its
tasks reads back as a success for this job, task and fingerprint.

Given the run directories experiment_summary.md plans (run/plan.py), the jobs are reconciled with
them: a run directory the summary does not list is *stale* (reported, never submitted); a listed
run without a directory is *unscaffolded* (reported).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from . import artifacts
from ..errors import CkError
from ..executors.core import JobSpec
from ..executors.resources import Resources
from .job_resources import read_job_resources
from .identity import check_output_dir
from .yaml_input import read_mapping
from . import layout

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
CHECKPOINT_SCRIPT = re.compile(r"^(?:epoch(?P<epoch>\d+)|base)\.slurm$")  # every task of one checkpoint
TASK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
EVAL_SCRIPT = re.compile(r"^(?P<task>[A-Za-z0-9][A-Za-z0-9._-]*?)_(?:epoch(?P<epoch>\d+)|base)\.slurm$")  # one task


@dataclass(frozen=True)
class PlannedJob:
    key: str
    kind: str  # "finetune" | "eval"
    run: str
    script: Path
    tasks: tuple[str, ...] = ()  # eval: the tasks the script evaluates (one for the per-task layout)
    epoch: int | None = None  # None for a finetune or a base-model eval
    depends_on: str | None = None  # key of this run's finetune job
    checkpoints: tuple[Path, ...] = ()  # finetune: every epoch dir; eval: the one it reads
    resources: Resources = Resources()  # what the job asks the scheduler for (stored beside its script)
    finetune_yaml: Path | None = None
    setup_yaml: Path | None = None
    output_dir: Path | None = None  # finetune: where torchtune writes epoch_<N>/
    per_task: bool = False  # eval: a <task>_epoch<N>.slurm script of the per-task layout

    @property
    def label(self) -> str:
        if self.kind == "finetune":
            return "finetune"
        where = f"epoch {self.epoch}" if self.epoch is not None else "base"
        if len(self.tasks) == 1:
            return f"eval {self.tasks[0]} {where}"
        return f"eval {where} ({len(self.tasks)} tasks)"

    @property
    def gpus(self) -> int:
        """GPUs per node: what one machine hands the job (the local executor's slots)."""
        return self.resources.gpus_per_node

    @property
    def control(self) -> bool:
        return self.kind == "eval" and self.epoch is None

    def spec(self, env: dict[str, str] | None = None, sbatch_args=(), tag: str | None = None) -> JobSpec:
        return JobSpec(key=self.key, script=self.script, kind=self.kind, run=self.run,
                       resources=self.resources, env=dict(env or {}), sbatch_args=tuple(sbatch_args), tag=tag)

    def expected(self) -> tuple[artifacts.ExpectedEval, ...]:
        """What this evaluation job must produce: one log per task (artifacts.check_eval)."""
        return tuple(artifacts.ExpectedEval(key=self.key, log_dir=self.script.parent / "logs", task=task,
                                            epoch=self.epoch,
                                            checkpoint=self.checkpoints[0] if self.checkpoints else None,
                                            script=self.script) for task in self.tasks)


@dataclass
class Plan:
    exp_dir: Path
    jobs: list[PlannedJob] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # run dirs the summary does not list: not planned
    unscaffolded: list[str] = field(default_factory=list)  # summary runs without a run dir

    def get(self, key: str) -> PlannedJob | None:
        index = self.__dict__.get("_index")
        if index is None or len(index) != len(self.jobs):  # built once per plan (1,000 jobs: O(1) lookups)
            index = self.__dict__["_index"] = {j.key: j for j in self.jobs}
        return index.get(key)

    @property
    def finetunes(self) -> list[PlannedJob]:
        return [j for j in self.jobs if j.kind == "finetune"]

    @property
    def evals(self) -> list[PlannedJob]:
        return [j for j in self.jobs if j.kind == "eval"]

    def dependents(self, key: str) -> list[PlannedJob]:
        return [j for j in self.jobs if j.depends_on == key]


def _inside(path: Path, root: Path, what: str) -> Path:
    """Resolve symlinks and refuse anything that lands outside the experiment."""
    real = path.resolve()
    if real != root and root not in real.parents:
        raise CkError(f"{what} resolves outside the experiment directory: {path} -> {real}",
                      file=path, hint="run directories and job scripts must live inside EXP (no symlinks out)")
    return real


def job_resources(script: Path, run_dir: Path, *, evaluation: bool, unrecorded: list[str],
                  plan_gpus: int | None = None) -> Resources:
    """The resources stored beside `script`. Without a record (an older ck's scaffold, a script
    written by hand) they are re-derived as the scaffold derived them, GPUs only: a fine-tune's
    from its setup_finetune.yaml (num_gpus, else slurm.gpus), an evaluation's from the plan's
    GPUs (`plan_gpus`, else the run's num_gpus), at most one; `script` is added to `unrecorded`."""
    stored = read_job_resources(script)
    if stored is not None:
        return stored
    unrecorded.append(f"{script.parent.name}/{script.name}" if evaluation else script.name)
    if evaluation and plan_gpus is not None:
        return Resources(gpus_per_node=min(int(plan_gpus or 0), 1))
    gpus = 0
    setup = run_dir / layout.SETUP
    if setup.is_file():
        data = read_mapping(setup)
        slurm = data.get("slurm") if isinstance(data.get("slurm"), dict) else {}
        try:
            gpus = int(data.get("num_gpus") or 0) or (0 if evaluation else int(slurm.get("gpus") or 0))
        except (TypeError, ValueError):
            raise CkError("num_gpus / slurm.gpus must be whole numbers", file=setup, field="num_gpus") from None
    return Resources(gpus_per_node=min(gpus, 1) if evaluation else gpus)


def _unrecorded_warning(root: Path, runs: dict[str, list[str]]) -> str:
    names = [f"{run}/{name}" for run, scripts in runs.items() for name in scripts]
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    return (f"{len(names)} job script(s) have no stored resources (<script>{layout.RESOURCES_SUFFIX}; "
            f"scaffolded by an older ck, or written by hand): {shown}. Their GPU count is re-derived "
            f"from setup_finetune.yaml and the plan (evaluations: at most 1), the rest of their #SBATCH "
            f"lines is not read. "
            f"`ck scaffold {root}` records them (the scripts stay as they are)")


def _finetune_facts(run_dir: Path) -> tuple[Path, int, int]:
    """(output_dir, epochs, num_gpus) from setup_finetune.yaml, falling back to finetune.yaml."""
    setup = run_dir / layout.SETUP
    tune = run_dir / layout.FINETUNE_CONFIG
    s = read_mapping(setup) if setup.is_file() else {}
    t = read_mapping(tune) if tune.is_file() else {}
    out = s.get("output_dir") or t.get("output_dir")
    if not out:
        raise CkError("no output_dir: cannot tell where checkpoints go", file=setup if setup.is_file() else tune,
                      field="output_dir", hint="re-run `ck scaffold` so setup_finetune.yaml carries output_dir")
    out_path = Path(str(out)).expanduser()
    if not out_path.is_absolute():
        out_path = run_dir / out_path  # setup_finetune.py runs inside the run directory
    try:
        epochs = int(s.get("epochs", t.get("epochs", 1)))
        gpus = int(s.get("num_gpus", 0) or 0)
    except (TypeError, ValueError) as exc:
        raise CkError(f"epochs / num_gpus must be integers ({exc})", file=setup, field="epochs") from None
    if epochs < 1:
        raise CkError(f"epochs must be >= 1, got {epochs}", file=setup, field="epochs")
    return out_path, epochs, gpus


def plan_experiment(exp_dir: str | Path, exp_id: str | None = None,
                    planned: tuple[set[str] | None, str | None] | None = None,
                    plan_gpus: int | None = None) -> Plan:
    """The jobs of EXP's run directories. `planned`: (run directories experiment_summary.md
    lists, or None and why it cannot say) to reconcile with (run/plan.py reads the summary);
    None: not reconciled (every run directory counts). `plan_gpus`: the summary's GPUs, for
    evaluation scripts without stored resources (see job_resources)."""
    root = Path(exp_dir).resolve()
    if not root.is_dir():
        raise CkError(f"experiment directory not found: {exp_dir}")
    if not (root / layout.SUMMARY).is_file():
        raise CkError("experiment_summary.md not found", file=root / layout.SUMMARY,
                      hint="design the experiment first (design-experiment skill / `ck design`)")
    plan = Plan(root)
    wanted, why = planned if planned is not None else (None, None)
    if wanted is None and planned is not None:
        plan.warnings.append(f"experiment_summary.md: cannot check run directories against the plan ({why})")
    seen: set[str] = set()
    unrecorded: dict[str, list[str]] = {}
    for run_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        finetune = run_dir / layout.FINETUNE_SCRIPT
        eval_dir = run_dir / "eval"
        scripts = sorted(eval_dir.glob("*.slurm")) if eval_dir.is_dir() else []
        if not finetune.exists() and not scripts:
            continue  # not a run directory (e.g. data/, analysis/)
        if not RUN_NAME.match(run_dir.name):
            raise CkError(f"run name {run_dir.name!r} is not allowed", file=run_dir,
                          hint="run names must match [A-Za-z0-9][A-Za-z0-9._-]*")
        _inside(run_dir, root, "run directory")
        run = run_dir.name
        seen.add(run)
        if wanted is not None and run not in wanted:
            plan.stale.append(run)
            continue
        output_dir = epochs = None
        ft_key = None
        missing = unrecorded.setdefault(run, [])
        if finetune.exists():
            _inside(finetune, root, "job script")
            output_dir, epochs, _ = _finetune_facts(run_dir)
            check_output_dir(output_dir, root, exp_id, file=run_dir / layout.SETUP)
            ft_key = f"{run}/finetune"
            plan.jobs.append(PlannedJob(
                key=ft_key, kind="finetune", run=run, script=finetune.resolve(),
                checkpoints=tuple(output_dir / f"epoch_{i}" for i in range(epochs)),
                resources=job_resources(finetune, run_dir, evaluation=False, unrecorded=missing),
                finetune_yaml=run_dir / layout.FINETUNE_CONFIG, setup_yaml=run_dir / layout.SETUP,
                output_dir=output_dir))
        for script in scripts:
            m = CHECKPOINT_SCRIPT.match(script.name) or EVAL_SCRIPT.match(script.name)
            if not m:
                plan.warnings.append(f"{script.relative_to(root)}: not epoch<N>.slurm, base.slurm or "
                                     f"<task>_epoch<N>.slurm / <task>_base.slurm; ignored")
                continue
            _inside(script, root, "job script")
            per_task = m.re is EVAL_SCRIPT
            if per_task:
                tasks: tuple[str, ...] = (m.group("task"),)
            else:
                tasks = tuple(dict.fromkeys(t.name for t in artifacts.script_tasks(script)))
                bad = [t for t in tasks if not TASK_NAME.match(t)]
                if bad:
                    raise CkError(f"task name {bad[0][:60]!r} is not allowed", file=script, field="--task",
                                  hint="task names match [A-Za-z0-9][A-Za-z0-9._+-]*; re-run `ck scaffold`")
                if not tasks:
                    plan.warnings.append(f"{script.relative_to(root)}: no `--task NAME FILE@FUNCTION ARGS` "
                                         "line; ignored (re-run `ck scaffold`)")
                    continue
            epoch = int(m.group("epoch")) if m.group("epoch") is not None else None
            checkpoints: tuple[Path, ...] = ()
            if epoch is not None:
                if output_dir is None and (run_dir / layout.SETUP).is_file():
                    output_dir, epochs, _ = _finetune_facts(run_dir)
                    check_output_dir(output_dir, root, exp_id, file=run_dir / layout.SETUP)
                if output_dir is None:
                    raise CkError(f"{script.name} evaluates epoch {epoch} but the run has no "
                                  f"finetune.slurm or setup_finetune.yaml", file=script,
                                  hint="control runs use base.slurm")
                checkpoints = (output_dir / f"epoch_{epoch}",)
                if epochs is not None and epoch >= epochs and ft_key:
                    plan.warnings.append(f"{script.relative_to(root)}: epoch {epoch} but training "
                                         f"runs {epochs} epoch(s) (epoch_0..epoch_{epochs - 1})")
            plan.jobs.append(PlannedJob(
                key=f"{run}/eval/{script.stem}", kind="eval", run=run, script=script.resolve(),
                tasks=tasks, epoch=epoch,
                depends_on=ft_key if epoch is not None else None,
                checkpoints=checkpoints, per_task=per_task,
                resources=job_resources(script, run_dir, evaluation=True, unrecorded=missing,
                                        plan_gpus=plan_gpus)))
    if any(unrecorded.values()):
        plan.warnings.append(_unrecorded_warning(root, {r: n for r, n in unrecorded.items() if n}))
    if wanted is not None:
        plan.unscaffolded = sorted(wanted - seen)
    if not plan.jobs:
        if plan.stale:
            raise CkError("no run directory of this experiment is in experiment_summary.md: stale "
                          + ", ".join(plan.stale), file=root / layout.SUMMARY,
                          hint="re-scaffold after changing the plan (`ck scaffold`)")
        raise CkError("no jobs found: no <run>/finetune.slurm or <run>/eval/*.slurm", file=root,
                      hint="scaffold the experiment first (scaffold-experiment skill / `ck scaffold`)")
    return plan


def expected_evals(exp_dir: str | Path) -> dict[str, list[artifacts.ExpectedEval]]:
    """run dir -> the evaluations the plan expects there, for analyze: pass them to
    artifacts.scan_run(..., expected=...) so analyze counts exactly what `ck run` counts."""
    out: dict[str, list[artifacts.ExpectedEval]] = {}
    for job in plan_experiment(exp_dir).evals:
        out.setdefault(job.run, []).extend(job.expected())
    return out


# ---- artifacts (answers from cruijff_kit.state.artifacts) -----------------------------------------

def is_done(job: PlannedJob, plan: Plan | None = None) -> bool:
    if job.kind == "finetune":
        return all(artifacts.checkpoint_complete(p) for p in job.checkpoints)
    return not pending_tasks(job)


def pending_tasks(job: PlannedJob) -> list[artifacts.ExpectedEval]:
    """The evaluations of an eval job that have no successful log yet (in script order)."""
    expected = job.expected()
    logs = artifacts.list_logs(expected[0].log_dir) if expected else []  # one listing for every task
    return [e for e in expected if not artifacts.check_eval(e, logs).done]


def has_checkpoint(job: PlannedJob) -> bool:
    """An eval's input exists (base-model evals need none)."""
    return all(artifacts.checkpoint_complete(p) for p in job.checkpoints)
