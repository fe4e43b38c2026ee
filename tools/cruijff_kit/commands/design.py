"""`ck design DIR …` (design-experiment): a compact spec -> experiment_summary.md + design-experiment.log.

Either `--spec spec.yaml` or flags; flags override the spec's values.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import CkError
from ._common import emit_json, warn
from ..state import layout


def _csv(cast):
    def parse(text: str):
        items = text.split(",")
        if any(not x.strip() for x in items):  # `4,,8` or `8,`: a value the user meant is missing
            import argparse

            raise argparse.ArgumentTypeError(f"an empty item in {text!r}: write e.g. 8,16")
        try:
            return [cast(x) for x in items]
        except ValueError:
            import argparse

            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    return parse


def register(sub) -> None:
    p = sub.add_parser("design", help="write experiment_summary.md from a compact spec",
                       description="design-experiment: models x LoRA ranks x learning rates x batch sizes x any --vary (+ controls).")
    p.add_argument("dir", metavar="DIR", help="experiment directory to create / write into")
    p.add_argument("--spec", help="YAML spec (name, models, dataset, grid, controls, tasks, epochs, gpus)")
    p.add_argument("--name", help="experiment name (default: the directory name)")
    p.add_argument("--model", action="append", metavar="NAME=PATH", help="a model (repeatable)")
    p.add_argument("--dataset", help="training data (.json or .parquet)")
    p.add_argument("--ranks", type=_csv(int), metavar="8,16", help="LoRA ranks")
    p.add_argument("--lrs", type=_csv(float), metavar="1e-5,5e-5", help="learning rates")
    p.add_argument("--batch-sizes", type=_csv(int), metavar="4", help="batch sizes")
    p.add_argument("--vary", action="append", metavar="SETTING=V1,V2", default=[],
                   help="vary any training setting, e.g. 'LoRA dropout=0,0.1' or 'seed=1,2,3'; with --search also a "
                        "range 'Learning rate=1e-5..1e-3:log' or 'LoRA rank=4..32' (repeatable; "
                        "names: skills/scaffold-torchtune/references/setup-fields.md)")
    g = p.add_argument_group("search (trials sampled from the --vary space, pruned at rung epochs)")
    g.add_argument("--search", metavar="asha|tpe", help="search instead of a grid: asha (random trials, successive "
                   "halving) or tpe (Optuna's TPE sampler)")
    g.add_argument("--trials", type=int, metavar="N", help="trials the search samples")
    g.add_argument("--rungs", type=int, metavar="R", help="rungs (default 3)")
    g.add_argument("--reduction-factor", type=int, metavar="ETA", help="1/ETA of the trials go on at each rung (default 3)")
    g.add_argument("--rung-epochs", metavar="1,3,9", help="epochs trained when each rung decides (default ETA**k; "
                   "the last is the plan's epochs)")
    g.add_argument("--metric", metavar="val_loss|TASK:METRIC", help="what decides: val_loss (default) or a task's "
                   "metric on the validation split, e.g. capitalization:accuracy")
    g.add_argument("--direction", metavar="minimize|maximize", help="default: minimize a loss or error, maximize others")
    g.add_argument("--budget-gpu-hours", type=float, metavar="H", help="GPU-hours the search may spend")
    g.add_argument("--seed", type=int, metavar="S", help="the search's sampler seed (not the training seed; default 0)")
    p.add_argument("--task", action="append", metavar="NAME=SCRIPT[@EPOCHS]",
                   help="evaluation task, e.g. capitalization=tasks/cap.py@0,1 or …@all or …@last "
                        "(epochs 0-based; repeatable)")
    p.add_argument("--add-task", action="append", default=[], metavar="NAME=SCRIPT@EPOCHS[:RUN,RUN]",
                   help="follow-up: add a task to DIR's existing plan, evaluated only on these runs (plan or "
                        "directory names; default all) and epochs (default last); nothing is retrained "
                        "(then: ck scaffold DIR --only inspect; ck run DIR --only inspect) (repeatable)")
    p.add_argument("--eval-only", action="append", metavar="NAME=MODEL[@CHECKPOINT]", default=[],
                   help="a run that only evaluates: MODEL (a --model name) as it is, or CHECKPOINT (an HF model "
                        "directory, or a torchtune adapter directory whose base is MODEL) (repeatable)")
    p.add_argument("--question", help="the question the experiment answers (report.md opens with its answer)")
    p.add_argument("--seeds", type=int, metavar="N",
                   help="train every configuration once per seed (Seed, Seed+1, ...); analysis averages over them")
    p.add_argument("--epochs", type=int)
    p.add_argument("--gpus", type=int)
    p.add_argument("--no-control", action="store_true", help="no base-model control run")
    p.add_argument("--system-prompt")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="a Configuration setting, e.g. 'Warmup steps=20' or 'Evaluation split=validation' (repeatable)")
    p.add_argument("--force", action="store_true", help="overwrite an existing experiment_summary.md")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def _split_pair(text: str, flag: str) -> tuple[str, str]:
    if "=" not in text:
        raise CkError(f"expected NAME=VALUE, got {text!r}", field=flag)
    a, b = text.split("=", 1)
    return a.strip(), b.strip()


SEARCH_FLAGS = ("trials", "rungs", "reduction_factor", "rung_epochs", "metric", "direction", "budget_gpu_hours", "seed")


def _search_flags(args, spec) -> None:
    """--search and its fields, over the spec file's `search:` (flags win)."""
    given = {k: getattr(args, k) for k in SEARCH_FLAGS if getattr(args, k) is not None}
    if args.search is not None:
        spec.search = {**(spec.search or {}), "algorithm": args.search}
    if given and spec.search is None:
        flag = "--" + next(iter(given)).replace("_", "-")
        raise CkError(f"{flag} belongs to a search, and there is none", field=flag, hint="add --search asha|tpe")
    if spec.search is not None:
        spec.search.update(given)
        spec.finetune = True


