"""`ck design`: a compact spec -> experiment_summary.md (Cartesian product of the grid).

The grid may vary any per-run setting of settings.py (`grid:` in a spec,
`--vary 'LoRA dropout=0,0.1'` on the command line); every other setting may be stated once
(`config:`, a top-level key, or `--set`). Everything is checked against the schema before a
byte is written, and the rendered summary is parsed back: `ck design` never writes a plan
that `ck scaffold` would refuse.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import CkError
from ..finetune.trainers import TORCHTUNE, TRAINERS, check_trainer, default_trainer
from ..util.formats import duration_estimate, size_estimate
from .disk import planned_disk_bytes
from .estimate import calibrate, estimate_seconds, examples_in_dataset, params_from_model
from .model import EPOCH_WORDS, Evaluation, Experiment, Run, RunType, Tools
from .naming import check_safe_name, run_directories
from .search import Dimension, field_key, is_range, parse_range
from .search_design import check_budget, resolve_search, trial_values, with_rung_evaluation
from ..settings import BY_KEY, RUN_SETTINGS, SAFE_NAME, Setting, lookup, lookup_column, suggest

MAX_RUNS = 10_000
TOP_LEVEL = ("name", "models", "dataset", "question", "grid", "controls", "eval_only", "tasks", "config", "experiment_dir",
             "lora_ranks", "learning_rates", "batch_sizes", "search")
TASK_KEYS = ("task", "script", "epochs", "split", "system_prompt", "runs", "dataset", "description")
LEGACY_GRID = {"lora_ranks": "lora_rank", "learning_rates": "learning_rate", "batch_sizes": "batch_size"}
ALWAYS_COLUMNS = ("lora_rank", "learning_rate", "batch_size")  # the seeds' runs table


@dataclass
class DesignSpec:
    name: str
    models: list[tuple[str, str]]
    dataset: str
    # setup key -> levels; the product of all levels (x models) is the fine-tuned runs; with a search,
    # a setting's range (experiment/search.py Dimension) or levels are its space
    grid: dict[str, list | Dimension] = field(default_factory=lambda: {"lora_rank": [8], "learning_rate": [5e-5]})
    controls: bool = True
    eval_only: list[Run] = field(default_factory=list)  # models evaluated, not trained (eval_only.py)
    tasks: list[Evaluation] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)  # Configuration values, by setup key
    question: str = ""
    experiment_dir: str = ""
    source: str | None = None  # the spec file, for messages
    lines: dict[tuple, int] = field(default_factory=dict)
    # False: no fine-tuned runs (an eval-only experiment that states no grid: nobody asked for training)
    finetune: bool = True
    grid_stated: bool = False  # the spec file states ranks / learning rates / a grid
    # a search (experiment/search.py): its fields by key (algorithm, trials, rungs, metric, …), as given
    search: dict[str, Any] | None = None

    def line(self, *key) -> int | None:
        return self.lines.get(tuple(key))

    @classmethod
    def from_dict(cls, d: dict, source: str = "spec", lines: dict | None = None) -> "DesignSpec":
        lines = lines or {}
        at = lambda *k: lines.get(tuple(k))  # noqa: E731

        def need(key):
            if key not in d or d[key] in (None, "", [], {}):
                raise CkError("missing required field", file=source, field=key)
            return d[key]

        settings: dict[str, Any] = {}
        for key in d:
            if key in TOP_LEVEL:
                continue
            s = lookup(str(key))
            if s is None:
                near = suggest(str(key), list(TOP_LEVEL) + [x.key for x in BY_KEY.values() if x.in_plan])
                raise CkError(f"unknown spec key {str(key)[:60]!r}", file=source, line=at(key), field=str(key)[:60],
                              hint=f"did you mean {near!r}?" if near else "see skills/design-experiment/references/spec-format.md")
            settings[s.key] = coerce(s, d[key], source, at(key), str(key))
        for key, value in _mapping(d.get("config"), source, at("config"), "config").items():
            s = lookup(str(key))
            if s is None:
                near = suggest(str(key))
                raise CkError(f"unknown setting {str(key)[:60]!r}", file=source, line=at("config", key),
                              field=f"config.{str(key)[:60]}", hint=f"did you mean {near!r}?" if near else None)
            settings[s.key] = coerce(s, value, source, at("config", key), f"config.{key}")

        models = need("models")
        if isinstance(models, dict):
            models = list(models.items())
        elif isinstance(models, list):
            models = [tuple(m.split("=", 1)) if isinstance(m, str) and "=" in m else m for m in models]
        if not isinstance(models, list) or not all(isinstance(m, (list, tuple)) and len(m) == 2 for m in models):
            raise CkError("models must map name -> path", file=source, line=at("models"), field="models")

        grid: dict[str, list] = {}
        for legacy, key in LEGACY_GRID.items():
            if legacy in d:
                grid[key] = levels(BY_KEY[key], d[legacy], source, at(legacy), legacy)
        for key, values in _mapping(d.get("grid"), source, at("grid"), "grid").items():
            s = grid_setting(str(key), source, at("grid", key))
            grid[s.key] = (parse_range(s, values, source, at("grid", key), f"grid.{key}") if is_range(values)
                           else levels(s, values, source, at("grid", key), f"grid.{key}"))
        tasks = []
        raw_tasks = d.get("tasks") or []
        if not isinstance(raw_tasks, list):
            raise CkError("tasks must be a list of {task, script, epochs}", file=source, line=at("tasks"), field="tasks")
        for i, t in enumerate(raw_tasks):
            tasks.append(task_from_dict(t, source, at("tasks"), i))
        question = d.get("question") or ""
        if not isinstance(question, str):
            raise CkError("question must be text", file=source, line=at("question"), field="question")
        name = need("name")
        dataset = need("dataset")
        for key, val in (("name", name), ("dataset", dataset), ("experiment_dir", d.get("experiment_dir", ""))):
            if not isinstance(val, str):
                raise CkError(f"expected text, got {str(val)[:60]!r}", file=source, line=at(key), field=key)
        spec = cls(name=name, models=[(str(a), str(b)) for a, b in models], dataset=dataset,
                   controls=_bool(d.get("controls", True), source, at("controls")), tasks=tasks,
                   settings=settings, question=question, experiment_dir=d.get("experiment_dir", "") or "",
                   source=source, lines=lines)
        spec.grid.update(grid)
        spec.search = _search_options(d.get("search"), source, at, spec.lines)
        from .eval_only import runs_from_spec

        spec.eval_only = runs_from_spec(d.get("eval_only"), source, at("eval_only"), [str(a) for a, _ in models])
        spec.grid_stated = bool(grid) or "lora_rank" in settings or "learning_rate" in settings
        spec.finetune = spec.grid_stated or not spec.eval_only
        return spec


def _search_options(value, source, at, lines: dict) -> dict | None:
    """A spec's `search:` mapping (algorithm, trials, rungs, reduction_factor, rung_epochs, metric,
    direction, seed, budget_gpu_hours) -> options by field key; checked when the plan is designed."""
    if value is None:
        return None
    out = {}
    for key, v in _mapping(value, source, at("search"), "search").items():
        k = field_key(str(key))
        if k is None:
            raise CkError(f"unknown search key {str(key)[:60]!r}", file=source, line=at("search", key) or at("search"),
                          field=f"search.{str(key)[:60]}", hint="keys: algorithm, trials, rungs, reduction_factor, "
                          "rung_epochs, metric, direction, seed, budget_gpu_hours")
        out[k] = v
        if at("search", key) is not None:  # `eta:` says reduction_factor: messages point at its line
            lines[("search", k)] = at("search", key)
    return out


def _mapping(value, source, line, fld) -> dict:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise CkError("expected a mapping", file=source, line=line, field=fld)
    return value


def _bool(value, source, line) -> bool:
    if not isinstance(value, bool):
        raise CkError(f"expected true or false, got {str(value)[:40]!r}", file=source, line=line, field="controls")
    return value


def coerce(s: Setting, value: Any, source: str | None, line: int | None, fld: str) -> Any:
    """A YAML / command-line value -> the setting's type, checked against its bounds."""
    try:
        if isinstance(value, str):
            return s.parse_text(value)
        if s.kind == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif s.kind == "text" and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        problem = s.problem(value)
        if problem:
            raise ValueError(problem)
        return list(value) if isinstance(value, tuple) else value
    except ValueError as exc:
        raise CkError(str(exc), file=source, line=line, field=fld) from None


