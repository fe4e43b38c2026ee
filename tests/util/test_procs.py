"""The process toolkit (util/procs.py, util/supervise.py) on real processes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cruijff_kit.util import procs


def _run_supervised(tmp_path: Path, argv: list[str], grace: float = 5.0, wait: bool = True):
    pid_file, exit_file, log = tmp_path / "pid", tmp_path / "exit.json", tmp_path / "log"
    sup = procs.start_detached(procs.supervised(argv, pid_file=pid_file, exit_file=exit_file, grace_s=grace,
                                                label="t"), cwd=tmp_path, log=log)
    if wait:
        sup.wait(timeout=30)
    return sup, pid_file, exit_file, log


def test_supervisor_records_exit_codes_and_exec_failures(tmp_path):
    sup, _, exit_file, log = _run_supervised(tmp_path, [sys.executable, "-c", "import sys; sys.exit(3)"])
    assert sup.returncode == 3
    record = json.loads(exit_file.read_text())
    assert record["exit_code"] == 3 and record["signal"] is None and "T" in record["ended"]
    assert log.read_text().strip().endswith("with exit code 3")

    sup, _, exit_file, log = _run_supervised(tmp_path, ["ck-no-such-program-xyz"])
    assert json.loads(exit_file.read_text())["exit_code"] == 127
    assert "could not start ck-no-such-program-xyz" in log.read_text()


def test_supervisor_ends_what_the_command_left_behind(tmp_path):
    """The command exits; a child it started (in its group) and one it double-forked into a new
    session (re-parented to the subreaper) are both ended; SIGTERM-ignoring ones after the grace."""
    code = (
        "import os, subprocess, sys, time\n"
        "a = subprocess.Popen([sys.executable, '-c', 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
        "b = subprocess.Popen([sys.executable, '-c', 'import os, time\\nif os.fork() == 0:\\n    os.setsid(); time.sleep(60)'])\n"
        "b.wait(); time.sleep(0.3)\n"
        "print(a.pid, flush=True)\n"
    )
    sup, pid_file, exit_file, log = _run_supervised(tmp_path, [sys.executable, "-c", code], grace=1.0)
    assert json.loads(exit_file.read_text())["exit_code"] == 0
    ignoring = int(log.read_text().split()[0])
    assert not procs.is_alive(ignoring)
    command = int(pid_file.read_text())
    assert procs.find(lambda st: st.sid == sup.pid or st.pgrp == command) == []


def test_killing_the_command_is_recorded_as_its_signal(tmp_path):
    sup, pid_file, exit_file, _ = _run_supervised(tmp_path, ["sleep", "60"], wait=False)
    deadline = time.monotonic() + 10
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    pid = int(pid_file.read_text())
    assert procs.stat(pid).pgrp == pid and procs.stat(pid).sid == sup.pid
    os.kill(pid, signal.SIGKILL)
    sup.wait(timeout=30)
    assert json.loads(exit_file.read_text()) | {"ended": None} == {"exit_code": 137, "signal": "SIGKILL", "ended": None}


def test_terminate_escalates_to_sigkill_and_spares_strangers(tmp_path):
    stubborn = subprocess.Popen([sys.executable, "-c", "import signal, time\n"
                                 "signal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(60)"],
                                start_new_session=True, stdout=subprocess.PIPE)
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        stubborn.stdout.readline()
        sent = procs.terminate(lambda: procs.find(lambda st: st.pid == stubborn.pid), timeout_s=0.5)
        assert sent == "SIGKILL" and stubborn.wait(timeout=10) == -signal.SIGKILL
        assert stranger.poll() is None
        assert procs.terminate(lambda: [], timeout_s=1) is None
    finally:
        stranger.kill()
        stranger.wait()


def test_tails_read_from_the_end_only(tmp_path):
    log = tmp_path / "big.log"
    log.write_bytes(b"x" * (8 * 2**20) + b"".join(b"line %d\n" % i for i in range(100)))
    assert procs.tail_lines(log, 3) == ["line 97", "line 98", "line 99"]
    assert procs.tail_text(log, 8) == "line 99\n"
    assert len(procs.tail_lines(log, 10**6, max_bytes=2**16)) <= 2**16  # bounded however many lines asked
    assert procs.tail_lines(tmp_path / "missing", 5) == [] and procs.tail_text(tmp_path / "missing") == ""


def test_identity_is_pid_and_start_time():
    me = os.getpid()
    assert procs.is_alive(me) and procs.is_alive(me, procs.start_time(me))
    assert not procs.is_alive(me, procs.start_time(me) + 1)
    assert procs.has_env(me, "PATH", os.environ["PATH"])
    assert not procs.has_env(me, "PATH", os.environ["PATH"] + ":/nowhere")
    assert procs.signal_name(137) == "SIGKILL" and procs.signal_name(1) is None


def test_gpu_query_and_conda_envs_through_a_fake_path(tmp_path):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho \"$*\" > " + str(tmp_path / "args") + "\nprintf '0, NVIDIA H100 80GB HBM3\\n1, NVIDIA H100 80GB HBM3\\n'\n")
    fake.chmod(0o755)
    which = lambda name: str(fake) if name == "nvidia-smi" else None  # noqa: E731
    run = lambda argv, timeout: procs.run_command([str(fake), *argv[1:]], timeout=timeout)  # noqa: E731
    q = procs.query_gpus(("index", "name"), run=run, which=which)
    assert q.ok and q.rows == [["0", "NVIDIA H100 80GB HBM3"], ["1", "NVIDIA H100 80GB HBM3"]]
    assert (tmp_path / "args").read_text().split() == ["--query-gpu=index,name", "--format=csv,noheader"]
    assert procs.query_gpus(which=lambda name: None).missing

    text = json.dumps({"root_prefix": "/opt/conda", "envs": ["/opt/conda", "/opt/conda/envs/ft"]})
    assert procs.parse_conda_envs(text) == {"base": "/opt/conda", "ft": "/opt/conda/envs/ft"}
    envs, why = procs.conda_envs("/no/such/conda")
    assert envs == {} and "failed" in why


EXIT_AFTER_PROGRAM = r'''
import atexit, concurrent.futures, logging, sys, threading, time
from pathlib import Path
from cruijff_kit.util.procs import exit_after

out = Path(sys.argv[1])
mode = sys.argv[2]

def main():
    logging.basicConfig(filename=out / "log.txt", level=logging.INFO)
    logging.info("logged")  # logging's own atexit hook flushes and closes the file
    atexit.register(lambda: (out / "atexit.txt").write_text("ran"))
    def late():
        time.sleep(0.5)
        (out / "thread.txt").write_text("joined")
    threading.Thread(target=late).start()  # a non-daemon thread: waited for, as on a normal exit
    pool = concurrent.futures.ThreadPoolExecutor(1)  # an idle executor: its exit hook releases it
    pool.submit(lambda: None).result()
    print("no newline", end="")  # still in stdout's buffer
    if mode == "return":
        return 3
    if mode == "message":
        sys.exit("bad config")
    sys.exit()

exit_after(main)
'''


def test_exit_after_keeps_what_a_normal_exit_does_and_its_status(tmp_path):
    program = tmp_path / "job.py"
    program.write_text(EXIT_AFTER_PROGRAM)
    profile = tmp_path / "job.prof"
    for mode, status, err, python in (("return", 3, "", [sys.executable]),
                                      ("message", 1, "bad config", [sys.executable]),
                                      ("none", 0, "", [sys.executable]),
                                      # a profiler writes its output after main: the normal exit
                                      # (cProfile swallows SystemExit: its status is 0)
                                      ("return", 0, "", [sys.executable, "-m", "cProfile", "-o", str(profile)])):
        out = tmp_path / f"{mode}{len(python)}"
        out.mkdir()
        r = subprocess.run([*python, str(program), str(out), mode], capture_output=True, text=True, timeout=60)
        assert r.returncode == status and r.stdout == "no newline" and r.stderr.strip() == err, (mode, r)
        assert (out / "atexit.txt").read_text() == "ran"
        assert (out / "thread.txt").read_text() == "joined"
        assert "logged" in (out / "log.txt").read_text()
    assert profile.stat().st_size > 0


IMPORTS_WITHOUT_GC_PROGRAM = r'''
import gc, json, sys, weakref
from cruijff_kit.util.procs import imports_without_gc

seen = {}
with imports_without_gc(active=sys.argv[1] == "run"):
    seen["inside"] = gc.isenabled()
    import email.mime.multipart  # a real import, made while the collector is off (or not)
seen["after"], seen["frozen"] = gc.isenabled(), gc.get_freeze_count()
try:
    with imports_without_gc():
        raise ImportError("a failed import")
except ImportError:
    pass
seen["after_an_exception"] = gc.isenabled()


class Node:
    pass


# the job's own work: a reference cycle made after the imports is still collected
a, b = Node(), Node()
a.other, b.other = b, a
alive = weakref.ref(a)
del a, b
gc.collect()
seen["cycle_freed"] = alive() is None
print(json.dumps(seen))
'''


def test_imports_without_gc_pauses_then_freezes_and_collects_the_jobs_cycles(tmp_path):
    program = tmp_path / "job.py"
    program.write_text(IMPORTS_WITHOUT_GC_PROGRAM)
    seen = {}
    for mode in ("run", "imported"):
        r = subprocess.run([sys.executable, str(program), mode], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        seen[mode] = json.loads(r.stdout)
    # run as a job: collection off while importing, back on after, import-time objects frozen
    assert seen["run"]["inside"] is False and seen["run"]["after"] is True and seen["run"]["frozen"] > 1000
    # imported by someone else (active=False): the collector untouched, nothing frozen
    assert seen["imported"]["inside"] is True and seen["imported"]["after"] is True
    assert seen["imported"]["frozen"] == 0
    for mode in seen.values():  # a failed import turns collection back on; the job's own cycles are freed
        assert mode["after_an_exception"] is True and mode["cycle_freed"] is True
