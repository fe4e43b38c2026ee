"""`ck setup [--yes] [--force] [--out PATH] [--json]`: write claude.local.md from what it detects."""
from __future__ import annotations

import sys

from ._common import emit_json


def register(sub) -> None:
    p = sub.add_parser("setup", help="write claude.local.md from what this machine and cluster reveal",
                       description="Detect SLURM partitions, accounts and GPU types, conda envs or the "
                                   "active venv, GPUs and scratch directories; ask only for the rest "
                                   "(never with --yes or without a terminal); write claude.local.md. "
                                   "An existing file is kept unless --force.")
    p.add_argument("--yes", "-y", action="store_true", help="take the detected defaults; ask nothing")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.add_argument("--out", metavar="PATH", default="claude.local.md",
                   help="where to write (default: ./claude.local.md)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="a value given up front (repeatable), e.g. slurm_account=my-lab; not asked")
    p.add_argument("--json", action="store_true",
                   help="what was detected, written, and defaulted without asking, as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..setup.write import parse_sets, setup

    interactive = not args.yes and sys.stdin.isatty()
    result = setup(args.out, force=args.force, interactive=interactive, overrides=parse_sets(args.set))
    if args.json:
        emit_json(result.to_dict())
        return 0
    print(f"wrote {result.path}")
    for key, value in result.values.items():
        if value:
            print(f"  {key}: {value}")
    for note in result.detected.notes:
        print(f"  note: {note}")
    for q in result.defaulted:
        print(f"  not detected, default taken: {q.key} = {q.default or '(empty)'}  ({q.prompt}; "
              f"`--set {q.key}=…` or edit the file)")
    print(f"next: ck doctor --config {result.path}")
    return 0