def grid_setting(name: str, source: str | None = None, line: int | None = None) -> Setting:
    s = lookup_column(name)
    if s is None:
        other = lookup(name)
        if other is not None:
            raise CkError(f"{other.name!r} is an evaluation/output setting: it cannot differ between runs",
                          file=source, line=line, field=name[:60])
        near = suggest(name, [x.name for x in RUN_SETTINGS])
        raise CkError(f"unknown setting {name[:60]!r} to vary", file=source, line=line, field=name[:60],
                      hint=(f"did you mean {near!r}? " if near else "") + "settings: "
                      "skills/scaffold-torchtune/references/setup-fields.md")
    return s


def levels(s: Setting, values, source, line, fld) -> list:
    vals = values if isinstance(values, list) else [values]
    if not vals:
        raise CkError("needs at least one value", file=source, line=line, field=fld)
    out = [coerce(s, v, source, line, fld) for v in vals]
    seen = []
    for v in out:
        if v in seen:
            raise CkError(f"lists {s.format(v)} twice", file=source, line=line, field=fld)
        seen.append(v)
    return out


def parse_epochs_value(value, source, line, fld) -> tuple[tuple[int, ...], str]:
    if isinstance(value, str) and value.strip().lower() in EPOCH_WORDS:
        return (), value.strip().lower()
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
    else:
        parts = value if isinstance(value, list) else [value]
    out: list[int] = []
    for p in parts:
        if isinstance(p, bool) or not (isinstance(p, int) or (isinstance(p, str) and p.isdigit())):
            raise CkError(f"epochs must be whole numbers (0-based), 'all' or 'last', got {str(p)[:40]!r}",
                          file=source, line=line, field=fld)
        e = int(p)
        if e > 999:
            raise CkError(f"epoch {e} is beyond any training", file=source, line=line, field=fld)
        if e in out:
            raise CkError(f"lists epoch {e} twice", file=source, line=line, field=fld)
        out.append(e)
    if not out:
        raise CkError("needs at least one epoch", file=source, line=line, field=fld)
    return tuple(out), ""


