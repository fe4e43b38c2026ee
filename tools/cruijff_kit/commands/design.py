"""`ck design DIR …` (design-experiment): a compact spec -> experiment_summary.md + design-experiment.log.

Either `--spec spec.yaml` or flags; flags override the spec's values.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import CkError
from ._common import emit_json, warn


def _csv(cast):
    def parse(text: str):
        try:
            return [cast(x) for x in text.split(",") if x.strip()]
        except ValueError:
            import argparse

            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    return parse


def register(sub) -> None:
    p = sub.add_parser("design", help="write experiment_summary.md from a compact spec",
                       description="design-experiment: models x LoRA ranks x learning rates x batch sizes (+ controls).")
    p.add_argument("dir", metavar="DIR", help="experiment directory to create / write into")
    p.add_argument("--spec", help="YAML spec (name, models, dataset, grid, controls, tasks, epochs, gpus)")
    p.add_argument("--name", help="experiment name (default: the directory name)")
    p.add_argument("--model", action="append", metavar="NAME=PATH", help="a model (repeatable)")
    p.add_argument("--dataset", help="training data (.json or .parquet)")
    p.add_argument("--ranks", type=_csv(int), metavar="8,16", help="LoRA ranks")
    p.add_argument("--lrs", type=_csv(float), metavar="1e-5,5e-5", help="learning rates")
    p.add_argument("--batch-sizes", type=_csv(int), metavar="4", help="batch sizes")
    p.add_argument("--task", action="append", metavar="NAME=SCRIPT[@EPOCHS]",
                   help="evaluation task, e.g. capitalization=tasks/cap.py@0,1 (repeatable)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--gpus", type=int)
    p.add_argument("--no-control", action="store_true", help="no base-model control run")
    p.add_argument("--system-prompt")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="extra Configuration line, e.g. 'Evaluation split=train' (repeatable)")
    p.add_argument("--force", action="store_true", help="overwrite an existing experiment_summary.md")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def _split_pair(text: str, flag: str) -> tuple[str, str]:
    if "=" not in text:
        raise CkError(f"expected NAME=VALUE, got {text!r}", field=flag)
    a, b = text.split("=", 1)
    return a.strip(), b.strip()


def build_spec(args):
    from ..experiment.design import DesignSpec, load_spec_file

    if args.spec:
        spec = load_spec_file(args.spec)
    else:
        missing = [f for f, v in (("--model", args.model), ("--dataset", args.dataset)) if not v]
        if missing:
            raise CkError(f"missing {' and '.join(missing)} (or give --spec FILE)", field="ck design")
        spec = DesignSpec(name=args.name or Path(args.dir).resolve().name, models=[], dataset="",
                          lora_ranks=[8], learning_rates=[5e-5])
    if args.name:
        spec.name = args.name
    if args.model:
        spec.models = [_split_pair(m, "--model") for m in args.model]
        spec.models = [(n, str(Path(p).expanduser().resolve()) if Path(p).expanduser().exists() else p)
                       for n, p in spec.models]
    if args.dataset:
        d = Path(args.dataset).expanduser()
        spec.dataset = str(d.resolve()) if d.exists() else args.dataset
    for attr, val in (("lora_ranks", args.ranks), ("learning_rates", args.lrs), ("batch_sizes", args.batch_sizes),
                      ("epochs", args.epochs), ("gpus", args.gpus), ("system_prompt", args.system_prompt)):
        if val is not None:
            setattr(spec, attr, val)
    if args.no_control:
        spec.controls = False
    if args.task:
        tasks = []
        for t in args.task:
            name, rest = _split_pair(t, "--task")
            script, _, epochs = rest.partition("@")
            try:
                ep = tuple(int(e) for e in epochs.split(",")) if epochs else (0,)
            except ValueError:
                raise CkError(f"epochs after '@' must be numbers, got {epochs!r}", field="--task") from None
            s = Path(script).expanduser()
            tasks.append((name, str(s.resolve()) if s.exists() else script, ep))
        spec.tasks = tasks
    for item in args.set:
        spec.config_extra.append(_split_pair(item, "--set"))
    return spec


def run(args) -> int:
    from ..experiment.design import design_experiment
    from ..experiment.render import render_summary
    from ..util.fs import atomic_write_text
    from ..util.log import ActionLog

    exp_dir = Path(args.dir).expanduser().resolve()
    summary = exp_dir / "experiment_summary.md"
    if summary.exists() and not args.force:
        raise CkError("experiment_summary.md already exists", file=summary,
                      hint="pass --force to overwrite it (its Status section will be lost)")
    spec = build_spec(args)
    spec.experiment_dir = str(exp_dir)
    exp = design_experiment(spec)
    text = render_summary(exp)
    exp_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(summary, text)
    log = ActionLog(exp_dir / "design-experiment.log")
    log.write("DESIGN_EXPERIMENT", f"Planned {exp.name}",
              details=f"models={', '.join(m for m, _ in exp.models)}; ranks={spec.lora_ranks}; "
                      f"lrs={spec.learning_rates}; batch_sizes={spec.batch_sizes}; epochs={exp.epochs}; "
                      f"gpus={exp.gpus}; controls={spec.controls}",
              result=f"{len(exp.finetuned_runs)} fine-tuned run(s), {len(exp.control_runs)} control(s), "
                     f"{len(exp.evaluations)} task(s) -> {summary}")
    from ..experiment.warnings import design_warnings, steps_by_run

    warnings = design_warnings(exp)
    for w in warnings:
        log.write("DESIGN_WARNING", w.code, details=w.message)
    if args.json:
        emit_json({"experiment": exp.name, "summary": str(summary), "runs": [r.name for r in exp.runs],
                   "finetuned": len(exp.finetuned_runs), "controls": len(exp.control_runs),
                   "steps": steps_by_run(exp), "warnings": [w.as_dict() for w in warnings]})
    else:
        for w in warnings:
            warn(w.message)
        print(f"Wrote {summary}: {len(exp.finetuned_runs)} fine-tuned run(s), {len(exp.control_runs)} control(s)")
        print(f"Next: ck scaffold {exp_dir}")
    return 0
