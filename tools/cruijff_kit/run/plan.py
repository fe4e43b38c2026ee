"""Which jobs an experiment has, and which are already done — derived from disk only.

    EXP/<run>/finetune.slurm                  -> '<run>/finetune'
    EXP/<run>/eval/<task>_epoch<N>.slurm      -> '<run>/eval/<task>_epoch<N>'  (after its finetune;
                                                 needs <output_dir>/epoch_<N>)
    EXP/<run>/eval/<task>_base.slurm          -> '<run>/eval/<task>_base'      (control: no dependency)

A fine-tuning job is done when every epoch_<N> dir holds a *.safetensors; an evaluation when a
matching `.eval` log in <run>/eval/logs/ says success.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CkError
from ..executors.core import JobSpec

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
EVAL_SCRIPT = re.compile(r"^(?P<task>[A-Za-z0-9][A-Za-z0-9._-]*?)_(?:epoch(?P<epoch>\d+)|base)\.slurm$")
_GPU_LINE = re.compile(r"^#SBATCH\s+(?:--gres=gpu(?::[A-Za-z0-9_-]+)?:(\d+)|--gpus(?:-per-node)?[= ](?:[A-Za-z0-9_-]+:)?(\d+))")


@dataclass(frozen=True)
class PlannedJob:
    key: str
    kind: str  # "finetune" | "eval"
    run: str
    script: Path
    task: str | None = None
    epoch: int | None = None  # None for a finetune or a base-model eval
    depends_on: str | None = None  # key of this run's finetune job
    checkpoints: tuple[Path, ...] = ()  # finetune: every epoch dir; eval: the one it reads
    gpus: int = 0
    finetune_yaml: Path | None = None
    setup_yaml: Path | None = None

    @property
    def label(self) -> str:
        if self.kind == "finetune":
            return "finetune"
        return f"eval {self.task} " + (f"epoch {self.epoch}" if self.epoch is not None else "base")

    @property
    def control(self) -> bool:
        return self.kind == "eval" and self.epoch is None

    def spec(self, env: dict[str, str] | None = None, sbatch_args=()) -> JobSpec:
        return JobSpec(key=self.key, script=self.script, kind=self.kind, run=self.run,
                       gpus=self.gpus, env=dict(env or {}), sbatch_args=tuple(sbatch_args))


@dataclass
class Plan:
    exp_dir: Path
    jobs: list[PlannedJob] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

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


def _load_yaml(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise CkError(f"invalid YAML: {getattr(exc, 'problem', exc)}", file=path,
                      line=mark.line + 1 if mark else None) from None
    return data if isinstance(data, dict) else {}


def sbatch_gpus(script: Path) -> int:
    """GPUs a script asks for in its #SBATCH header (0 when none)."""
    try:
        lines = script.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return 0
    for line in lines:
        m = _GPU_LINE.match(line.strip())
        if m:
            return int(m.group(1) or m.group(2))
    return 0


def _finetune_facts(run_dir: Path) -> tuple[Path, int, int]:
    """(output_dir, epochs, num_gpus) from setup_finetune.yaml, falling back to finetune.yaml."""
    setup = run_dir / "setup_finetune.yaml"
    tune = run_dir / "finetune.yaml"
    s = _load_yaml(setup) if setup.is_file() else {}
    t = _load_yaml(tune) if tune.is_file() else {}
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