def task_from_dict(t, source, line, i) -> Evaluation:
    fld = f"tasks[{i}]"
    if not isinstance(t, dict) or "task" not in t:
        raise CkError("each task needs 'task' and 'script'", file=source, line=line, field=fld)
    unknown = [k for k in t if k not in TASK_KEYS]
    if unknown:
        raise CkError(f"unknown task key {str(unknown[0])[:40]!r} (known: {', '.join(TASK_KEYS)})",
                      file=source, line=line, field=fld)
    epochs, spec = parse_epochs_value(t.get("epochs", [0]), source, line, f"{fld}.epochs")
    text = {}
    for k in ("task", "script", "split", "system_prompt", "dataset", "description"):
        v = t.get(k)
        if v is not None and not isinstance(v, str):
            raise CkError(f"expected text, got {str(v)[:40]!r}", file=source, line=line, field=f"{fld}.{k}")
        text[k] = v
    runs = t.get("runs") or []
    if runs == "all":
        runs = []
    if not isinstance(runs, list) or not all(isinstance(r, str) for r in runs):
        raise CkError("runs must be a list of run names (or 'all')", file=source, line=line, field=f"{fld}.runs")
    return Evaluation(task=text["task"], script=text["script"] or "", epochs=epochs, epoch_spec=spec,
                      split=text["split"], system_prompt=text["system_prompt"], runs=tuple(runs),
                      dataset=text["dataset"] or "", description=text["description"] or "")


