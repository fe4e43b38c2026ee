"""scaffold-torchtune: run directories, setup_finetune.yaml, then finetune.yaml + finetune.slurm.

`generate_from_setup(run_dir)` is what tools/torchtune/setup_finetune.py runs inside a run
directory (the workflow for hand-edited runs); `ck scaffold` calls the same function in-process.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CkError
from ..experiment.model import Experiment, Run
from ..experiment.naming import inside
from ..finetune.trainers import trainer_of
from ..settings import RUN_SETTINGS
from ..localconfig import LocalConfig
from ..util.fs import write_if_changed
from .setup_file import SETUP_FILE, differing_fields, load_setup
from ..state import layout
from ..state.job_resources import resources_text



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


def dataset_format(path: str) -> str:
    """The setup template follows the dataset's extension; a directory of per-split files is parquet."""
    p = Path(path).expanduser()
    return "parquet" if p.suffix == ".parquet" or p.is_dir() else "json"


def output_dir_for(exp: Experiment, exp_dir: Path, run_dir: str, local: LocalConfig) -> str:
    base = exp.stated("output_dir_base") or local.output_dir_base  # the plan's Checkpoint directory wins
    if base:
        return str(Path(base).expanduser() / exp.name / run_dir)
    return str(exp_dir / run_dir / "checkpoints")


def build_setup(exp: Experiment, run: Run, run_dir: str, exp_dir: Path, local: LocalConfig) -> dict:
    """Every resolved input of the torchtune worker: each training setting of the schema
    (the run's own value, else the plan's, else the default) plus identity, paths and environment."""
    values = {s.key: exp.value(s.key, run) for s in RUN_SETTINGS}
    values = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
    values["trainer"] = trainer_of(exp, run)  # resolved: the setup file says which trainer runs
    if values["logger"] is None:
        values["logger"] = "wandb" if local.my_wandb_project else "disk"
    gpus, nodes = values["num_gpus"], values["num_nodes"]
    setup = {
        "experiment_name": exp.name,
        "run_name": run_dir,
        "my_wandb_project": local.my_wandb_project or None,
        "my_wandb_run_name": run_dir,
        "model_name": run.model,
        "model_checkpoint": exp.model_path(run.model),
        "dataset": exp.dataset,
        "dataset_format": dataset_format(exp.dataset),
        **values,
        "extra_overrides": {},
        "output_dir": output_dir_for(exp, exp_dir, run_dir, local),
        "environment": local.environment(),
    }
    setup["slurm"] = local.sbatch(f"{exp.name}_{run_dir}",
                                  gpus=local.slurm.gpus if local.slurm.gpus is not None else gpus,
                                  nodes=nodes, **slurm_estimates(setup, exp_dir, local))
    return setup


@functools.lru_cache(maxsize=64)
def _params(model_checkpoint: str, model_name: str) -> float | None:
    from ..experiment.estimate import params_from_model

    return params_from_model(model_checkpoint, model_name)


def slurm_estimates(setup: dict, exp_dir: Path, local: LocalConfig) -> dict:
    """--time from the run's estimate (steps; measured throughput of earlier runs of the model)
    and --mem from the model's size, for what claude.local.md leaves unset."""
    from ..experiment.estimate import estimated_time_limit, suggested_slurm_mem

    out = {}
    if not local.slurm.time:
        dirs = [str(Path(exp_dir).resolve().parent)] + ([local.output_dir_base] if local.output_dir_base else [])
        out["time"] = estimated_time_limit(setup, dirs)
    if not local.slurm.mem:
        # GPU nodes: never below the old 32G default; CPU-only runs (tiny models, tests) ask for less
        out["mem"] = suggested_slurm_mem(_params(str(setup["model_checkpoint"]), str(setup["model_name"])),
                                         floor_gb=32 if setup.get("num_gpus") else 8)
    return out


