"""`ck run DIR` (run-experiment / run-torchtune / run-inspect) and `ck status DIR`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import CkError
from ..executors.core import JobState
from ..run.outcome import Verdict
from ..state import layout
from ..templating import render


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "run", help="submit and monitor an experiment's fine-tuning and evaluation jobs",
        description="Submit every fine-tuning job, chain each run's evaluations to its own training, "
                    "monitor until all end. Safe to re-run: finished jobs are skipped, live ones re-attached.")
    p.add_argument("dir", help="experiment directory (holds experiment_summary.md)")
    p.add_argument("--executor", default="auto", choices=("auto", "local", "slurm"),
                   help="auto = the backend the experiment already uses, else $CK_EXECUTOR, "
                        "else slurm when sbatch is on PATH, else local")
    p.add_argument("--only", choices=("torchtune", "inspect"),
                   help="run one worker: torchtune (fine-tuning) or inspect (evaluations of existing checkpoints)")
    p.add_argument("--max-parallel", type=int, default=None, metavar="N",
                   help="local executor: jobs running at once (default 1)")
    p.add_argument("--gpus", metavar="IDS", help="local executor: GPU ids to hand out, e.g. 0,1 ('none' = CPU only)")
    p.add_argument("--poll", type=float, default=60, metavar="SECONDS", help="seconds between status checks (default 60)")
    p.add_argument("--detach", action="store_true", help="leave a background supervisor and return")
    p.add_argument("--retry-failed", action="store_true", help="resubmit jobs that failed earlier")
    p.add_argument("--dry-run", action="store_true", help="show what would be submitted; change nothing")
    p.add_argument("--json", action="store_true",
                   help="one JSON document on stdout; progress as one JSON event per line on stderr")
    p.add_argument("--runs", metavar="GLOB", help="only run directories matching GLOB, e.g. 'rank8_*'")
    p.add_argument("--analyze", action="store_true", help="run `ck analyze` when the last job ends")
    p.add_argument("--notify", metavar="CMD", help="shell command run when the last job ends, with "
                   "`ck status --json` on its stdin (CK_RUN_OK=1 when every job completed)")
    p.set_defaults(func=cmd_run)

    s = subparsers.add_parser("status", help="show an experiment's jobs from the ledger (submits nothing)")
    s.add_argument("dir", help="experiment directory")
    s.add_argument("--json", action="store_true", help="one JSON document on stdout")
    s.set_defaults(func=cmd_status)


def _closed_pipe(func):
    """`ck status | head`: a reader that goes away is exit 2 with a message, not a traceback."""
    import functools
    import os

    @functools.wraps(func)
    def wrapper(args):
        try:
            result = func(args)
            sys.stdout.flush()
            return result
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # nothing more can reach the reader
            raise CkError("standard output was closed before the output ended (broken pipe)",
                          file="<stdout>") from None

    return wrapper


def _gpus(text: str | None) -> list[str] | None:
    if text is None:
        return None
    if text.strip().lower() in ("", "none", "cpu"):
        return []
    ids = [g.strip() for g in text.split(",")]
    if any(not g.isdigit() for g in ids):
        raise CkError(f"--gpus takes comma-separated GPU ids like 0,1, not {text!r}", field="--gpus")
    return ids


def _executor_name(requested: str, exp: Path) -> tuple[str, str]:
    """(backend, why). `auto` keeps the backend an experiment already runs on: a local experiment
    resumed on a machine that also has sbatch must not silently move to SLURM (and the reverse)."""
    import os

    from ..executors import resolve_name

    if requested != "auto":
        return requested, f"--executor {requested}"
    from ..state.ledger import Ledger

    if (exp / layout.CK_DIR / layout.LEDGER).exists():
        used = {e.get("executor") for e in Ledger(exp).jobs().values()} - {None}
        if len(used) == 1:
            name = used.pop()
            return name, f"the experiment's ledger records {name} jobs"
    name = resolve_name("auto")
    if os.environ.get("CK_EXECUTOR", "").strip():
        return name, f"CK_EXECUTOR={name}"
    return name, ("sbatch is on PATH (auto prefers SLURM; pass --executor local to run here)" if name == "slurm"
                  else "no sbatch on PATH")


def _analyzer():
    """`--analyze`: the analysis run/ calls when the last job ends (run/ never imports analyze/)."""
    from ..analyze.pipeline import analyze_experiment

    return analyze_experiment


@_closed_pipe
def cmd_run(args: argparse.Namespace) -> int:
    from ..executors import get_executor
    from ..run.events import JsonLinesReporter
    from ..run.orchestrator import default_out, run_experiment

    if args.max_parallel is not None and args.max_parallel < 1:
        raise CkError("--max-parallel must be at least 1", field="--max-parallel")
    if args.poll <= 0:
        raise CkError("--poll must be a positive number of seconds", field="--poll")
    exp = Path(args.dir)
    if not exp.is_dir():
        raise CkError(f"experiment directory not found: {exp}")
    name, reason = _executor_name(args.executor, exp)
    executor = get_executor(name, exp, max_parallel=args.max_parallel, gpus=_gpus(args.gpus))
    _sigterm_interrupts()
    out = default_out(args.json)
    if not args.json:  # with --json the reason is in the document (stderr carries JSON events only)
        out(f"executor: {executor.name} ({reason})")
    # --json: stdout is one JSON document at the end; progress is one JSON event per line on stderr
    progress = JsonLinesReporter(out) if args.json else None
    report = run_experiment(exp, executor, only=args.only, poll_s=args.poll, detach=args.detach,
                            retry_failed=args.retry_failed, dry_run=args.dry_run, out=out, progress=progress,
                            runs=args.runs, analyze=_analyzer() if args.analyze else None, notify=args.notify)
    report.executor_reason = reason
    if report.detached:
        sup = report.supervisor
        if args.json:
            print(json.dumps({**sup, **report.to_dict()}, indent=2))
        else:
            print(f"supervisor running in the background (pid {sup['pid']})\n"
                  f"  progress: {sup['log']}\n  status:   ck status {exp}\n"
                  f"  stop it any time; `ck run {exp}` resumes without redoing finished jobs")
        return 0
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        _print_summary(report)
    if report.refused:
        print(f"ck run: error: no checkpoint for run(s) {', '.join(report.refused)}: their evaluations "
              "were not submitted (fine-tune them first)", file=sys.stderr)
        return 2
    return 1 if report.failed else 0


def _sigterm_interrupts() -> None:
    """`kill <supervisor>` stops monitoring like Ctrl-C: logged, jobs keep running, resumable."""
    import signal
    import threading

    def _raise(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise)


def _print_summary(report) -> None:
    pruned = sum(j.verdict is Verdict.PRUNED for j in report.jobs)
    done = sum(j.ok for j in report.jobs) - pruned
    title = "Dry run" if report.dry_run else "Run finished"
    print(f"\n{title}: {done}/{len(report.jobs)} job(s) COMPLETED"
          + (f", {pruned} pruned by the search" if pruned else "")
          + (f", {len(report.submitted)} submitted now" if report.submitted else ""))
    for j in report.jobs:
        if report.dry_run or not j.ok or j.note:
            print(f"  {j.run:<24} {j.label:<30} {j.job_id or '-':<12} "
                  f"{j.state.value if j.state else j.action.upper()}  {j.note or ''}".rstrip())
    for w in report.warnings:
        print(f"  warning: {w}")
    for run in report.stale:
        print(f"  stale: {run}/ is not a run of experiment_summary.md; not submitted")
    for run in report.unscaffolded:
        print(f"  not scaffolded: planned run {run} has no run directory (`ck scaffold`)")
    if not report.dry_run:
        print(f"Logs: {report.exp_dir}/run-experiment.log, run-torchtune.log, run-inspect.log")


@_closed_pipe
def cmd_status(args: argparse.Namespace) -> int:
    from ..run.status import experiment_status

    exp = Path(args.dir)
    if not exp.is_dir():
        raise CkError(f"experiment directory not found: {exp}")
    status = experiment_status(exp)
    failed = 2 if status["place_error"] else 0  # a copied experiment: its states are another's
    if args.json:
        print(json.dumps(status, indent=2))
        return failed
    sup = status["supervisor"]
    print(f"Experiment {status['experiment']}")
    print(f"Monitor: {sup['holder'] or 'none running'}"
          + (f" (detached supervisor pid {sup['pid']}{'' if sup['running'] else ', not running'})" if sup["pid"] else ""))
    if status["plan_error"]:
        print(f"plan: {status['plan_error']}")
    for run in status["stale"]:
        print(f"stale: {run}/ is not a run of experiment_summary.md (ck run will not submit it)")
    for run in status["unscaffolded"]:
        print(f"not scaffolded: planned run {run} has no run directory")
    header = ("RUN", "JOB", "JOB ID", "STATE", "DURATION", "ARTIFACTS", "RESOURCES")
    rows = [(r["run"], r["job"], r["job_id"] or "-",
             r["state"] or ("submit interrupted (ck run checks the scheduler)" if r["submitting"] else "not submitted"),
             r["duration"] or "-",
             "yes" if r["artifacts"] else "no", r.get("resources_text") or "-") for r in status["jobs"]]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for row in (header, *rows):
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())
    c = status["counts"]
    print(", ".join(f"{v} {k.lower().replace('_', ' ')}" for k, v in c.items()))
    if status.get("search") is not None:
        print(render("status_search.txt.j2", s=status["search"]), end="")
    queued_local = any(j["executor"] == "local" and j["state"] == JobState.PENDING.value for j in status["jobs"])
    if queued_local and not sup["holder"]:
        print(f"note: no `ck run` is monitoring; queued local jobs start only while one runs "
              f"(`ck run {exp}` resumes)")
    if failed:
        print(f"ck status: error: {status['place_error']}", file=sys.stderr)
    return failed
