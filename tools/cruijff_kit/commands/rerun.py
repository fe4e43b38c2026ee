"""`ck rerun EXP RUN [NEW_EXP] [--json]`: a new experiment that repeats one run's cell exactly.

The cell is what the run trained with - its own setup_finetune.yaml (model checkpoint, dataset,
every training setting, seed included), not the plan, which may have been edited since - and
the evaluations the plan gave it. No control run (the original experiment has one). Then
`ck scaffold NEW_EXP` and `ck run NEW_EXP` as usual; `ck compare EXP NEW_EXP` after analysis.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import CkError
from ..state import layout
from ..state.yaml_input import read_mapping
from ._common import emit_json


def register(sub) -> None:
    p = sub.add_parser("rerun", help="a new experiment that repeats one run exactly",
                       description="Write NEW_EXP/experiment_summary.md: one fine-tuned run with exactly the model, "
                                   "dataset and settings RUN of EXP trained with (its setup_finetune.yaml), and the "
                                   "tasks the plan evaluated it on.")
    p.add_argument("exp", metavar="EXP", help="the experiment directory")
    p.add_argument("run", metavar="RUN", help="run name or directory")
    p.add_argument("new", metavar="NEW_EXP", nargs="?", help="where to write it (default: EXP_rerun_RUN beside EXP)")
    p.add_argument("--force", action="store_true", help="overwrite an existing experiment_summary.md")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def rerun_spec(exp_dir: Path, run_name: str):
    from ..experiment.design import ALWAYS_COLUMNS, DesignSpec
    from ..experiment.naming import run_directories
    from ..experiment.parse import load_experiment
    from ..settings import PLAN_SETTINGS, RUN_SETTINGS, TRAINING

    summary = exp_dir / "experiment_summary.md"
    exp = load_experiment(summary)
    dirs = run_directories(exp, str(summary))
    by_dir = {d: n for n, d in dirs.items()}
    name = run_name if run_name in dirs else by_dir.get(run_name)
    run = next((r for r in exp.runs if r.name == name), None)
    if run is None or not run.finetuned:
        raise CkError(f"no fine-tuned run {run_name!r} in this experiment", file=summary, field="RUN",
                      hint="runs: " + ", ".join(r.name for r in exp.runs if r.finetuned))
    setup_path = layout.setup_path(exp_dir / dirs[name])
    if not setup_path.is_file():
        raise CkError("cannot read what the run trained with (no setup file)", file=setup_path,
                      hint="a run is repeatable once scaffolded: `ck scaffold EXP`")
    setup = read_mapping(setup_path)  # CkError with file and line when it does not parse
    trained = {s.key: setup[s.key] for s in RUN_SETTINGS if setup.get(s.key) is not None}
    grid = {k: [trained.pop(k)] for k in ALWAYS_COLUMNS if k in trained}
    # evaluation and output settings are the plan's (they are not part of what was trained)
    planned = {k: v for k, v in exp.settings if v is not None and next(
        (s for s in PLAN_SETTINGS if s.key == k and s.group != TRAINING), None) is not None}
    tasks = [ev for ev in exp.evaluations if ev.applies_to(name)]
    from dataclasses import replace

    spec = DesignSpec(name="", models=[(run.model, str(setup.get("model_checkpoint") or exp.model_path(run.model)))],
                      dataset=str(setup.get("dataset") or exp.dataset), grid=grid, controls=False,
                      tasks=[replace(t, runs=()) for t in tasks], settings={**planned, **trained},
                      question=f"Does {name} of {exp.name} reproduce?")
    return exp, name, spec


def run(args) -> int:
    from ..experiment.design import plan_summary
    from ..util.fs import atomic_write_text
    from ..util.log import ActionLog
    from ._common import experiment_dir
    from .design import measured_advice

    exp_dir = experiment_dir(args.exp)
    exp, name, spec = rerun_spec(exp_dir, args.run)
    new = Path(args.new).expanduser().resolve() if args.new else exp_dir.parent / f"{exp_dir.name}_rerun_{name}"
    summary = new / "experiment_summary.md"
    if summary.exists() and not args.force:
        raise CkError("experiment_summary.md already exists", file=summary, hint="pass --force to overwrite it")
    spec.name, spec.experiment_dir = new.name, str(new)
    plan, text = plan_summary(spec)
    advice = measured_advice(plan)
    try:
        new.mkdir(parents=True, exist_ok=True)
        atomic_write_text(summary, text)
        ActionLog(new / "design-experiment.log").write(
            "RERUN", f"Repeat {name} of {exp_dir}", details="; ".join(f"{k}={v!r}" for k, v in sorted(
                {**spec.settings, **{k: v[0] for k, v in spec.grid.items()}}.items())),
            result=f"1 fine-tuned run, {len(plan.evaluations)} task(s) -> {summary}")
    except OSError as exc:
        raise CkError(f"cannot write: {exc.strerror}", file=exc.filename or new) from None
    [again] = plan.finetuned_runs
    if args.json:
        emit_json({"experiment": plan.name, "summary": str(summary), "source": str(exp_dir), "run": name,
                   "repeat": again.name, "settings": {**spec.settings, **{k: v[0] for k, v in spec.grid.items()}},
                   "already_measured": [w.message for w in advice if w.code == "already_measured"]})
    else:
        print(f"Wrote {summary}: {again.name} repeats {name} of {exp_dir} (the values it trained with)")
        for w in advice:
            print(f"note: {w.message}")
        print(f"Next: ck scaffold {new}")
    return 0