def build_spec(args):
    from ..experiment.design import (DesignSpec, coerce, grid_setting, levels, load_spec_file,
                                     parse_epochs_value)
    from ..experiment.search import is_range, parse_range
    from ..experiment.model import Evaluation
    from ..settings import BY_KEY, lookup, suggest

    if args.spec:
        spec = load_spec_file(args.spec)
    else:
        missing = [f for f, v in (("--model", args.model), ("--dataset", args.dataset)) if not v]
        if missing:
            raise CkError(f"missing {' and '.join(missing)} (or give --spec FILE)", field="ck design")
        spec = DesignSpec(name=args.name or Path(args.dir).resolve().name, models=[], dataset="")
    if args.name:
        spec.name = args.name
    if args.model:
        spec.models = [_split_pair(m, "--model") for m in args.model]
        spec.models = [(n, str(Path(p).expanduser().resolve()) if Path(p).expanduser().exists() else p)
                       for n, p in spec.models]
    if args.dataset:
        d = Path(args.dataset).expanduser()
        spec.dataset = str(d.resolve()) if d.exists() else args.dataset
    for key, flag, val in (("lora_rank", "--ranks", args.ranks), ("learning_rate", "--lrs", args.lrs),
                           ("batch_size", "--batch-sizes", args.batch_sizes)):
        if val is not None:
            spec.grid[key] = levels(BY_KEY[key], val, None, None, flag)
    flagged = {k for k, v in (("lora_rank", args.ranks), ("learning_rate", args.lrs),
                              ("batch_size", args.batch_sizes)) if v is not None}
    _search_flags(args, spec)
    for item in args.vary:
        name, values = _split_pair(item, "--vary")
        s = grid_setting(name, None, None)
        if is_range(values):
            if spec.search is None:
                raise CkError(f"a range {values!r} is a search space, and there is no search", field=f"--vary {name}",
                              hint="add --search asha|tpe --trials N, or give levels (e.g. 8,16) for a grid")
            spec.grid[s.key] = parse_range(s, values, None, None, f"--vary {name}")
            continue
        if any(not v.strip() for v in values.split(",")):
            raise CkError(f"an empty item in {values!r}", field=f"--vary {name}", hint="write e.g. seed=1,2,3")
        got = levels(s, values.split(","), None, None, f"--vary {name}")
        if s.key in flagged and got != spec.grid[s.key]:
            flag = {"lora_rank": "--ranks", "learning_rate": "--lrs", "batch_size": "--batch-sizes"}[s.key]
            raise CkError(f"{flag} and --vary {name} give different {s.name} levels", field=f"--vary {name}",
                          hint=f"give the levels once (either {flag} or --vary)")
        spec.grid[s.key] = got
    if flagged or args.vary:
        spec.finetune = True  # a grid on the command line is training asked for
    for key, flag, val in (("epochs", "--epochs", args.epochs), ("num_gpus", "--gpus", args.gpus),
                           ("seeds", "--seeds", args.seeds),
                           ("system_prompt", "--system-prompt", args.system_prompt)):
        if val is not None:
            spec.settings[key] = coerce(BY_KEY[key], val, None, None, flag)
    if args.question is not None:
        spec.question = args.question
    if args.eval_only:
        from ..experiment.eval_only import runs_from_spec

        entries = {}
        for item in args.eval_only:
            name, rest = _split_pair(item, "--eval-only")
            model, _, ckpt = rest.partition("@")
            c = Path(ckpt).expanduser() if ckpt else None
            entries[name] = {"model": model, **({"checkpoint": str(c.resolve() if c.exists() else c)} if c else {})}
        spec.eval_only = runs_from_spec(entries, None, None, [m for m, _ in spec.models], "--eval-only")
        # evaluation only, unless a grid was asked for (flags or the spec file): no default rank8_lr5e-5 run
        asked = flagged or args.vary or (args.spec and spec.grid_stated) or any(
            (lookup(_split_pair(i, "--set")[0]) or BY_KEY["epochs"]).key in ("lora_rank", "learning_rate")
            for i in args.set)
        spec.finetune = bool(asked)
    if args.no_control:
        spec.controls = False
    if args.task:
        tasks = []
        for t in args.task:
            name, rest = _split_pair(t, "--task")
            script, _, epochs = rest.partition("@")
            epochs, _, runs = epochs.partition(":")  # …@EPOCHS:RUN1,RUN2: only these runs
            ep, word = parse_epochs_value(epochs, None, None, "--task") if epochs else ((0,), "")
            names = [r.strip() for r in runs.split(",")] if runs.strip() else []
            if any(not r for r in names):
                raise CkError(f"an empty run name in {runs!r}", field="--task")
            s = Path(script).expanduser()
            tasks.append(Evaluation(task=name, script=str(s.resolve()) if s.exists() else script, epochs=ep,
                                    epoch_spec=word, runs=tuple(names)))
        spec.tasks = tasks
    for item in args.set:
        key, value = _split_pair(item, "--set")
        if key.strip().lower() == "question":  # the original layout's **Question:** line, as --question
            spec.question = value
            continue
        s = lookup(key)
        if s is None:
            near = suggest(key)
            raise CkError(f"unknown setting {key[:60]!r}", field="--set",
                          hint=(f"did you mean {near!r}? " if near else "")
                          + "settings: skills/scaffold-torchtune/references/setup-fields.md")
        if s.per_run and s.key in ("lora_rank", "learning_rate", "batch_size"):
            spec.grid[s.key] = [coerce(s, value, None, None, f"--set {key}")]
        else:
            spec.settings[s.key] = coerce(s, value, None, None, f"--set {key}")
    return spec


