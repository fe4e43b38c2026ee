"""`ck launch …`: every mechanical step of the launch-training skill, each with `--json`.

    ck launch detect REPO --json
    ck launch env REPO [--kind conda|venv|current] [--name N] [--create] [--install] [--verify] --json
    ck launch gpus --json
    ck launch wandb inject SCRIPT [--project P] [--yes] --json      (diff only unless --yes)
    ck launch wandb revert SCRIPT --json
    ck launch wandb check --json
    ck launch start REPO --command "python train.py --epochs 3" [--gpus 0,1] [--env NAME] [--wandb-project P] --json
    ck launch status RUN_ID --json
    ck launch logs RUN_ID [--tail N] [--follow]
    ck launch diagnose RUN_ID --json
    ck launch stop RUN_ID
    ck launch list --json

Modules are imported inside the handlers so `ck` starts fast; none of them imports torch/wandb
at module level either.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _json_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--json", action="store_true", help="print machine-readable JSON")
    return parent


def register(subparsers) -> None:
    js = _json_parent()
    launch = subparsers.add_parser(
        "launch", help="launch any training repo: detect, env, gpus, wandb, start/status/logs/stop, diagnose",
        description="Take a training repo from a command to a monitored run (skill: launch-training).")
    launch.set_defaults(func=lambda args: (launch.print_help(), 2)[1])
    sub = launch.add_subparsers(dest="launch_command", metavar="SUBCOMMAND")

    p = sub.add_parser("detect", parents=[js], help="entry points, dependencies, framework, wandb use, flags")
    p.add_argument("repo", metavar="REPO")
    p.add_argument("--entry", metavar="FILE", help="analyze this entry point (relative to REPO)")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("env", parents=[js], help="plan / create / install / verify the Python environment")
    p.add_argument("repo", metavar="REPO")
    p.add_argument("--kind", choices=["conda", "venv", "current"],
                   help="default: conda when installed, else venv")
    p.add_argument("--name", help="conda env name, or venv folder (relative to REPO; default .venv)")
    p.add_argument("--python-version", metavar="X.Y", help="Python for a new env (conda: python=X.Y)")
    p.add_argument("--python", metavar="PATH", help="interpreter for --kind current, or to build the venv with")
    p.add_argument("--with-wandb", action="store_true", help="also install wandb if no dependency file names it")
    p.add_argument("--create", action="store_true", help="create the env if it does not exist")
    p.add_argument("--install", action="store_true", help="install the dependency files in priority order")
    p.add_argument("--verify", action="store_true", help="report Python / torch / CUDA / wandb versions")
    p.set_defaults(func=cmd_env)

    p = sub.add_parser("gpus", parents=[js], help="GPUs from nvidia-smi, ranked by free memory and load")
    p.set_defaults(func=cmd_gpus)

    wb = sub.add_parser("wandb", help="add wandb to a training script (diff first) or undo it")
    wb.set_defaults(func=lambda args: (wb.print_help(), 2)[1])
    wsub = wb.add_subparsers(dest="wandb_command", metavar="ACTION")
    p = wsub.add_parser("inject", parents=[js], help="show (and with --yes apply) the wandb changes")
    p.add_argument("script", metavar="SCRIPT", help="the .py file, or the repo (its detected entry point)")
    p.add_argument("--project", help="wandb project (WANDB_PROJECT still overrides it at run time)")
    p.add_argument("--yes", action="store_true", help="apply: write SCRIPT.backup, then the changed script")
    p.set_defaults(func=cmd_wandb_inject)
    p = wsub.add_parser("revert", parents=[js], help="restore SCRIPT from SCRIPT.backup, byte for byte")
    p.add_argument("script", metavar="SCRIPT")
    p.add_argument("--force", action="store_true", help="also when SCRIPT was edited after inject (loses the edits)")
    p.set_defaults(func=cmd_wandb_revert)
    p = wsub.add_parser("check", parents=[js], help="is an API key available (never shown)? which mode will runs use?")
    p.set_defaults(func=cmd_wandb_check)

    p = sub.add_parser("start", parents=[js], help="launch the command detached (nohup), record pid, log, exit code")
    p.add_argument("repo", metavar="REPO")
    p.add_argument("--command", dest="train_command", required=True, metavar="CMD",
                   help='the training command, run from REPO, e.g. "python train.py --epochs 3"')
    p.add_argument("--gpus", help="CUDA_VISIBLE_DEVICES: 0 | 0,1 | auto | all | cpu (default: unchanged)")
    p.add_argument("--env", dest="env_name", metavar="NAME",
                   help="conda env name, or a venv folder (default: the repo's own env, else python on PATH)")
    p.add_argument("--python", metavar="PATH", help="interpreter to run `python` with")
    p.add_argument("--install", action="store_true",
                   help="pip-install the entry point's missing imports into the run's environment first")
    p.add_argument("--wandb-project", metavar="P", help="exported as WANDB_PROJECT")
    p.add_argument("--wait", type=float, default=5.0, metavar="S",
                   help="seconds to watch for an early crash before returning (default 5)")
    p.set_defaults(func=cmd_start)

    p = sub.add_parser("status", parents=[js], help="alive?, exit code, elapsed time, resource use")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--tail", type=int, default=0, metavar="N", help="include the last N log lines")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("logs", parents=[js], help="the run's log (last N lines, or follow until it ends)")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--tail", type=int, default=50, metavar="N", help="last N lines (default 50)")
    p.add_argument("--follow", action="store_true", help="keep printing new output until the run ends")
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("diagnose", parents=[js], help="name the failure (oom, nan, cuda, import, …) with a fix")
    p.add_argument("run_id", metavar="RUN_ID")
    p.set_defaults(func=cmd_diagnose)

    p = sub.add_parser("stop", parents=[js], help="stop the run by its recorded pid (TERM, then KILL)")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--timeout", type=float, default=15.0, metavar="S", help="seconds before SIGKILL (default 15)")
    p.set_defaults(func=cmd_stop)

    p = sub.add_parser("list", parents=[js], help="launched runs: repo, environment, state, log")
    p.add_argument("--repo", metavar="REPO", help="only the runs of this repo")
    p.set_defaults(func=cmd_list)

    for parser in list(sub.choices.values()) + list(wsub.choices.values()):
        handler = parser.get_default("func")
        if handler is not None and getattr(handler, "__module__", None) == __name__:
            parser.set_defaults(func=_pipe_safe(handler))


def _pipe_safe(handler):
    """`ck launch list | head` ends quietly: a closed pipe is not an error worth a traceback."""
    def run(args) -> int:
        try:
            code = handler(args)
            sys.stdout.flush()
            return code
        except BrokenPipeError:
            import os

            # Python flushes stdout again at exit; point it at /dev/null so that flush is silent too.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    run.__wrapped__ = handler
    return run


# --------------------------------------------------------------------------- handlers

def cmd_detect(args) -> int:
    from .detect import detect

    result = detect(args.repo, entry=args.entry)
    if args.json:
        _print_json(result)
        return 0
    print(f"repo:        {result['repo']}")
    if result["entry_point"] is None:
        for sub in result["subprojects"]:
            cmd = sub.get("readme_command")
            print(f"project:     {sub['path']}" + (f"  (README: {cmd['command']})" if cmd else ""))
        print(f"question:    {result['question']}")
        return 0
    print(f"entry point: {result['entry_point']}  (candidates: {', '.join(e['path'] for e in result['entry_points'])})")
    print(f"framework:   {result['framework'] or 'unknown'}")
    for ev in next(iter(result["framework_evidence"].values()), [])[:3]:
        print(f"             {ev}")
    print(f"deps:        {', '.join(result['install_order']) or 'none found'}")
    for line in wandb_lines(result["wandb"]):
        print(f"wandb:       {line}")
    print(f"distributed: {'yes' if result['distributed']['used'] else 'no'}")
    flags = [f for f in result["args"] if not f.get("positional")]
    if flags:
        print("flags:       " + ", ".join(f"{f['flags'][-1]}={f.get('default')!r}" for f in flags))
    print(f"suggested:   {result['suggested_command']}  (confidence: {result['confidence']})")
    if result.get("question"):
        print(f"question:    {result['question']}")
    for note in result.get("suggestion_notes", []):
        print(f"             {note}")
    missing = [d["package"] for d in result.get("inferred_dependencies", []) if not d["conditional"]]
    if missing and not result["install_order"]:
        print(f"imports:     {', '.join(missing)} (no requirements file: `ck launch env REPO --install` installs these)")
    for problem in result["parse_errors"]:
        print(f"warning:     {problem}")
    return 0


def wandb_lines(wb: dict[str, Any]) -> list[str]:
    """What detect found about wandb, in words: used? on by default? who sets the project?"""
    if not wb.get("used") and not wb.get("available"):
        return ["not used (`ck launch wandb inject` can add it)"]
    lines = []
    if wb.get("enabled_by_default") is False:
        lines.append(f"in the code but OFF by default; turn it on with {wb['enable']}"
                     + (f" ({wb['enable_where']})" if wb.get("enable_where") else ""))
    else:
        lines.append("already used")
    project = wb.get("project")
    if project:
        lines.append(f"the project is set by the repo ({project['where']}: {project['value']!r}): WANDB_PROJECT / "
                     f"--wandb-project is ignored; " + (f"use {wb['project_switch']}" if wb.get("project_switch")
                                                       else "edit it there"))
    return lines


def cmd_env(args) -> int:
    from . import env

    the_plan = env.plan(args.repo, kind=args.kind, name=args.name, python_version=args.python_version,
                        python=args.python, with_wandb=args.with_wandb)
    result = env.apply(the_plan, create=args.create, install=args.install, verify_env=args.verify,
                       stream=not args.json) if (args.create or args.install or args.verify) else dict(the_plan, ok=True)
    if args.json:
        _print_json(result)
    else:
        e = result["env"]
        print(f"environment: {e['kind']} {e['name']} ({'exists' if e['exists'] else 'not created yet'})")
        for command in result["commands"]:
            print(f"  step: {command}")
        for note in result["skipped"]:
            print(f"  skipped: {note}")
        for ran in result.get("ran", []):
            print(f"  ran (exit {ran['exit_code']}): {ran['command']}")
        if "verify" in result:
            v = result["verify"]
            print(f"  python {v.get('python')}, torch {v.get('torch')}, CUDA available {v.get('cuda_available')} "
                  f"({v.get('device_count')} devices), wandb {v.get('wandb')}" if v.get("torch") or v.get("python")
                  else f"  verify failed: {v.get('error')}")
    return 0 if result["ok"] else 1


def cmd_gpus(args) -> int:
    from . import gpus

    result = gpus.query()
    if args.json:
        _print_json(result)
    elif not result["gpus"]:
        print(f"no GPUs ({result['reason']}): training runs on CPU")
    else:
        for gpu in result["gpus"]:
            print(f"#{gpu['rank']}  GPU {gpu['index']}: {gpu['description']}")
        print(f"suggested: --gpus {result['suggested']}")
    return 0


def cmd_wandb_inject(args) -> int:
    from . import wandb_inject

    result = wandb_inject.inject(args.script, project=args.project, apply=args.yes)
    if args.json:
        _print_json(result)
        return 0
    sys.stdout.write(result["diff"])
    for note in result["notes"]:
        print(f"note: {note}")
    if result["applied"]:
        print(f"applied; original saved as {result['backup']} (undo: ck launch wandb revert {result['file']})")
    else:
        print("not applied (preview); rerun with --yes to apply")
    return 0


def cmd_wandb_revert(args) -> int:
    from . import wandb_inject

    result = wandb_inject.revert(args.script, force=args.force)
    if args.json:
        _print_json(result)
    else:
        print(f"restored {result['file']} from {result['restored_from']}")
        for note in result["notes"]:
            print(f"note: {note}")
    return 0


def cmd_wandb_check(args) -> int:
    import os

    from . import process

    key = process.wandb_api_key_present()
    mode = os.environ.get("WANDB_MODE") or ("online" if key else "offline")
    result = {"api_key_available": key, "mode": mode,
              "hint": None if key else "no API key: runs log offline; `wandb login` or export WANDB_API_KEY "
                                       "to sync, or `wandb sync <offline-run-dir>` later"}
    if args.json:
        _print_json(result)
    else:
        print(f"wandb API key available: {key}; runs will log {mode}")
        if result["hint"]:
            print(result["hint"])
    return 0


def cmd_start(args) -> int:
    from . import process

    result = process.start(args.repo, args.train_command, gpus=args.gpus, env_name=args.env_name,
                           python=args.python, wandb_project=args.wandb_project, wait_s=args.wait,
                           install=args.install)
    died = not result["alive"] and result["exit_code"] not in (None, 0)
    if args.json:
        _print_json(result)
    else:
        env = result["environment"]
        print(f"run id: {result['run_id']}\npid:    {result['pid']}  (the training's process group; "
              f"killing it ends the run)\nenv:    {env['kind']} {env['name']} ({env['source']})\n"
              f"log:    {result['repo_log'] or result['log']}")
        for warning in result.get("warnings", []):
            print(f"warning: {warning}")
        missing = result.get("missing_dependencies")
        if missing:
            print(f"missing: {', '.join(missing['modules'])} not importable in this environment; install with "
                  f"`{missing['install_command']}` (or rerun with --install)")
        print(f"state after {args.wait:g} s: {result['state']}"
              + (f" (exit code {result['exit_code']})" if result["exit_code"] is not None else ""))
        for line in result.get("log_tail", []):
            print(f"  | {line}")
        if died:
            print(f"the run died early: ck launch diagnose {result['run_id']}")
    return 1 if died else 0


def cmd_status(args) -> int:
    from . import process

    result = process.status(args.run_id, tail=args.tail)
    if args.json:
        _print_json(result)
        return 0
    res = result.get("resources") or {}
    print(f"{result['run_id']}: {result['state']}, pid {result['pid']}, elapsed {result['elapsed_s']} s"
          + (f", exit code {result['exit_code']}" if result["exit_code"] is not None else "")
          + (f", cpu {res['cpu_s']} s, rss {res['rss_mib']} MiB" if res else ""))
    env = result.get("environment") or {}
    print(f"  env: {env.get('kind')} {env.get('name')}; python {env.get('interpreter') or '(from the env)'}")
    for warning in result.get("warnings", []):
        print(f"  warning: {warning}")
    if result.get("leftover_pids"):
        print(f"  still alive after the run ended: pids {result['leftover_pids']} (ck launch stop {result['run_id']})")
    for line in result.get("log_tail", []):
        print(f"  | {line}")
    return 0


def cmd_logs(args) -> int:
    from . import process

    if args.follow and not args.json:
        process.follow(args.run_id)
        return 0
    result = process.logs(args.run_id, tail=args.tail)
    if args.json:
        _print_json(result)
    else:
        for line in result["lines"]:
            print(line)
    return 0


def cmd_diagnose(args) -> int:
    from . import diagnose

    result = diagnose.diagnose(args.run_id)
    if args.json:
        _print_json(result)
        return 0
    print(f"{result['run_id']}: {result['state']} (exit code {result['exit_code']})")
    print(f"failure: {result['failure'] or 'none found'}")
    if result["exception"]:
        print(f"error:   {result['exception']}")
    if result["evidence"]:
        print(f"evidence (log line {result['evidence']['line']}):")
        for line in result.get("evidence_lines") or [result["evidence"]]:
            print(f"  {line['line']:>6} | {line['text']}")
    print(f"advice:  {result['advice']}")
    wb = result["wandb"]
    if wb["url"] or wb["run_dir"]:
        print(f"wandb:   {wb['url'] or wb['run_dir']}" + (f"  (sync: {wb['sync_command']})" if wb["sync_command"] else ""))
    for key, value in list(wb["metrics"].items())[:12]:
        print(f"         {key} = {value}")
    return 0


def cmd_stop(args) -> int:
    from . import process

    result = process.stop(args.run_id, timeout_s=args.timeout)
    if args.json:
        _print_json(result)
    elif not result["stopped"]:
        print(f"{result['run_id']} had already ended (state {result['state']}, exit code {result['exit_code']}): "
              f"nothing to stop; see `ck launch diagnose {result['run_id']}`")
    else:
        print(f"stopped {result['run_id']} ({result['signal_sent']}); exit code {result['exit_code']}")
    return 0


def cmd_list(args) -> int:
    from . import process

    runs = process.list_runs(args.repo)
    if args.json:
        _print_json(runs)
    else:
        print("\t".join(("RUN_ID", "STATE", "ELAPSED_S", "REPO", "ENVIRONMENT", "LOG")))
        for run in runs:
            if run["state"] == "unreadable":
                print("\t".join((run["run_id"], "unreadable", "-", "-", "-", run["error"])))
                continue
            print("\t".join((run["run_id"], run["state"], f"{run['elapsed_s']:g}", run["repo"],
                             run["environment"], run["log"])))
    return 0
