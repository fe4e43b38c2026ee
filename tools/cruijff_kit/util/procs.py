"""The one process toolkit: /proc facts, group and tree signals, detached starts, bounded log
tails, conda discovery and the nvidia-smi query. Executors, launch, setup and doctor ask here.

A pid alone is not an identity (pids are reused); (pid, start time in clock ticks since boot)
is. The start time is field 22 of /proc/<pid>/stat and never changes for a process's life.
Where there is no /proc (macOS), `ps` answers the few questions that need it.

External commands go through a `run(argv, timeout=)` callable returning an object with `rc`,
`out`, `err`, `ok` and `why()` (setup's Probe.run has that shape), so callers can point the
queries at a fake PATH in tests.

`exit_after(main)` ends this process (a training or evaluation job, `ck`) without the
interpreter's teardown; `imports_without_gc()` loads a job's libraries without the garbage
collector rescanning them while they load.
"""
from __future__ import annotations

import atexit
import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NoReturn, Sequence

HAS_PROC = Path("/proc/self/stat").exists()  # Linux; elsewhere `ps` answers for single pids
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
SUPERVISOR = Path(__file__).with_name("supervise.py")


# --------------------------------------------------------------------------- /proc facts

@dataclass(frozen=True)
class ProcStat:
    pid: int
    state: str          # R S D Z T …; Z and X are dead
    ppid: int
    pgrp: int
    sid: int
    start: str          # clock ticks since boot (Linux) or `ps -o lstart` text: compare, never compute
    cpu_s: float | None
    rss_mib: float | None

    @property
    def alive(self) -> bool:
        return self.state not in ("Z", "X")


def stat(pid: int) -> ProcStat | None:
    """What /proc/<pid>/stat says about `pid`; None when there is no such process."""
    if HAS_PROC:
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
        except (OSError, ValueError):
            return None
        # comm (field 2) may hold spaces and ')'; everything after the LAST ')' is well formed.
        f = raw[raw.rfind(")") + 2:].split()
        if len(f) < 22:
            return None
        return ProcStat(pid=pid, state=f[0], ppid=int(f[1]), pgrp=int(f[2]), sid=int(f[3]), start=f[19],
                        cpu_s=(int(f[11]) + int(f[12])) / CLK_TCK, rss_mib=int(f[21]) * PAGE / 2**20)
    try:
        proc = subprocess.run(["ps", "-o", "stat=,ppid=,pgid=,sess=,lstart=", "-p", str(pid)],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    line = proc.stdout.strip()
    if proc.returncode != 0 or not line:
        return None
    st, ppid, pgid, sess, start = line.split(None, 4)
    return ProcStat(pid=pid, state=st[0], ppid=int(ppid), pgrp=int(pgid), sid=int(sess), start=start,
                    cpu_s=None, rss_mib=None)


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), the half of its identity a pid lacks."""
    st = stat(pid)
    if st is None:
        return None
    try:
        return int(st.start)
    except ValueError:
        return None


def is_alive(pid: int, started: int | str | None = None) -> bool:
    """True when `pid` runs (zombies count as dead) and, if given, started at `started`."""
    st = stat(pid)
    if st is None or not st.alive:
        return False
    return started is None or str(st.start) == str(started)


def has_env(pid: int, name: str, value: str) -> bool:
    """Whether the process's initial environment holds name=value (an identity that children inherit)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{name}={value}".encode() in environ.split(b"\0")


def _own_pids() -> Iterable[int]:
    uid = os.getuid()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat(follow_symlinks=False).st_uid == uid:
                    yield int(entry.name)
            except OSError:
                continue


def find(match: Callable[[ProcStat], bool]) -> list[ProcStat]:
    """Live processes of this user for which `match(stat)` holds (a run is its session, group and
    environment marker, whatever was killed or re-parented). Without /proc: none."""
    if not HAS_PROC:
        return []
    found = []
    for pid in _own_pids():
        st = stat(pid)
        if st is not None and st.alive and match(st):
            found.append(st)
    return found


def usage(stats: Sequence[ProcStat], gpu_mib: dict[int, float] | None = None) -> dict[str, Any]:
    """CPU time, resident memory and GPU memory of these processes together."""
    return {
        "processes": len(stats),
        "pids": sorted(s.pid for s in stats),
        "cpu_s": round(sum(s.cpu_s or 0 for s in stats), 2),
        "rss_mib": round(sum(s.rss_mib or 0 for s in stats), 1),
        "gpu_mem_mib": round(sum(gpu_mib.get(s.pid, 0.0) for s in stats), 1) if gpu_mib else None,
    }


# --------------------------------------------------------------------------- signals

def kill_group(pgid: int, sig: int = signal.SIGTERM) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def signal_all(stats: Iterable[ProcStat], sig: int) -> list[int]:
    """Send `sig` to each process still the one listed (same start time); the pids signalled."""
    sent = []
    for st in stats:
        if is_alive(st.pid, st.start):
            try:
                os.kill(st.pid, sig)
                sent.append(st.pid)
            except (ProcessLookupError, PermissionError):
                pass
    return sent