def measured_advice(exp) -> list:
    """A planned run whose cell (model, dataset bytes, training settings) the results store already
    holds results for: said, never refused (a repeat may be the point)."""
    from ..analyze.store import already_measured
    from ..experiment.warnings import DesignWarning

    try:
        found = already_measured(exp)
    except CkError as exc:  # an unreadable store must not stop a design
        return [DesignWarning("results_store", f"results store not consulted: {exc}")]
    return [DesignWarning("already_measured", f"run {run} has results already in the results store: "
                          f"{', '.join(hits[:3])}{' …' if len(hits) > 3 else ''} (`ck results` shows them)", run)
            for run, hits in found.items()]


def run(args) -> int:
    from ..experiment.design import plan_summary
    from ..experiment.search import dimension_text
    from ..util.fs import atomic_write_text
    from ..util.log import ActionLog

    exp_dir = Path(args.dir).expanduser().resolve()
    summary = exp_dir / layout.SUMMARY
    if args.add_task:
        return add_tasks(args, exp_dir, summary)
    if summary.exists() and not args.force:
        raise CkError("experiment_summary.md already exists", file=summary,
                      hint="pass --force to overwrite it (its Status section will be lost)")
    spec = build_spec(args)
    spec.experiment_dir = str(exp_dir)
    exp, text = plan_summary(spec)  # everything checked before the first byte is written
    from ..experiment.disk import disk_by_run
    from ..experiment.warnings import design_warnings, missing_paths, steps_by_run
    from ..util.formats import size_estimate as format_size

    # paths that do not exist here first, then evaluation split overlap / size, warmup share of the steps
    advice = missing_paths(exp, exp_dir) + design_warnings(exp)
    advice += measured_advice(exp)
    disk = disk_by_run(exp)
    known = [b for b in disk.values() if b is not None]
    try:
        exp_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(summary, text)
        log = ActionLog(exp_dir / "design-experiment.log")
        log.write(
            "DESIGN_EXPERIMENT", f"Planned {exp.name}",
            details=f"models={', '.join(m for m, _ in exp.models)}; "
                    + "; ".join(f"{k}={v if isinstance(v, list) else dimension_text(v)}" for k, v in spec.grid.items())
                    + f"; epochs={exp.epochs}; gpus={exp.gpus}; controls={spec.controls}"
                    # every --set / Configuration value: a --force redesign must not look identical
                    + "".join(f"; {k}={v!r}" for k, v in sorted(spec.settings.items()))
                    + (f"; search={exp.search.algorithm} trials={exp.search.trials} rung_epochs="
                       f"{','.join(map(str, exp.search.rung_epochs))} metric={exp.search.metric} seed={exp.search.seed}"
                       if exp.search else ""),
            result=f"{len(exp.finetuned_runs)} fine-tuned run(s), {len(exp.control_runs)} control(s), "
                   f"{len(exp.evaluations)} task(s) -> {summary}")
        for w in advice:
            log.write("DESIGN_WARNING", w.code, details=w.message)
    except OSError as exc:  # read-only directory, a file in the way …: named, never a traceback
        raise CkError(f"cannot write: {exc.strerror}", file=exc.filename or exp_dir) from None
    if args.json:
        emit_json({"experiment": exp.name, "summary": str(summary), "runs": [r.name for r in exp.runs],
                   "finetuned": len(exp.finetuned_runs), "controls": len(exp.control_runs),
                   "eval_only": len(exp.eval_only_runs), "steps": steps_by_run(exp),
                   "disk": disk, "disk_total": sum(known) if known and len(known) == len(disk) else None,
                   "warnings": [{"code": "plan", "message": w} for w in exp.warnings]
                               + [w.as_dict() for w in advice]})
    else:
        for w in exp.warnings:
            warn(w)
        for w in advice:
            warn(w.message)
        print(f"Wrote {summary}: {len(exp.finetuned_runs)} fine-tuned run(s), {len(exp.control_runs)} control(s)"
              + (f", {len(exp.eval_only_runs)} eval-only run(s)" if exp.eval_only_runs else ""))
        if disk:
            if len(known) == len(disk):
                print(f"Checkpoints on disk when training ends: {format_size(sum(known))} in all "
                      "(Est. Disk per run in the runs table)")
            else:
                print(f"Checkpoints on disk when training ends: unknown for {len(disk) - len(known)} run(s), "
                      "whose model's config.json is not readable here" + (
                          f"; {format_size(sum(known))} for the others" if known else ""))
        print(f"Next: ck scaffold {exp_dir}")
    return 0


