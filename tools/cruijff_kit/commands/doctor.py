"""`ck doctor [DIR] [--config PATH] [--json]`: environment checks, each with its fix.

Exit 0 when every check passed, 1 when some failed (environment problems), 2 for bad input
(DIR without experiment_summary.md, --config that does not exist)."""
from __future__ import annotations

from ._common import emit_json


def register(sub) -> None:
    p = sub.add_parser("doctor", help="check versions, claude.local.md, SLURM/sacct, GPUs, paths, wandb",
                       description="Check the environment: pinned package versions, claude.local.md, "
                                   "SLURM and sacct, GPUs, an experiment's model and dataset paths (DIR), "
                                   "wandb. Each failure comes with its fix. Exit 1 when a check fails.")
    p.add_argument("dir", metavar="DIR", nargs="?",
                   help="experiment directory: also check its model and dataset paths")
    p.add_argument("--config", metavar="PATH", help="claude.local.md to check (default: searched)")
    p.add_argument("--json", action="store_true", help="{ok, failed, checks: [{name, ok, detail, fix, info}]}")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..doctor import run_checks

    checks = _on_demand_ml_stack(run_checks(args.dir, args.config))
    failed = [c for c in checks if not c.ok]
    if args.json:
        emit_json({"ok": not failed, "failed": len(failed), "checks": [c.to_dict() for c in checks]})
    else:
        for c in checks:
            mark = "ok  " if c.ok and not c.info else ("info" if c.ok else "FAIL")
            print(f"{mark}  {c.name}: {c.detail}")
            if c.fix and (not c.ok or c.info):
                print(f"      fix: {c.fix}")
        print(f"{len(checks) - len(failed)}/{len(checks)} checks passed"
              + (f"; {len(failed)} failed" if failed else ""))
    return 1 if failed else 0


def _on_demand_ml_stack(checks):
    """Under the plugin's own environment (bin/ck sets CK_MANAGED_VENV) the ML stack is installed on
    first need, so a package that is simply not there yet is information, not a failure. A wrong
    version stays a failure: it would break jobs."""
    import os
    from dataclasses import replace

    from ..doctor.checks import installed_version

    venv = os.environ.get("CK_MANAGED_VENV")
    if not venv:
        return checks
    out = []
    for c in checks:
        name = c.name.removeprefix("version ")
        if not c.ok and c.name.startswith("version ") and installed_version(name) is None:
            c = replace(c, ok=True, info=True,
                        detail=f"{name} is not installed yet: the plugin installs the ML stack into {venv} "
                               "on first need (`ck run`, `ck analyze`, `ck inspect`)",
                        fix="`ck setup` installs it now (several GB, a few minutes)")
        out.append(c)
    return out
