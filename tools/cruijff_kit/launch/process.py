"""Start a training command detached from ck, and watch / stop it: the run is its process group.

`start` writes templates/launch/run.sh.j2 (the command with its environment) and runs it under
util/supervise.py in a new session. The command becomes its own process group; the pid reported
is that group's leader (the training process itself for a simple command). When it ends, for any
reason (kill -9 of the reported pid included), the supervisor ends whatever it left behind and
records the exit code; if the supervisor itself is killed, the command dies with it.

A run's processes are found, whatever was killed or re-parented, by the marker CK_LAUNCH_RUN_ID
in their initial environment, or by the run's session and group ids together. Signals are sent
only to processes checked that way (pids are reused).
"""
from __future__ import annotations

import datetime as _dt
import os
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import CkError
from ..templating import render
from ..util import formats, procs
from ..util.fs import atomic_write_text
from ..util.wandb_key import wandb_api_key_present
from . import env as envmod
from . import failures, losses, state
from . import gpus as gpumod

MARKER = "CK_LAUNCH_RUN_ID"
REPO_LOG = "experiment.log"
_LEADING_PYTHON = re.compile(r"^(\s*(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*)(python(?:3(?:\.\d+)?)?)(?=\s|$)")
_PID_WAIT_S = 10.0


def now_iso() -> str:
    return formats.now_iso()


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return _dt.datetime.fromisoformat(str(iso)).timestamp()
    except ValueError:
        return None


# --------------------------------------------------------------------------- the run's processes

def members(meta: dict[str, Any]) -> list[procs.ProcStat]:
    """Every live process of the run: the supervisor, the command and all they started."""
    run_id, sid, pgid = meta.get("run_id"), meta.get("supervisor_pid"), meta.get("pgid")
    if not run_id or not sid:
        return []
    if not procs.HAS_PROC:  # no /proc to scan (macOS): the supervisor and the command, by identity
        pairs = ((sid, meta.get("supervisor_start")), (meta.get("pid"), meta.get("pid_start")))
        return [st for pid, start in pairs if pid and procs.is_alive(pid, start) and (st := procs.stat(pid))]
    # The session and group ids together (the group is never the session's leader's): no stranger
    # can hold both, since the kernel does not reuse a pid that still names a session or a group.
    return procs.find(lambda st: procs.has_env(st.pid, MARKER, run_id)
                      or (pgid is not None and pgid != sid and st.sid == sid and st.pgrp == pgid))


def is_ours(meta: dict[str, Any]) -> bool:
    """True while the reported pid is alive and is still the process `start` launched."""
    pid = meta.get("pid")
    return bool(pid) and procs.is_alive(pid, meta.get("pid_start"))


def _supervisor_alive(meta: dict[str, Any]) -> bool:
    pid = meta.get("supervisor_pid")
    return bool(pid) and procs.is_alive(pid, meta.get("supervisor_start"))


# --------------------------------------------------------------------------- start

def _check_entry(repo: Path, command: str) -> list[str]:
    """`python missing.py` is bad input, not a run that fails a second later. The command's words."""
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise CkError(f"cannot parse --command: {exc}", field="--command") from None
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        words.pop(0)
    if not words:
        raise CkError("--command is empty", field="--command", hint='e.g. --command "python train.py --epochs 3"')
    if re.fullmatch(r"python(3(\.\d+)?)?", Path(words[0]).name):
        script = next((w for w in words[1:] if not w.startswith("-")), None)
        if words[1:2] == ["-m"] or words[1:2] == ["-c"]:
            return words
        if script and script.endswith(".py") and not (repo / script).is_file():
            raise CkError(f"entry point {script} not found in {repo}", field="--command",
                          hint="`ck launch detect REPO --json` lists the entry points")
    return words


_wandb_api_key_present = wandb_api_key_present  # the older private name


def wandb_mode_for_launch() -> str | None:
    """'offline' when no API key is available and the user did not choose a mode."""
    if os.environ.get("WANDB_MODE"):
        return None
    return None if wandb_api_key_present() else "offline"