def plan_experiment(exp_dir: str | Path) -> Plan:
    root = Path(exp_dir).resolve()
    if not root.is_dir():
        raise CkError(f"experiment directory not found: {exp_dir}")
    if not (root / "experiment_summary.md").is_file():
        raise CkError("experiment_summary.md not found", file=root / "experiment_summary.md",
                      hint="design the experiment first (design-experiment skill / `ck design`)")
    plan = Plan(root)
    for run_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        finetune = run_dir / "finetune.slurm"
        eval_dir = run_dir / "eval"
        scripts = sorted(eval_dir.glob("*.slurm")) if eval_dir.is_dir() else []
        if not finetune.exists() and not scripts:
            continue  # not a run directory (e.g. data/, analysis/)
        if not RUN_NAME.match(run_dir.name):
            raise CkError(f"run name {run_dir.name!r} is not allowed", file=run_dir,
                          hint="run names must match [A-Za-z0-9][A-Za-z0-9._-]*")
        _inside(run_dir, root, "run directory")
        run = run_dir.name
        output_dir = epochs = None
        ft_key = None
        if finetune.exists():
            _inside(finetune, root, "job script")
            output_dir, epochs, num_gpus = _finetune_facts(run_dir)
            ft_key = f"{run}/finetune"
            plan.jobs.append(PlannedJob(
                key=ft_key, kind="finetune", run=run, script=finetune.resolve(),
                checkpoints=tuple(output_dir / f"epoch_{i}" for i in range(epochs)),
                gpus=num_gpus or sbatch_gpus(finetune),
                finetune_yaml=run_dir / "finetune.yaml", setup_yaml=run_dir / "setup_finetune.yaml"))
        for script in scripts:
            m = EVAL_SCRIPT.match(script.name)
            if not m:
                plan.warnings.append(f"{script.relative_to(root)}: not <task>_epoch<N>.slurm or "
                                     f"<task>_base.slurm; ignored")
                continue
            _inside(script, root, "job script")
            epoch = int(m.group("epoch")) if m.group("epoch") is not None else None
            checkpoints: tuple[Path, ...] = ()
            if epoch is not None:
                if output_dir is None and (run_dir / "setup_finetune.yaml").is_file():
                    output_dir, epochs, _ = _finetune_facts(run_dir)
                if output_dir is None:
                    raise CkError(f"{script.name} evaluates epoch {epoch} but the run has no "
                                  f"finetune.slurm or setup_finetune.yaml", file=script,
                                  hint="control runs use <task>_base.slurm")
                checkpoints = (output_dir / f"epoch_{epoch}",)
                if epochs is not None and epoch >= epochs and ft_key:
                    plan.warnings.append(f"{script.relative_to(root)}: epoch {epoch} but training "
                                         f"runs {epochs} epoch(s) (epoch_0..epoch_{epochs - 1})")
            plan.jobs.append(PlannedJob(
                key=f"{run}/eval/{script.stem}", kind="eval", run=run, script=script.resolve(),
                task=m.group("task"), epoch=epoch,
                depends_on=ft_key if epoch is not None else None,
                checkpoints=checkpoints, gpus=sbatch_gpus(script)))
    if not plan.jobs:
        raise CkError("no jobs found: no <run>/finetune.slurm or <run>/eval/*.slurm", file=root,
                      hint="scaffold the experiment first (scaffold-experiment skill / `ck scaffold`)")
    return plan


# ---- artifacts --------------------------------------------------------------------------

def checkpoint_ready(path: Path) -> bool:
    return path.is_dir() and any(path.glob("*.safetensors"))


def _eval_header(path: Path):
    """(status, task, model-ish text) from an inspect log header, or None if unreadable."""
    try:
        from inspect_ai.log import read_eval_log
    except ImportError:
        return None
    try:
        log = read_eval_log(str(path), header_only=True)
    except Exception:  # not a real inspect log (or a corrupt one): caller falls back
        return None
    ev = getattr(log, "eval", None)
    model_text = " ".join(str(x) for x in (getattr(ev, "model", ""), getattr(ev, "model_args", ""),
                                           getattr(ev, "task_args", "")))
    return str(getattr(log, "status", "")), str(getattr(ev, "task", "")), model_text


_EPOCH_IN_MODEL = re.compile(r"epoch_(\d+)")


def eval_done(job: PlannedJob, plan: Plan) -> bool:
    """A successful .eval log for this task (and epoch) exists in <run>/eval/logs/."""
    logs = job.script.parent / "logs"
    if not logs.is_dir():
        return False
    siblings = [j for j in plan.evals if j.run == job.run]
    for path in sorted(logs.rglob("*.eval")):
        header = _eval_header(path)
        if header is None:
            # Not readable as an inspect log: count it only when it can't belong to another job.
            if len(siblings) == 1 or job.script.stem in path.name:
                return True
            continue
        status, task, model = header
        if status != "success":
            continue
        if len(siblings) == 1:
            return True
        if task.split("/")[-1].split("@")[-1] != job.task:  # "pkg/name", "file.py@name" or "name"
            continue
        epochs = {int(e) for e in _EPOCH_IN_MODEL.findall(model)}
        if (job.epoch is None and not epochs) or (job.epoch in epochs):
            return True
    return False


def is_done(job: PlannedJob, plan: Plan) -> bool:
    if job.kind == "finetune":
        return all(checkpoint_ready(p) for p in job.checkpoints)
    return eval_done(job, plan)


def has_checkpoint(job: PlannedJob) -> bool:
    """An eval's input exists (base-model evals need none)."""
    return all(checkpoint_ready(p) for p in job.checkpoints)