def fingerprint(setup: dict) -> str:
    """What the scaffold generated, so a later scaffold can tell a hand edit from a plan change."""
    import hashlib
    import json

    text = json.dumps(setup, sort_keys=True, default=list, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_FINGERPRINT = re.compile(r"^# ck-fingerprint: ([0-9a-f]{16})$", re.M)


def render_setup(setup: dict) -> str:
    from ..templating import render

    name = "setup_finetune_parquet.yaml.j2" if setup["dataset_format"] == "parquet" else "setup_finetune_json.yaml.j2"
    return render(name, s=setup, training=RUN_SETTINGS, fingerprint=fingerprint(setup)).rstrip("\n") + "\n"


def _write(path: Path, text: str, dry_run: bool) -> FileChange:
    if dry_run:
        if not path.exists():
            return FileChange(str(path), "would create")
        same = _read(path) == text
        return FileChange(str(path), "unchanged" if same else "would update")
    try:
        return FileChange(str(path), write_if_changed(path, text))
    except OSError as exc:
        raise CkError(f"cannot write: {exc.strerror}", file=path) from None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def render_outputs(setup: dict) -> dict[str, str]:
    from ..finetune.config import render_finetune_yaml, with_defaults
    from ..finetune.slurm import finetune_resources, render_finetune_slurm

    setup = with_defaults(setup)  # filled and checked once, for every file rendered from it
    resources = finetune_resources(setup)  # the #SBATCH lines and the stored record, from one value
    job = {layout.FINETUNE_SCRIPT: render_finetune_slurm(setup, resources),
           layout.resources_path(Path(layout.FINETUNE_SCRIPT)).name: resources_text(resources)}

    if setup.get("trainer") == "trl":  # TRL + PEFT: its own config beside the same finetune.slurm
        from ..finetune.trl_config import CONFIG_FILE, render_trl_config

        return {CONFIG_FILE: render_trl_config(setup), **job}
    return {layout.FINETUNE_CONFIG: render_finetune_yaml(setup), **job}


def generate_from_setup(run_dir: str | Path, *, dry_run: bool = False, setup: dict | None = None) -> list[FileChange]:
    """Read <run_dir>/setup_finetune.yaml and write finetune.yaml + finetune.slurm."""
    run_dir = Path(run_dir)
    if setup is None:
        setup = load_setup(run_dir / SETUP_FILE)
    outputs = render_outputs(setup)  # both rendered (and so checked) before either is written
    return [_write(run_dir / name, text, dry_run) for name, text in outputs.items()]


@dataclass
class RunPlan:
    """What scaffold-torchtune will write for one run; built without touching the disk."""
    run: str
    directory: Path
    setup_text: str | None      # None: keep the file on disk (hand-edited, plan unchanged)
    outputs: dict[str, str]
    note: str = ""              # e.g. "kept hand-edited setup_finetune.yaml (fields: batch_size)"


def plan_run(exp: Experiment, run: Run, run_dir: str, exp_dir: Path, local: LocalConfig, *,
             force: bool = False) -> RunPlan:
    """Decide what to write for one run and render it all; raises CkError, writes nothing.

    setup_finetune.yaml belongs to the user once written: a file edited by hand is kept (and
    finetune.yaml regenerated from it) while the plan's values for it are unchanged; when both
    the plan and the file changed, the scaffold refuses without --force and names the fields.
    """
    target = exp_dir / run_dir
    setup = build_setup(exp, run, run_dir, exp_dir, local)
    setup_text = render_setup(setup)
    path = target / SETUP_FILE
    existing = _read(path) if path.exists() else None
    if path.exists() and existing is None:
        raise CkError("cannot read (not UTF-8 text, or not readable)", file=path)
    if existing is None or existing == setup_text or force:
        return RunPlan(run.name, target, setup_text, render_outputs(setup))
    on_disk = load_setup(path)
    edited = differing_fields(on_disk, setup)
    if not edited:
        return RunPlan(run.name, target, setup_text, render_outputs(setup))
    m = _FINGERPRINT.search(existing)
    written, new = (m.group(1) if m else None), fingerprint(setup)
    if written is not None and written == fingerprint(on_disk):
        # untouched since the scaffold wrote it: the plan changed, follow the plan
        return RunPlan(run.name, target, setup_text, render_outputs(setup))
    if written == new:
        # edited by hand, and the plan still says what it said then: the edit stands
        return RunPlan(run.name, target, None, render_outputs(on_disk),
                       note=f"kept hand-edited {SETUP_FILE} ({', '.join(edited[:8])})"
                       + _outside_note(on_disk, setup, exp_dir))
    raise CkError(f"was edited by hand and the plan changed too; it differs from the plan in: "
                  f"{', '.join(edited[:12])}" + (" …" if len(edited) > 12 else ""),
                  file=path, field=edited[0],
                  hint="keep your edits: fold them into experiment_summary.md; or pass --force to "
                       "overwrite this file with the plan's values")


def _outside_note(on_disk: dict, planned: dict, exp_dir: Path) -> str:
    """A hand-edited output_dir outside both the experiment and the planned checkpoint directory:
    its checkpoints would be found by nobody looking where the plan says (said, not refused)."""
    out = str(on_disk.get("output_dir") or "")
    if not out or out == planned.get("output_dir"):
        return ""
    path = Path(out).expanduser()
    if inside(exp_dir, path) or inside(Path(str(planned["output_dir"])).parent, path):
        return ""
    return f"; its output_dir {out} is outside the experiment and the plan's checkpoint directory"


def write_run(plan: RunPlan, *, dry_run: bool = False) -> list[FileChange]:
    if not dry_run:
        try:
            plan.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CkError(f"cannot create the run directory: {exc.strerror}", file=plan.directory) from None
    files = []
    if plan.setup_text is not None:
        files.append(_write(plan.directory / SETUP_FILE, plan.setup_text, dry_run))
    else:
        files.append(FileChange(str(plan.directory / SETUP_FILE), "kept (hand-edited)"))
    files += [_write(plan.directory / name, text, dry_run) for name, text in plan.outputs.items()]
    return files