def _script_of(words: list[str]) -> str | None:
    """The .py file a `python X.py …` / `torchrun … X.py` command runs (relative to the repo)."""
    return next((w for w in words[1:] if w.endswith(".py") and not w.startswith("-")), None)


def _detect_entry(repo: Path, words: list[str]) -> dict[str, Any] | None:
    """What detect says about the script the command runs (None when there is no such .py file)."""
    from . import detect

    script = _script_of(words)
    if not script or not (repo / script).is_file():
        return None
    try:
        return detect.detect(repo, entry=script)
    except CkError:
        return None


def _dependency_check(repo: Path, info: dict[str, Any] | None, run: dict[str, Any]) -> dict[str, Any] | None:
    """Imports of the entry point (and the repo modules it imports) its environment cannot satisfy."""
    if info is None:
        return None
    wanted = [d for d in info["inferred_dependencies"] if not d["conditional"]]
    missing = envmod.missing_modules(run, sorted({d["import"] for d in wanted}), repo)
    if not missing:
        return None
    packages = sorted({d["package"] for d in wanted if d["import"] in missing})
    return {"modules": missing, "packages": packages,
            "install_command": shlex.join(envmod.pip_install_argv(run, packages))}


def _wandb_warnings(info: dict[str, Any] | None, command: str, wandb_project: str | None) -> list[str]:
    """--wandb-project exports WANDB_PROJECT, which wandb ignores when the code passes project= itself;
    and a repo whose wandb is off by default logs nothing unless its own switch is given."""
    if info is None:
        return []
    wb, out = info["wandb"], []
    switch = wb.get("project_switch")
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    given_flags = {w.split("=", 1)[0] for w in words}
    if wandb_project and wb.get("project"):
        # the switch as detect gives it: `--wandb_project=P` (configurator), `--wandb-project-name P` (argparse, tyro)
        name = switch.split("=", 1)[0].split(" ", 1)[0] if switch else None
        if not (name and name in given_flags):
            with_value = (switch[:-1] + wandb_project if switch and switch.endswith("P") else switch)
            out.append(f"--wandb-project {wandb_project} is ignored: {wb['project']['where']} sets the project "
                       f"itself ({wb['project']['value']!r})"
                       + (f"; add {with_value} to the command instead" if switch else "; edit it there"))
    enable = wb.get("enable")
    if wandb_project and wb.get("enabled_by_default") is False and enable and enable.split("=")[0].split(" ")[0] not in given_flags:
        out.append(f"wandb is off by default in this repo: add {enable} to the command to log")
    return out


def _link_repo_log(repo: Path, log: Path) -> str | None:
    """<repo>/experiment.log -> this run's log, replacing only a link ck made before."""
    link = repo / REPO_LOG
    if link.exists() and not link.is_symlink() or link.is_dir():
        return None  # the user's own file: never touched
    tmp = repo / f".{REPO_LOG}.{os.getpid()}.tmp"
    try:
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(log)
        os.replace(tmp, link)
    except OSError:
        return None
    return str(link)