PLAN_FLAGS = ("spec", "name", "model", "dataset", "ranks", "lrs", "batch_sizes", "task", "question", "epochs",
              "gpus", "system_prompt", "search") + SEARCH_FLAGS


def add_tasks(args, exp_dir: Path, summary: Path) -> int:
    """`ck design EXP --add-task NAME=SCRIPT@EPOCHS:RUNS`: the follow-up evaluation (experiment/follow_up.py)."""
    from ..experiment.design import parse_epochs_value
    from ..experiment.follow_up import added_evaluation, with_evaluations
    from ..experiment.parse import load_experiment, parse_summary_text
    from ..experiment.render import render_summary
    from ..util.fs import atomic_write_text
    from ..util.log import ActionLog

    given = [f"--{f.replace('_', '-')}" for f in PLAN_FLAGS if getattr(args, f, None)]
    given += [flag for flag, v in (("--vary", args.vary), ("--set", args.set), ("--eval-only", args.eval_only),
                                   ("--no-control", args.no_control), ("--force", args.force)) if v]
    if given:
        raise CkError(f"--add-task adds to the existing plan; {', '.join(given)} would redesign it", field="--add-task",
                      hint="run the --add-task call on its own (or redesign with --force, which retrains changed runs)")
    if not summary.is_file():
        raise CkError("no plan to add to", file=summary, field="--add-task", hint="design the experiment first")
    exp = load_experiment(summary)
    new = [added_evaluation(exp, item, exp_dir, parse_epochs_value, str(summary)) for item in args.add_task]
    names = [e.task for e in new]
    if len(set(names)) != len(names):
        raise CkError("the same task is added twice", field="--add-task")
    text = render_summary(with_evaluations(exp, new))
    parse_summary_text(text, str(summary))  # the plan as written must read back (nothing written otherwise)
    try:
        atomic_write_text(summary, text)
        ActionLog(exp_dir / "design-experiment.log").write(
            "ADD_TASK", f"Added {', '.join(names)} to {exp.name}",
            details="; ".join(f"{e.task}: {e.script} epochs {e.epoch_spec or ', '.join(map(str, e.epochs))} runs "
                              f"{', '.join(e.runs) or 'all'}" for e in new),
            result=f"{len(new)} task(s) added; no training changed -> {summary}")
    except OSError as exc:
        raise CkError(f"cannot write: {exc.strerror}", file=exc.filename or exp_dir) from None
    nxt = [f"ck scaffold {exp_dir} --only inspect", f"ck run {exp_dir} --only inspect"]
    from ..experiment.disk import disk_by_run
    from ..experiment.warnings import missing_paths, steps_by_run

    changed = with_evaluations(exp, new)
    advice = [w for w in missing_paths(changed, exp_dir) if w.code == "task_missing"]
    if args.json:
        disk = disk_by_run(changed)
        known = [b for b in disk.values() if b is not None]
        emit_json({"experiment": exp.name, "summary": str(summary), "runs": [r.name for r in exp.runs],
                   "finetuned": len(exp.finetuned_runs), "controls": len(exp.control_runs),
                   "eval_only": len(exp.eval_only_runs), "steps": steps_by_run(changed), "disk": disk,
                   "disk_total": sum(known) if known and len(known) == len(disk) else None,
                   "warnings": [w.as_dict() for w in advice],
                   "added": [{"task": e.task, "script": e.script, "epochs": e.epoch_spec or list(e.epochs),
                              "runs": list(e.runs)} for e in new], "next": nxt})
        return 0
    for w in advice:
        warn(w.message)
    for e in new:
        print(f"Added task {e.task} ({e.script}) for runs {', '.join(e.runs) or 'all'}, epochs "
              f"{e.epoch_spec or ', '.join(map(str, e.epochs))}: nothing is retrained")
    print("Next: " + "; ".join(nxt))
    return 0