def _run_name(model: str, combo: dict, grid: dict[str, list]) -> str:
    parts = [model]
    for key, value in combo.items():
        s = BY_KEY[key]
        if key in ("lora_rank", "learning_rate") or len(grid[key]) > 1:
            parts.append(s.directory_part(value, grid[key].index(value) + 1))
    return "_".join(parts)


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
    src = spec.source
    check_safe_name(spec.name, file=src, line=spec.line("name"), fld="name")
    if not spec.models:
        raise CkError("at least one model is needed", file=src, field="models")
    for name, path in spec.models:
        check_safe_name(name, file=src, line=spec.line("models", name), fld="models")
        if not path.strip():
            raise CkError(f"model {name!r} has no path", file=src, line=spec.line("models", name), field="models")
    if not spec.dataset.strip():
        raise CkError("missing required field", file=src, field="dataset")
    suffix = Path(spec.dataset).suffix.lower()
    if suffix and suffix not in (".json", ".parquet"):
        raise CkError(f"dataset {spec.dataset[:120]!r}: {suffix} files are not supported", file=src,
                      line=spec.line("dataset"), field="dataset",
                      hint="use a .json file {\"train\": [...], ...} or a directory of .parquet splits")
    # every value through the schema, whoever built the spec (file, flags, Python)
    settings = {}
    for key, value in spec.settings.items():
        s = BY_KEY.get(key)
        if s is None or not s.in_plan:
            raise CkError(f"unknown setting {key!r}", file=src, field=key)
        settings[key] = coerce(s, value, src, spec.line(key), s.name)
    grid = {}
    ranges: dict[str, Dimension] = {}  # a search's ranges (experiment/search.py)
    for key, values in spec.grid.items():
        s = BY_KEY.get(key)
        if s is None or not s.per_run:
            raise CkError(f"{key!r} cannot vary between runs", file=src, line=spec.line("grid", key), field=key)
        if isinstance(values, Dimension):
            if spec.search is None:
                raise CkError(f"a range of {s.name} is a search space, and the plan has no search", file=src,
                              line=spec.line("grid", key), field=s.name,
                              hint="add --search asha|tpe --trials N, or give levels (e.g. 8,16) for a grid")
            ranges[key] = values
            continue
        grid[key] = levels(s, list(values), src, spec.line("grid", key), s.name.lower())
    for key, default in (("lora_rank", 8), ("learning_rate", 5e-5), ("batch_size", BY_KEY["batch_size"].default)):
        # a value stated once for the whole experiment is a one-level grid: the runs table shows it
        if key not in ranges:
            grid.setdefault(key, [settings.pop(key, default)])
        settings.pop(key, None)
    seeds = settings.get("seeds", 1)
    if seeds > 1:
        if "seed" in grid:
            raise CkError("Seeds replicates every configuration over seeds; a varied Seed would be a factor too",
                          file=src, line=spec.line("seeds"), field="seeds",
                          hint="use one: Seeds N (replicates, averaged by the analysis) or --vary seed=... (a factor)")
        first = settings.pop("seed", BY_KEY["seed"].default)
        grid["seed"] = levels(BY_KEY["seed"], [first + i for i in range(seeds)], src, spec.line("seeds"), "seeds")
    for key in list(grid):
        if key not in ALWAYS_COLUMNS and len(grid[key]) == 1:
            settings[key] = grid.pop(key)[0]  # not varied: say it once in Configuration
    order = [k for k in ALWAYS_COLUMNS if k in grid] + [s.key for s in RUN_SETTINGS if s.key in grid and s.key not in ALWAYS_COLUMNS]
    total = len(spec.models)
    for k in order:
        total *= len(grid[k])
    if total > MAX_RUNS:
        raise CkError(f"the grid makes {total} runs (at most {MAX_RUNS})", file=src, field="grid")
    search = None
    if spec.search is not None:
        search = resolve_search(spec.search, src, spec.line, stated=settings, grid=grid, ranges=ranges,
                                models=len(spec.models))
        settings["epochs"] = search.rung_epochs[-1]
        if search.metric == "val_loss":
            settings["enable_validation"] = True
    base = {"epochs": 1, "num_gpus": 1, "system_prompt": "", "enable_validation": False}
    settings = {**base, **settings}
    if "batch_size" not in grid:  # searched: each trial's own
        settings.pop("batch_size", None)
    elif len(grid["batch_size"]) == 1:  # one batch size: said once in Configuration too
        settings["batch_size"] = grid["batch_size"][0]
    else:  # swept: the runs table says each run's; a Configuration value would contradict it
        settings.pop("batch_size", None)
    model_trainer, picked = _choose_trainers(spec, grid, settings)
    examples = examples_in_dataset(spec.dataset)
    calibrations = {path: calibrate(path, _measurement_dirs(spec), exclude=spec.experiment_dir or None)
                    for _, path in spec.models}
    runs: list[Run] = []
    if search is not None:  # the trials: sampled values, one run each (experiment/search_design.py)
        (model, path), = spec.models
        planned = [(model, path, name, combo, n) for n, (name, combo) in enumerate(trial_values(search, grid))]
    else:
        planned = [(model, path, _run_name(model, dict(zip(order, values)), grid), dict(zip(order, values)), None)
                   for (model, path), *values in itertools.product(spec.models if spec.finetune else [],
                                                                   *(grid[k] for k in order))]
    first_rung: list[float | None] = []
    for model, path, name, combo, trial in planned:
        if model_trainer.get(model):  # models that need different trainers: each run names its own
            combo["trainer"] = model_trainer[model]
        eff = {**settings, **combo}
        est = estimate_seconds(params=params_from_model(path, model), examples=examples,
                               epochs=eff["epochs"], batch_size=eff["batch_size"], gpus=eff["num_gpus"],
                               max_steps_per_epoch=eff.get("max_steps_per_epoch"), calibration=calibrations[path])
        runs.append(Run(name=name, model=model, type=RunType.FINETUNED,
                        settings=tuple(combo.items()), est_time=duration_estimate(est),
                        est_disk=size_estimate(_run_disk(path, eff)), trial=trial))
        if search is not None:  # the first rung's time, for the budget
            first_rung.append(estimate_seconds(
                params=params_from_model(path, model), examples=examples, epochs=search.rung_epochs[0],
                batch_size=eff["batch_size"], gpus=eff["num_gpus"],
                max_steps_per_epoch=eff.get("max_steps_per_epoch"), calibration=calibrations[path]))
    if search is not None:
        check_budget(search, first_rung, settings["num_gpus"] * settings.get("num_nodes", 1), src, spec.line)
    if spec.controls:
        for model, _ in spec.models:
            runs.append(Run(name=f"{model}_base", model=model, type=RunType.CONTROL, est_time="N/A",
                            est_disk="N/A"))
    for r in spec.eval_only:
        if r.name in {x.name for x in runs}:
            raise CkError(f"eval-only run {r.name!r} has the name of another run", file=src, line=spec.line("eval_only"),
                          field="eval_only")
        runs.append(r)
    names = [r.name for r in runs]
    for i, t in enumerate(spec.tasks):
        fld = f"tasks[{i}]" if src else "--task"
        if not SAFE_NAME.fullmatch(t.task) or ".." in t.task:
            raise CkError(f"unsafe task name {t.task[:60]!r}: use letters, digits, '.', '_', '+', '-'",
                          file=src, line=spec.line("tasks"), field=fld)
        for r in t.runs:
            if r not in names:
                raise CkError(f"task {t.task!r} names run {r!r}, which the grid does not make",
                              file=src, line=spec.line("tasks"), field=fld, hint="runs: " + ", ".join(names[:20]))
        for run in runs:
            if not run.finetuned or not t.applies_to(run.name) or t.epoch_spec:
                continue
            n = run.value("epochs") or settings["epochs"]
            for e in t.epochs:
                if e >= n:
                    raise CkError(f"task {t.task!r} evaluates epoch {e}, but training has only "
                                  f"{n} epoch(s) (epochs are numbered from 0)", file=src,
                                  line=spec.line("tasks"), field=fld)
    tasks = [replace(t, epochs=tuple(range(settings["epochs"])) if t.epoch_spec == "all" else
                     (settings["epochs"] - 1,) if t.epoch_spec == "last" else t.epochs) for t in spec.tasks]
    if search is not None:
        tasks = with_rung_evaluation(search, tasks, [r.name for r in runs if r.trial is not None],
                                     settings.get("eval_split", BY_KEY["eval_split"].default), src, spec.line)
    used = {dict(r.settings).get("trainer") or settings.get("trainer") or picked.get(r.model)
            for r in runs if r.finetuned}
    return Experiment(
        name=spec.name, experiment_dir=spec.experiment_dir, models=tuple(spec.models), dataset=spec.dataset,
        question=spec.question, settings=tuple(settings.items()), runs=tuple(runs), evaluations=tuple(tasks),
        tools=Tools(preparation=", ".join(t for t in TRAINERS if t in used) or TORCHTUNE), search=search,
    )


