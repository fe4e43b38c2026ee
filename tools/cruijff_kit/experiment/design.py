"""`ck design`: a compact spec -> experiment_summary.md (Cartesian product of the grid)."""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CkError
from .estimate import calibrate, estimate_seconds, examples_in_dataset, format_duration, params_from_model
from .model import Evaluation, Experiment, Run, RunType
from .naming import check_safe_name
from .numbers import format_float


@dataclass
class DesignSpec:
    name: str
    models: list[tuple[str, str]]
    dataset: str
    lora_ranks: list[int]
    learning_rates: list[float]
    batch_sizes: list[int] = field(default_factory=lambda: [4])
    controls: bool = True
    tasks: list[tuple[str, str, tuple[int, ...]]] = field(default_factory=list)  # (task, script, epochs)
    epochs: int = 1
    gpus: int = 1
    system_prompt: str = ""
    validation: bool = False
    experiment_dir: str = ""
    config_extra: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict, source: str = "spec") -> "DesignSpec":
        def need(key):
            if key not in d or d[key] in (None, "", [], {}):
                raise CkError("missing required field", file=source, field=key)
            return d[key]

        def as_list(v):
            return list(v) if isinstance(v, (list, tuple)) else [v]

        models = need("models")
        if isinstance(models, dict):
            models = list(models.items())
        else:
            models = [tuple(m.split("=", 1)) if isinstance(m, str) and "=" in m else m for m in models]
            if not all(isinstance(m, (list, tuple)) and len(m) == 2 for m in models):
                raise CkError("models must map name -> path", file=source, field="models")
        grid = d.get("grid", {}) or {}
        try:
            ranks = [int(x) for x in as_list(grid.get("lora_rank", d.get("lora_ranks", [8])))]
            lrs = [float(x) for x in as_list(grid.get("learning_rate", d.get("learning_rates", [5e-5])))]
            bss = [int(x) for x in as_list(grid.get("batch_size", d.get("batch_sizes", [d.get("batch_size", 4)])))]
        except (TypeError, ValueError) as exc:
            raise CkError(f"grid values must be numbers ({exc})", file=source, field="grid") from None
        tasks = []
        for t in d.get("tasks", []) or []:
            if not isinstance(t, dict) or "task" not in t:
                raise CkError("each task needs 'task' and 'script'", file=source, field="tasks")
            epochs = t.get("epochs", [0])
            tasks.append((str(t["task"]), str(t.get("script", "")),
                          tuple(int(e) for e in as_list(epochs))))
        extra = [(str(k), str(v)) for k, v in (d.get("config", {}) or {}).items()]
        try:
            return cls(name=str(need("name")), models=[(str(a), str(b)) for a, b in models],
                       dataset=str(need("dataset")), lora_ranks=ranks, learning_rates=lrs,
                       batch_sizes=bss, controls=bool(d.get("controls", True)), tasks=tasks,
                       epochs=int(d.get("epochs", 1)), gpus=int(d.get("gpus", 1)),
                       system_prompt=str(d.get("system_prompt", "")),
                       validation=bool(d.get("validation", False)),
                       experiment_dir=str(d.get("experiment_dir", "")), config_extra=extra)
        except (TypeError, ValueError) as exc:
            raise CkError(f"bad value ({exc})", file=source) from None


def _measurement_dirs(spec: DesignSpec) -> list[str]:
    """Where earlier experiments (with measured run times) live: beside this one, and under
    claude.local.md's output_dir_base."""
    from ..localconfig import load_local_config

    dirs = [str(Path(spec.experiment_dir).expanduser().resolve().parent)] if spec.experiment_dir else []
    try:
        base = load_local_config(search=(spec.experiment_dir,) if spec.experiment_dir else ()).output_dir_base
    except CkError:
        base = ""  # a broken claude.local.md is reported by the commands that need it
    return dirs + ([base] if base else [])


def design_experiment(spec: DesignSpec) -> Experiment:
    check_safe_name(spec.name, fld="name")
    for name, _ in spec.models:
        check_safe_name(name, fld="models")
    if spec.epochs < 1:
        raise CkError("epochs must be >= 1", field="epochs")
    for r in spec.lora_ranks:
        if r < 1:
            raise CkError(f"LoRA rank must be >= 1, got {r}", field="lora_rank")
    for lr in spec.learning_rates:
        if not lr > 0:
            raise CkError(f"learning rate must be > 0, got {lr}", field="learning_rate")
    for b in spec.batch_sizes:
        if b < 1:
            raise CkError(f"batch size must be >= 1, got {b}", field="batch_size")
    examples = examples_in_dataset(spec.dataset)
    max_steps = next((int(v) for k, v in spec.config_extra
                      if k.strip().lower() == "max steps per epoch" and str(v).strip().isdigit()), None)
    calibrations = {path: calibrate(path, _measurement_dirs(spec), exclude=spec.experiment_dir or None)
                    for _, path in spec.models}
    runs: list[Run] = []
    several_bs = len(spec.batch_sizes) > 1
    for (model, path), rank, lr, bs in itertools.product(spec.models, spec.lora_ranks,
                                                          spec.learning_rates, spec.batch_sizes):
        name = f"{model}_rank{rank}_lr{format_float(lr)}" + (f"_bs{bs}" if several_bs else "")
        est = estimate_seconds(params=params_from_model(path, model), examples=examples,
                               epochs=spec.epochs, batch_size=bs, gpus=spec.gpus,
                               max_steps_per_epoch=max_steps, calibration=calibrations[path])
        runs.append(Run(name=name, model=model, type=RunType.FINETUNED, lora_rank=rank,
                        learning_rate=lr, batch_size=bs, est_time=format_duration(est)))
    if spec.controls:
        for model, _ in spec.models:
            runs.append(Run(name=f"{model}_base", model=model, type=RunType.CONTROL, est_time="N/A"))
    for task, _, epochs in spec.tasks:
        for e in epochs:
            if e >= spec.epochs:
                raise CkError(f"task {task!r} evaluates epoch {e}, but training has only "
                              f"{spec.epochs} epoch(s) (epochs are numbered from 0)", field="tasks")
    return Experiment(
        name=spec.name, experiment_dir=spec.experiment_dir, models=tuple(spec.models),
        dataset=spec.dataset, epochs=spec.epochs, gpus=spec.gpus,
        batch_size=spec.batch_sizes[0], system_prompt=spec.system_prompt,
        validation=spec.validation, config_extra=tuple(spec.config_extra), runs=tuple(runs),
        evaluations=tuple(Evaluation(task=t, script=s, epochs=e) for t, s, e in spec.tasks),
    )


def load_spec_file(path: str | Path) -> DesignSpec:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise CkError("design spec not found", file=p)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise CkError(f"invalid YAML: {getattr(exc, 'problem', exc)}", file=p,
                      line=line + 1 if line is not None else None) from None
    if not isinstance(data, dict):
        raise CkError("a design spec is a YAML mapping", file=p)
    spec = DesignSpec.from_dict(data, str(p))
    base = p.parent.resolve()
    # relative paths in a spec are relative to the spec file, not to wherever ck was started
    spec.models = [(n, _resolve(base, m)) for n, m in spec.models]
    spec.dataset = _resolve(base, spec.dataset)
    spec.tasks = [(t, _resolve(base, s) if s else s, e) for t, s, e in spec.tasks]
    return spec


def _resolve(base: Path, value: str) -> str:
    v = Path(value).expanduser()
    if v.is_absolute() or not (base / v).exists():
        return str(v)
    return str((base / v).resolve())
