"""`ck scaffold DIR [--only torchtune|inspect] [--dry-run] [--json]` (scaffold-experiment).

DIR may also be one run directory (it holds setup_finetune.yaml, no experiment_summary.md): then
only that run's finetune.yaml + finetune.slurm are rewritten from its (hand-edited)
setup_finetune.yaml, as tools/torchtune/setup_finetune.py does inside a checkout."""
from __future__ import annotations

import sys
from pathlib import Path

from ._common import emit_json, experiment_dir, warn
from ..state import layout


def register(sub) -> None:
    p = sub.add_parser("scaffold", help="generate run dirs, torchtune configs, .slurm and eval scripts",
                       description="scaffold-experiment: scaffold-torchtune then scaffold-inspect.")
    p.add_argument("dir", metavar="DIR", help="experiment directory (holds experiment_summary.md), or one run "
                                              "directory: rewrite its finetune.yaml/.slurm from setup_finetune.yaml")
    p.add_argument("--only", choices=("torchtune", "inspect"), help="run one worker only")
    p.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    p.add_argument("--config", help="claude.local.md to use (default: searched)")
    p.add_argument("--force", action="store_true",
                   help="overwrite setup_finetune.yaml files edited by hand when the plan changed too")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..scaffold.orchestrator import scaffold_experiment

    from ..errors import CkError

    run_dir = Path(args.dir).expanduser()
    if (run_dir / layout.SETUP).is_file() and not (run_dir / layout.SUMMARY).exists():
        return _one_run(run_dir.resolve(), args)
    try:
        report = scaffold_experiment(experiment_dir(args.dir), only=args.only, dry_run=args.dry_run,
                                     config=args.config, force=args.force)
    except OSError as exc:  # read-only directory, full disk …: a message naming the file, never a traceback
        raise CkError(f"cannot write: {exc.strerror}", file=exc.filename or args.dir) from None
    if args.json:
        emit_json(report.to_dict())
    else:
        for w in report.warnings:
            warn(w)
        if report.failures and not report.written and not args.dry_run:
            print(f"Nothing written: fix these first ({report.experiment_dir})", file=sys.stderr)
            for r in report.failures:
                print(f"  ERR {r.directory}/: {r.error}", file=sys.stderr)
            return 2
        verb = "Would scaffold" if args.dry_run else "Scaffolded"
        print(f"{verb} {report.experiment} in {report.experiment_dir}")
        for label, results in (("fine-tuning (scaffold-torchtune)", report.torchtune),
                               ("evaluation (scaffold-inspect)", report.inspect)):
            if not results:
                continue
            print(f"\n{label}: {sum(r.ok for r in results)}/{len(results)} ok")
            for r in results:
                changed = [f for f in r.files if f.status != "unchanged"]
                mark = "ok " if r.ok else "ERR"
                detail = ", ".join(f"{Path(f.path).name} {f.status}" for f in changed) or "unchanged"
                print(f"  {mark} {r.directory}/: {detail if r.ok else r.error}")
        if not args.dry_run:
            print(f"\nLogs: scaffold-experiment.log, scaffold-torchtune.log, scaffold-inspect.log\nNext: ck run {report.experiment_dir}")
    return 2 if report.failures else 0


def _one_run(run_dir: Path, args) -> int:
    from ..scaffold.torchtune_worker import generate_from_setup

    changes = generate_from_setup(run_dir, dry_run=args.dry_run)
    if args.json:
        emit_json({"run_dir": str(run_dir), "dry_run": args.dry_run, "ok": True,
                   "files": [{"path": c.path, "status": c.status} for c in changes]})
    else:
        for c in changes:
            print(f"{Path(c.path).name}: {c.status}")
    return 0
