"""Run one command so that it and everything it starts end together; record how it ended.

    python -I -S supervise.py --pid-file F --exit-file F [--grace S] [--label L] -- COMMAND...

Standard library only (it runs by file path, isolated, so the command's environment is exactly
the one this process was given). Started in a new session by procs.start_detached:

- the command is forked into its own process group (pgid = its pid), and that pid is written
  to --pid-file: it is the pid to report, to watch and to kill;
- the command gets PR_SET_PDEATHSIG=SIGKILL: if this supervisor is killed, so is the command;
- this supervisor is a child subreaper: processes the command leaves behind (dataloader
  workers, torchrun ranks) are re-parented here, not to init;
- when the command ends, for whatever reason (kill -9 included), its group and every process
  re-parented here get SIGTERM, then SIGKILL after --grace seconds; then --exit-file is written
  atomically: {"exit_code": shell-style (128+N for signal N), "signal": name|null, "ended": ISO}.
- SIGTERM/SIGINT/SIGHUP sent to this supervisor are forwarded to the command's group.
"""
from __future__ import annotations

import argparse
import ctypes
import datetime as _dt
import json
import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _load_procs():
    """util/procs.py (standard library only, like this file), loaded by path: run isolated, this
    supervisor cannot import the package, and /proc is read in that one module."""
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("_ck_procs", os.path.join(here, "procs.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


procs = _load_procs()


def _children() -> list[int]:
    """Direct children of this process (orphans re-parented here included)."""
    me = os.getpid()
    return [st.pid for st in procs.find(lambda st: st.ppid == me)]


def _reap_all() -> bool:
    """Reap every exited child; True when no child is left."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return True
        if pid == 0:
            return False


def _signal_leftovers(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for pid in _children():
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="supervise.py")
    parser.add_argument("--pid-file", required=True)
    parser.add_argument("--exit-file", required=True)
    parser.add_argument("--grace", type=float, default=10.0)
    parser.add_argument("--label", help="print '[LABEL] ended … with exit code N' to stdout at the end")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")

    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    me = os.getpid()
    ready_r, ready_w = os.pipe()  # exec failure reported back through a close-on-exec pipe
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            os.setpgid(0, 0)
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != me:  # the supervisor died before the line above took effect
                os._exit(137)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            os.set_inheritable(ready_w, False)
            os.execvp(command[0], command)
        except OSError as exc:
            os.write(ready_w, f"{exc.errno} {exc}".encode())
        os._exit(127)
    os.close(ready_w)
    try:
        os.setpgid(pid, pid)  # also here, so the group exists before anyone signals it
    except OSError:
        pass
    _write_atomic(args.pid_file, f"{pid}\n")

    def forward(signum, _frame):
        try:
            os.killpg(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)

    failure = os.read(ready_r, 4096).decode(errors="replace")
    os.close(ready_r)
    if failure:
        print(f"[ck launch] could not start {command[0]}: {failure.split(' ', 1)[-1]}", flush=True)

    status = None
    while status is None:
        try:
            done, st = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if done == pid:
            status = st
    ended = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    if status is None:
        code, signame = 1, None
    elif os.WIFSIGNALED(status):
        code = 128 + os.WTERMSIG(status)
        try:
            signame = signal.Signals(os.WTERMSIG(status)).name
        except ValueError:
            signame = None
    else:
        code, signame = os.WEXITSTATUS(status), None

    # The command is gone: whatever it left in its group or re-parented here is an orphan.
    _signal_leftovers(pid, signal.SIGTERM)
    deadline = time.monotonic() + args.grace
    while not _reap_all() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not _reap_all():
        _signal_leftovers(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while not _reap_all() and time.monotonic() < deadline:
            time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)  # members that are not our descendants (setsid'd away and back)
    except (ProcessLookupError, PermissionError):
        pass

    if args.label:
        print(f"[{args.label}] run ended {ended.replace('T', ' ')[:19]} with exit code {code}"
              + (f" ({signame})" if signame else ""), flush=True)
    _write_atomic(args.exit_file, json.dumps({"exit_code": code, "signal": signame, "ended": ended}) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