def terminate(members: Callable[[], list[ProcStat]], timeout_s: float, *,
              poll_s: float = 0.1, groups: Iterable[int] | None = None) -> str | None:
    """Stop with escalation, the one implementation (local executor's cancel, `ck launch stop`,
    the supervisor): SIGTERM every process `members()` lists and their process groups (or just
    `groups`), wait up to `timeout_s` for all to end, then SIGKILL the ones left. Returns the
    strongest signal sent (None: there was nothing to signal)."""
    alive = members()
    if not alive:
        return None
    for pgid in ({s.pgrp for s in alive} if groups is None else set(groups)):
        if pgid and pgid != os.getpgrp():
            kill_group(pgid, signal.SIGTERM)
    signal_all(alive, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not (alive := members()):
            return "SIGTERM"
        time.sleep(poll_s)
    while alive:  # listed again right before: never SIGKILL a pid that was reused
        signal_all(alive, signal.SIGKILL)
        time.sleep(poll_s / 2)
        alive = members()
    return "SIGKILL"


def signal_name(code: int | None) -> str | None:
    """'SIGKILL' for a shell-style exit code 137 (128 + signal number); None for other codes."""
    if code is None or not 128 < code <= 128 + 64:
        return None
    try:
        return signal.Signals(code - 128).name
    except ValueError:
        return None


# --------------------------------------------------------------------------- detached start

def start_detached(argv: Sequence[str], *, cwd: str | Path, log: str | Path,
                   env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start `argv` in a new session (it outlives the caller and its terminal), output appended
    to `log`, no stdin. The caller reaps it if it ends while the caller still runs."""
    with open(log, "ab") as out:
        return subprocess.Popen(list(argv), cwd=str(cwd), env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)


def supervised(argv: Sequence[str], *, pid_file: str | Path, exit_file: str | Path,
               grace_s: float = 10.0, label: str | None = None) -> list[str]:
    """`argv` wrapped by supervise.py: the command becomes its own process group, dies with the
    supervisor, and when it ends every process it left behind is ended too (see supervise.py).
    Run by file path with -I -S: the supervisor needs nothing but the standard library, and the
    command sees the environment the caller passed, untouched."""
    return [sys.executable, "-I", "-S", str(SUPERVISOR), "--pid-file", str(pid_file),
            "--exit-file", str(exit_file), "--grace", f"{grace_s:g}",
            *(["--label", label] if label else []), "--", *argv]


# --------------------------------------------------------------------------- bounded reads

def tail_bytes(path: str | Path, nbytes: int = 65536) -> bytes:
    """The last `nbytes` of a file (b'' when it cannot be read); never reads the whole file."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - nbytes))
            return fh.read(nbytes)
    except OSError:
        return b""


def tail_text(path: str | Path, nbytes: int = 65536) -> str:
    return tail_bytes(path, nbytes).decode("utf-8", errors="replace")


def head_text(path: str | Path, nbytes: int = 65536) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(nbytes).decode("utf-8", errors="replace")
    except OSError:
        return ""


def tail_lines(path: str | Path, n: int, max_bytes: int = 4 * 2**20) -> list[str]:
    """The last `n` lines, reading backwards in growing chunks, at most `max_bytes` in all."""
    if n <= 0:
        return []
    try:
        fh = open(path, "rb")
    except OSError:
        return []
    with fh:
        fh.seek(0, os.SEEK_END)
        pos = fh.tell()
        chunk, data = 8192, b""
        while pos > 0 and data.count(b"\n") <= n and len(data) < max_bytes:
            step = min(chunk, pos, max_bytes - len(data))
            pos -= step
            fh.seek(pos)
            data = fh.read(step) + data
            chunk *= 2
    return data.decode("utf-8", errors="replace").splitlines()[-n:]


# --------------------------------------------------------------------------- external commands

@dataclass(frozen=True)
class CommandResult:
    rc: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def why(self) -> str:
        lines = (self.err or self.out).strip().splitlines()
        return lines[-1].strip() if lines else f"exit {self.rc}"


def run_command(argv: Sequence[str], *, timeout: float = 30.0, path: str | None = None) -> CommandResult:
    """Run a command, never raising: a missing program is rc 127, a hang rc 124. `path`: the PATH
    to find it on (default: the current one)."""
    exe = shutil.which(argv[0], path=path) if os.sep not in argv[0] else argv[0]
    if exe is None:
        return CommandResult(127, "", f"{argv[0]}: not found on PATH")
    try:
        p = subprocess.run([exe, *argv[1:]], capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return CommandResult(124, "", f"`{' '.join(argv)}` did not answer within {timeout:g} s")
    except OSError as exc:
        return CommandResult(126, "", f"{argv[0]}: {exc}")
    return CommandResult(p.returncode, p.stdout, p.stderr)


# --------------------------------------------------------------------------- conda

def conda_exe(which: Callable[[str], str | None] = shutil.which) -> str | None:
    """conda on PATH, else $CONDA_EXE (`conda activate` sets it even when conda's bin is not on PATH)."""
    found = which("conda")
    if found:
        return found
    env = os.environ.get("CONDA_EXE")
    return env if env and os.access(env, os.X_OK) else None


def parse_conda_envs(text: str) -> dict[str, str]:
    """`conda env list --json` -> {name: prefix}; the root env is 'base'. ValueError on bad JSON."""
    data = json.loads(text)
    root = data.get("root_prefix")
    return {("base" if p == root else Path(p).name): p for p in data.get("envs", [])}


def conda_envs(conda: str | None = None, *, run: Callable[..., Any] = run_command
               ) -> tuple[dict[str, str], str | None]:
    """({name: prefix}, None), or ({}, why) when conda is missing or does not answer."""
    conda = conda or conda_exe()
    if conda is None:
        return {}, "conda is not installed (not on PATH, no $CONDA_EXE)"
    res = run([conda, "env", "list", "--json"], timeout=120)
    if not res.ok:
        return {}, f"`conda env list --json` failed: {res.why()}"
    try:
        return parse_conda_envs(res.out), None
    except (ValueError, AttributeError):
        return {}, "`conda env list --json` printed no JSON"


# --------------------------------------------------------------------------- GPUs

@dataclass(frozen=True)
class GpuQuery:
    found: bool                 # nvidia-smi exists
    ok: bool                    # and answered
    rows: list[list[str]]       # one list of cells per GPU (or per process for compute-apps)
    reason: str | None          # why there are no rows

    @property
    def missing(self) -> bool:
        return not self.found


def query_gpus(fields: Sequence[str] = ("index", "name"), *, apps: bool = False, timeout: float = 30.0,
               run: Callable[..., Any] = run_command,
               which: Callable[[str], str | None] = shutil.which) -> GpuQuery:
    """`nvidia-smi --query-gpu=FIELDS --format=csv,noheader` (or --query-compute-apps with apps=True),
    split into cells. Cells may hold '[N/A]'; names never hold commas in practice."""
    if which("nvidia-smi") is None:
        return GpuQuery(False, False, [], "nvidia-smi not found on PATH")
    what = "--query-compute-apps" if apps else "--query-gpu"
    res = run(["nvidia-smi", f"{what}={','.join(fields)}", "--format=csv,noheader"], timeout=timeout)
    if res.rc == 124:
        return GpuQuery(True, False, [], f"nvidia-smi timed out after {timeout:g} s")
    if not res.ok:
        return GpuQuery(True, False, [], f"nvidia-smi exited {res.rc}: {res.why()}")
    rows = [[c.strip() for c in line.split(",")] for line in res.out.splitlines() if line.strip()]
    return GpuQuery(True, True, rows, None if rows else "nvidia-smi lists no GPUs")


# --------------------------------------------------------------------------- this process's start and exit

@contextmanager
def imports_without_gc(active: bool = True) -> Iterator[None]:
    """Import a job's libraries with the cyclic garbage collector off, then freeze what they made.

    torch, transformers, torchtune and inspect-ai create about a million objects while they load,
    nearly all of them alive until the process ends; the collector, triggered every few hundred
    allocations, walks them again and again (measured: an evaluation job 11.2 -> 9.8 CPU-s, a tiny
    torchtune training 5.7 -> 4.6). Afterwards gc.freeze() moves them to the permanent generation,
    where no later collection rescans them, and collection is back on for the job's own work, so
    a long training or evaluation still frees its reference cycles.

    active=False (the module was imported, not run: a test, another program) changes nothing."""
    if not active or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def exit_after(main: Callable[[], object]) -> NoReturn:
    """Run `main` and exit with its status as `sys.exit(main())` would, without tearing down every
    module and object first. With torch, transformers and inspect-ai loaded that teardown alone
    costs 1.5-2.5 CPU-s (measured: an evaluation job 11.9 -> 10.2 CPU-s, `ck status` 2.2 -> 1.8),
    paid by every job for nothing: the OS frees the memory at once.

    What a normal exit does that matters still happens, in its order (Py_FinalizeEx's): threads
    shut down as `threading` does it (executors' exit hooks, then every non-daemon thread joined),
    atexit handlers run (logging's flush, wandb's finish, multiprocessing's cleanup), stdout and
    stderr are flushed. A file object that nobody closed is not flushed by its finalizer; every
    writer in this package uses `with` or an atomic write. An exception other than SystemExit
    propagates (traceback, normal exit)."""
    try:
        code = main()
    except SystemExit as done:
        code = done.code
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): printed, status 1
        print(code, file=sys.stderr)
        status = 1
    shutdown = getattr(threading, "_shutdown", None)
    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if shutdown is None or run_exitfuncs is None or sys.getprofile() or sys.gettrace():
        # not CPython, or a profiler / debugger / tracer is watching (`python -m cProfile` writes its
        # output after main returns): the normal exit
        sys.exit(status)
    shutdown()
    run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            pass
    os._exit(status & 0xFF)