def start(repo: str | Path, command: str, *, gpus: str | None = None, env_name: str | None = None,
          python: str | None = None, wandb_project: str | None = None, wait_s: float = 5.0,
          tail: int = 20, install: bool = False) -> dict[str, Any]:
    repo = Path(repo).expanduser()
    if not repo.is_dir():
        raise CkError(f"repository not found: {repo} is not a directory", field="REPO")
    repo = repo.resolve()
    if not command or not command.strip():
        raise CkError("--command is empty", field="--command", hint='e.g. --command "python train.py --epochs 3"')
    words = _check_entry(repo, command)
    run = envmod.runner(repo, env_name, python)
    cuda = gpumod.resolve(gpus)

    info = _detect_entry(repo, words)
    deps = _dependency_check(repo, info, run)
    warnings = _wandb_warnings(info, command, wandb_project)
    installed = None
    if deps and install:
        installed = envmod.run_step(envmod.pip_install_argv(run, deps["packages"]), str(repo), stream=True)
        if installed["exit_code"] != 0:
            raise CkError(f"installing {', '.join(deps['packages'])} into the run's environment failed "
                          f"(exit {installed['exit_code']})", field="--install",
                          hint=installed["output_tail"].strip().splitlines()[-1] if installed["output_tail"].strip() else None)
        deps = _dependency_check(repo, info, run)

    variables: dict[str, str] = {"PYTHONUNBUFFERED": "1", **run["set_env"]}
    if cuda is not None:
        variables["CUDA_VISIBLE_DEVICES"] = cuda
    if wandb_project:
        variables["WANDB_PROJECT"] = wandb_project
    if (mode := wandb_mode_for_launch()) is not None:
        variables["WANDB_MODE"] = mode
    unset = [k for k in ("VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "PYTHONHOME")
             if k not in variables and os.environ.get(k) and envmod._inside(os.environ[k], envmod.ck_prefixes())]

    resolved = command
    if run["python"]:
        resolved = _LEADING_PYTHON.sub(lambda m: m.group(1) + shlex.quote(run["python"]), command, count=1)
    interpreter = run.get("interpreter") or run["python"]

    run_id = state.new_run_id(repo)
    folder = state.create_run_dir(run_id)
    log = folder / state.LOG
    wrapper = folder / state.WRAPPER
    atomic_write_text(wrapper, render(
        "launch/run.sh.j2", run_id=run_id, repo=str(repo), path=run["path"], unset=unset, env=variables,
        command=resolved, prefix=run["prefix"], env_kind=run["kind"], env_name=run["name"],
        env_source=run["source"], interpreter=interpreter, wrapper=str(wrapper), log=str(log)), mode=0o755)

    meta: dict[str, Any] = {
        "run_id": run_id, "repo": str(repo), "command": command, "resolved_command": resolved,
        "environment": {"kind": run["kind"], "name": run["name"], "source": run["source"],
                        "interpreter": interpreter},
        "env_vars": variables, "gpus": cuda, "wandb_project": wandb_project, "log": str(log),
        "repo_log": None, "wrapper": str(wrapper), "state_dir": str(folder), "started": now_iso(),
        "started_ns": time.time_ns(),  # orders runs started within the same second (`started` has whole seconds)
        "supervisor_pid": None, "supervisor_start": None, "pid": None, "pgid": None, "pid_start": None,
        "exit_code": None, "signal": None, "ended": None, "missing_dependencies": deps,
        "warnings": warnings,
    }
    state.write_meta(folder, meta)
    atomic_write_text(log, "")
    repo_log = _link_repo_log(repo, log)

    child_env = {**os.environ, MARKER: run_id}
    argv = procs.supervised(["bash", str(wrapper)], pid_file=folder / state.PID, exit_file=folder / state.EXIT,
                            label="ck launch")
    sup = procs.start_detached(argv, cwd=repo, log=log, env=child_env)
    sup_start = procs.start_time(sup.pid)
    state.update_meta(folder, supervisor_pid=sup.pid, supervisor_start=sup_start, repo_log=repo_log)

    # the supervisor writes the command's pid as soon as it has forked it
    deadline = time.monotonic() + _PID_WAIT_S
    pid = None
    while time.monotonic() < deadline:
        try:
            pid = int((folder / state.PID).read_text().strip())
            break
        except (OSError, ValueError):
            if sup.poll() is not None:
                break
            time.sleep(0.02)
    if pid is None:
        raise CkError(f"the run's supervisor did not start the command (exit {sup.poll()})", file=log,
                      hint=f"see {log}")
    state.update_meta(folder, pid=pid, pgid=pid, pid_start=procs.start_time(pid))

    deadline = time.monotonic() + max(wait_s, 0.0)
    while time.monotonic() < deadline and sup.poll() is None:
        time.sleep(0.1)
    sup.poll()  # reap it here if it already ended, so it is not left a zombie of this process
    result = status(run_id, tail=tail)
    result.update({"run_id": run_id, "pid": pid, "log": str(log), "waited_s": wait_s})
    if deps:
        result["missing_dependencies"] = deps
    if warnings:
        result["warnings"] = warnings
    if installed:
        result["installed"] = installed
    return result


# --------------------------------------------------------------------------- status / logs / stop

def tail_lines(path: Path, n: int) -> list[str]:
    return procs.tail_lines(path, n)


def _signal_name(code: int | None) -> str | None:
    return procs.signal_name(code)


def status(run_id: str, *, tail: int = 0) -> dict[str, Any]:
    folder = state.run_dir(run_id)
    meta = state.read_meta(folder)
    running = members(meta) if meta.get("supervisor_pid") else []
    supervisor_alive = _supervisor_alive(meta)
    # The exit record is read after the liveness checks: the supervisor writes it, then exits, so a
    # supervisor seen dead has written it if it ever will. Read first, a run that ended between the
    # two reads looked killed (no record, no supervisor).
    record = state.read_exit(folder)
    legacy = not meta.get("supervisor_pid") and bool(meta.get("pid"))  # started by ck before the supervisor
    alive = bool(running) or (legacy and record is None and is_ours(meta))
    now = time.time()

    if record is not None and meta.get("exit_code") is None:
        ended_iso = record.get("ended") or (_dt.datetime.fromtimestamp(record["ended_at"]).astimezone()
                                            .isoformat(timespec="seconds") if record.get("ended_at") else None)
        meta = state.update_meta(folder, exit_code=record["exit_code"], signal=record.get("signal"),
                                 ended=ended_iso, best_effort=True)
    elif record is None and meta.get("supervisor_pid") and not supervisor_alive and not meta.get("ended"):
        # Supervisor SIGKILLed (OOM killer, kill -9): no record; the time is when we noticed.
        meta = state.update_meta(folder, ended=now_iso(), ended_approx=True, best_effort=True)
    log = Path(meta["log"])

    ended_run = record is not None or (meta.get("supervisor_pid") and not supervisor_alive) \
        or (legacy and not alive)
    exit_code = meta.get("exit_code")
    health = meta.get("loss_health")
    if health is None:
        health = losses.health(losses.read_log(log))
        if ended_run and not alive:
            state.update_meta(folder, loss_health=health, best_effort=True)  # a finished log does not change
    if not ended_run:
        run_state = "running" if meta.get("pid") else "starting"
    elif meta.get("stopped_by"):
        run_state = "stopped"
    elif exit_code is None or procs.signal_name(exit_code):
        run_state = "killed"
    elif health["state"] != "ok":
        run_state = health["state"]
    else:
        run_state = "succeeded" if exit_code == 0 else "failed"

    started = _epoch(meta.get("started")) or now
    ended = _epoch(meta.get("ended"))
    out: dict[str, Any] = {
        "run_id": run_id, "alive": alive, "state": run_state, "pid": meta.get("pid"),
        "exit_code": exit_code, "signal": meta.get("signal") or procs.signal_name(exit_code),
        "elapsed_s": round((ended if ended and not alive else now) - started, 1),
        "started": meta.get("started"), "started_ns": meta.get("started_ns"), "ended": meta.get("ended"),
        "command": meta["command"],
        "repo": meta["repo"], "environment": meta.get("environment"), "gpus": meta.get("gpus"),
        "wandb_project": meta.get("wandb_project"), "log": str(log), "repo_log": meta.get("repo_log"),
        "state_dir": str(folder), "loss_health": health,
        "last_output_s_ago": round(now - log.stat().st_mtime, 1) if log.exists() else None,
    }
    if meta.get("stopped_by"):
        out["stopped_by"] = meta["stopped_by"]
    if meta.get("warnings"):
        out["warnings"] = list(meta["warnings"])  # e.g. a --wandb-project the repo's own project= overrides
    if run_state == "succeeded" and out["elapsed_s"] < failures.QUICK_EXIT_S and not failures.has_progress(
            losses.log_lines(losses.read_log(log))):
        out.setdefault("warnings", []).append(
            f"finished in {out['elapsed_s']:g} s and logged no step: did the entry point train? "
            f"(ck launch diagnose {run_id})")
    if running:
        out["resources"] = procs.usage(running, gpumod.memory_by_pid())
        if ended_run:
            out["leftover_pids"] = sorted(s.pid for s in running)
    if tail:
        out["log_tail"] = tail_lines(log, tail)
    return out


def logs(run_id: str, *, tail: int = 50) -> dict[str, Any]:
    folder = state.run_dir(run_id)
    meta = state.read_meta(folder)
    return {"run_id": run_id, "log": meta["log"], "lines": tail_lines(Path(meta["log"]), tail)}


def follow(run_id: str, out=sys.stdout, poll_s: float = 0.5) -> None:
    """Print new log output until the run ends (like tail -f, but stops on its own)."""
    folder = state.run_dir(run_id)
    meta = state.read_meta(folder)
    with open(meta["log"], "rb") as fh:
        while True:
            chunk = fh.read(1 << 20)
            if chunk:
                out.write(chunk.decode("utf-8", errors="replace"))
                out.flush()
            elif state.read_exit(folder) is not None or not members(meta):
                while (chunk := fh.read(1 << 20)):
                    out.write(chunk.decode("utf-8", errors="replace"))
                return
            else:
                time.sleep(poll_s)


def stop(run_id: str, *, timeout_s: float = 15.0) -> dict[str, Any]:
    folder = state.run_dir(run_id)
    meta = state.read_meta(folder)
    if not members(meta):
        # already ended (it may have finished between the caller's status and this stop): stopping
        # is idempotent, so an agent's "status says alive, then stop" never fails on that race
        result = status(run_id)
        result.update({"stopped": False, "signal_sent": None})
        return result
    state.update_meta(folder, stopped_by="ck launch stop", stop_requested=now_iso())
    # The command's group (and any process of the run that left it) first, so the supervisor sees
    # the command end and records its exit code; SIGKILL for what is left after the timeout.
    sup = meta.get("supervisor_pid")
    sent = procs.terminate(lambda: [m for m in members(meta) if m.pid != sup], timeout_s,
                           groups=[meta["pgid"]] if meta.get("pgid") else [])
    sent = sent or "SIGTERM"
    deadline = time.monotonic() + 3.0  # the supervisor's turn to record the exit code
    while time.monotonic() < deadline and members(meta):
        time.sleep(0.05)
    procs.terminate(lambda: members(meta), timeout_s=0.0)
    result = status(run_id)
    result.update({"stopped": True, "signal_sent": sent})
    return result


def list_runs(repo: str | Path | None = None) -> list[dict[str, Any]]:
    """Known runs in start order (`started` has whole seconds; started_ns orders runs within one);
    unreadable runs, which have no start time, first."""
    wanted = str(Path(repo).expanduser().resolve()) if repo else None
    rows: list[tuple[tuple[str, int], dict[str, Any]]] = []
    for folder in state.all_runs():
        try:
            s = status(folder.name)
        except CkError as err:
            # one damaged run dir is listed as such; it never hides the others
            if not wanted:
                rows.append((("", 0), {"run_id": folder.name, "repo": None, "environment": "", "state": "unreadable",
                                       "alive": None, "exit_code": None, "elapsed_s": None, "started": None,
                                       "command": None, "log": str(folder / state.LOG), "error": str(err)}))
            continue
        if wanted and s["repo"] != wanted:
            continue
        env = s.get("environment") or {}
        rows.append(((s["started"] or "", s["started_ns"] or 0), {
            "run_id": s["run_id"], "repo": s["repo"],
            "environment": f"{env.get('kind', '?')} {env.get('name', '')}".strip(),
            "state": s["state"], "alive": s["alive"], "exit_code": s["exit_code"], "elapsed_s": s["elapsed_s"],
            "started": s["started"], "command": s["command"], "log": s["log"]}))
    rows.sort(key=lambda row: row[0])
    return [entry for _, entry in rows]
