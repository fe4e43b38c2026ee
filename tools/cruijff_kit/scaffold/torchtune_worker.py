"""scaffold-torchtune: run directories, setup_finetune.yaml, then finetune.yaml + finetune.slurm.

`generate_from_setup(run_dir)` is what tools/torchtune/setup_finetune.py runs inside a run
directory (seed 002); `ck scaffold` calls the same function in-process.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CkError
from ..experiment.model import Experiment, Run
from ..localconfig import LocalConfig
from ..util.fs import write_if_changed
from .setup_file import SETUP_FILE, load_setup

DEFAULT_LR = 5e-5  # seed 002: "default to 5e-5 if not in table"


@dataclass
class FileChange:
    path: str
    status: str  # created | updated | unchanged | would create | would update


@dataclass
class RunResult:
    run: str
    directory: str
    ok: bool = True
    error: str | None = None
    files: list[FileChange] = field(default_factory=list)


def _cfg_number(exp: Experiment, key: str, default, cast):
    text = exp.config_value(key)
    if text is None or text.strip() in ("", "-"):
        return default
    try:
        return cast(text)
    except ValueError:
        raise CkError(f"expected a number, got {text!r}", field=key) from None


def dataset_format(path: str) -> str:
    """The setup template follows the dataset's extension; a directory of per-split files is parquet."""
    p = Path(path).expanduser()
    return "parquet" if p.suffix == ".parquet" or p.is_dir() else "json"


def output_dir_for(exp: Experiment, exp_dir: Path, run_dir: str, local: LocalConfig) -> str:
    if local.output_dir_base:
        return str(Path(local.output_dir_base).expanduser() / exp.name / run_dir)
    return str(exp_dir / run_dir / "checkpoints")


def build_setup(exp: Experiment, run: Run, run_dir: str, exp_dir: Path, local: LocalConfig) -> dict:
    rank = run.lora_rank
    logger = (exp.config_value("Logger") or ("wandb" if local.my_wandb_project else "disk")).strip().lower()
    gpus = exp.gpus
    nodes = _cfg_number(exp, "Nodes", 1, int)
    return {
        "experiment_name": exp.name,
        "run_name": run_dir,
        "my_wandb_project": local.my_wandb_project or None,
        "my_wandb_run_name": run_dir,
        "model_name": run.model,
        "model_checkpoint": exp.model_path(run.model),
        "dataset": exp.dataset,
        "dataset_format": dataset_format(exp.dataset),
        "lora_rank": rank,
        "lora_alpha": _cfg_number(exp, "LoRA alpha", 2 * rank, float),
        "lora_dropout": _cfg_number(exp, "LoRA dropout", 0.0, float),
        "learning_rate": run.learning_rate if run.learning_rate is not None
        else _cfg_number(exp, "Learning rate", DEFAULT_LR, float),
        "batch_size": run.batch_size or exp.batch_size,
        "gradient_accumulation_steps": _cfg_number(exp, "Gradient accumulation steps", 1, int),
        "lr_warmup_steps": _cfg_number(exp, "Warmup steps", 100, int),
        "weight_decay": _cfg_number(exp, "Weight decay", 0.01, float),
        "epochs": exp.epochs,
        "max_steps_per_epoch": _cfg_number(exp, "Max steps per epoch", None, int),
        "num_gpus": gpus,
        "num_nodes": nodes,
        "num_cpu_ranks": _cfg_number(exp, "CPU ranks", 1, int),
        "seed": _cfg_number(exp, "Seed", 1234, int),
        "system_prompt": exp.system_prompt,
        "enable_validation": exp.validation,
        "logger": logger,
        "extra_overrides": {},
        "output_dir": output_dir_for(exp, exp_dir, run_dir, local),
        "environment": local.environment(),
        "slurm": local.sbatch(f"{exp.name}_{run_dir}",
                              gpus=local.slurm.gpus if local.slurm.gpus is not None else gpus,
                              nodes=nodes),
    }


def render_setup(setup: dict) -> str:
    from ..templating import render

    name = "setup_finetune_parquet.yaml.j2" if setup["dataset_format"] == "parquet" else "setup_finetune_json.yaml.j2"
    return render(name, s=setup).rstrip("\n") + "\n"


def _write(path: Path, text: str, dry_run: bool) -> FileChange:
    if dry_run:
        if not path.exists():
            return FileChange(str(path), "would create")
        same = path.read_text(encoding="utf-8") == text
        return FileChange(str(path), "unchanged" if same else "would update")
    return FileChange(str(path), write_if_changed(path, text))


def render_outputs(setup: dict) -> dict[str, str]:
    from ..finetune.config import render_finetune_yaml
    from ..finetune.slurm import render_finetune_slurm

    return {"finetune.yaml": render_finetune_yaml(setup), "finetune.slurm": render_finetune_slurm(setup)}


def generate_from_setup(run_dir: str | Path, *, dry_run: bool = False, setup: dict | None = None) -> list[FileChange]:
    """Read <run_dir>/setup_finetune.yaml and write finetune.yaml + finetune.slurm."""
    run_dir = Path(run_dir)
    if setup is None:
        setup = load_setup(run_dir / SETUP_FILE)
    return [_write(run_dir / name, text, dry_run) for name, text in render_outputs(setup).items()]


def scaffold_run(exp: Experiment, run: Run, run_dir: str, exp_dir: Path, local: LocalConfig,
                 *, dry_run: bool = False) -> RunResult:
    result = RunResult(run=run.name, directory=run_dir)
    target = exp_dir / run_dir
    try:
        setup = build_setup(exp, run, run_dir, exp_dir, local)
        setup_text = render_setup(setup)
        if not dry_run:
            target.mkdir(parents=True, exist_ok=True)
        result.files.append(_write(target / SETUP_FILE, setup_text, dry_run))
        if dry_run:
            result.files += generate_from_setup(target, dry_run=True, setup=setup)
        else:
            # read back what we wrote: the worker always works from the file on disk
            result.files += generate_from_setup(target)
    except CkError as err:
        result.ok, result.error = False, str(err)
    return result