def _choose_trainers(spec: DesignSpec, grid: dict, settings: dict) -> tuple[dict[str, str], dict[str, str]]:
    """(model -> trainer its runs must name, model -> trainer ck picked). The plan's own trainer
    (varied or forced) is checked against each model: torchtune for a family it lacks, or an
    architecture neither trainer can train, is refused here. Where the plan names none, one is picked
    per model; a runs-table column names it only when the models need different ones."""
    src = spec.source
    picked: dict[str, str] = {}
    for model, path in spec.models:
        if "trainer" in grid:
            for t in grid["trainer"]:
                check_trainer(t, path, model, where=src, line=spec.line("grid", "trainer"))
        elif settings.get("trainer"):
            check_trainer(settings["trainer"], path, model, where=src, line=spec.line("trainer"))
        else:
            picked[model] = default_trainer(path, model, where=src, line=spec.line("models", model))
    return (dict(picked) if len(set(picked.values())) > 1 else {}), picked


def _run_disk(model_path: str, eff: dict) -> int | None:
    """Disk the run's output directory will take (experiment/disk.py), from its effective settings."""
    return planned_disk_bytes(model_path, lambda k: eff[k] if eff.get(k) is not None else BY_KEY[k].default)


def plan_summary(spec: DesignSpec) -> tuple[Experiment, str]:
    """The Experiment and the summary text, checked the way `ck scaffold` will read it."""
    from .parse import parse_summary_text
    from .render import render_summary

    exp = design_experiment(spec)
    text = render_summary(exp)
    back = parse_summary_text(text, "experiment_summary.md (about to be written)")
    if back != exp:  # a value the summary cannot carry exactly: refuse rather than write something else
        raise CkError("the plan does not read back as designed (a value the summary format cannot hold)",
                      field="ck design", hint="report this with the command you ran")
    run_directories(back, "experiment_summary.md (about to be written)")
    warnings = [f"task {ev.task!r}: script {ev.script!r} not found here; `ck scaffold` refuses until it exists "
                "(`ck task new` writes one)" for ev in back.evaluations
                if ev.script and Path(ev.script).is_absolute() and not Path(ev.script).is_file()]
    return replace(back, warnings=back.warnings + tuple(warnings)), text


def load_spec_file(path: str | Path) -> DesignSpec:
    from ..state.yaml_input import load_user_yaml

    p = Path(path)
    if not p.is_file():
        raise CkError("design spec not found", file=p)
    data, lines = load_user_yaml(p, "design spec")
    if not isinstance(data, dict):
        raise CkError("a design spec is a YAML mapping", file=p)
    spec = DesignSpec.from_dict(data, str(p), lines)
    base = p.parent.resolve()
    # relative paths in a spec are relative to the spec file, not to wherever ck was started
    spec.models = [(n, _resolve(base, m)) for n, m in spec.models]
    spec.dataset = _resolve(base, spec.dataset)
    spec.tasks = [replace(t, script=_resolve(base, t.script) if t.script else t.script) for t in spec.tasks]
    spec.eval_only = [replace(r, extra=tuple((k, _resolve(base, v)) for k, v in r.extra)) for r in spec.eval_only]
    return spec


def _resolve(base: Path, value: str) -> str:
    v = Path(value).expanduser()
    if v.is_absolute() or not (base / v).exists():
        return str(v)
    return str((base / v).resolve())
