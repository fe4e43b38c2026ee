"""`ck launch start / status / logs / stop / list` on real detached processes."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import CK

pytestmark = pytest.mark.slow  # real training, evaluation or training processes: `make test`, not test-fast

SLEEPER = """\
import sys, time
print("step 1", flush=True)
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 60)
print("done", flush=True)
sys.exit(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
"""


def test_start_status_alive_then_real_exit_code(ck, script_repo, wait_done, launch_env):
    repo = script_repo(SLEEPER)
    # 6 s of work: the status call below must land while it runs, and on a loaded 2-core CI machine
    # the start and status calls alone took over 2 s (a 2 s job had ended at -n 4)
    started = ck("launch", "start", repo, "--command", "python train.py 6 3", "--wait", "0.5", "--json",
                 env={"WANDB_MODE": None})
    assert started.rc == 0, started
    info = started.json
    run_id, pid = info["run_id"], info["pid"]
    assert set(info) >= {"run_id", "pid", "log"}
    assert info["alive"] is True and info["state"] == "running"

    status = ck("launch", "status", run_id, "--json").json
    assert status["alive"] is True and status["exit_code"] is None and status["elapsed_s"] >= 0
    assert status["resources"]["processes"] >= 2  # supervisor + python
    assert status["resources"]["rss_mib"] > 0

    final = wait_done(run_id)
    assert final == {**final, "alive": False, "state": "failed", "exit_code": 3}
    assert 5.5 <= final["elapsed_s"] < 30

    folder = launch_env / run_id
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["exit_code"] == 3 and meta["pid"] == pid
    assert (folder / "pid").read_text().strip() == str(pid)
    assert not list(folder.glob(".*.tmp")) and not (folder / "exit.json.tmp").exists()
    assert meta["env_vars"]["WANDB_MODE"] == "offline"  # no API key in the test environment
    assert "WANDB_API_KEY" not in (folder / "run.sh").read_text()

    logs = ck("launch", "logs", run_id, "--tail", "3")
    assert logs.rc == 0
    assert "step 1" in ck("launch", "logs", run_id).out and "done" in logs.out
    assert logs.out.strip().splitlines()[-1].endswith("with exit code 3")

    listed = ck("launch", "list", "--json").json
    assert [r["run_id"] for r in listed] == [run_id]


def test_start_reports_an_early_crash(ck, script_repo):
    repo = script_repo("raise SystemExit('bad config')\n")
    result = ck("launch", "start", repo, "--command", "python train.py", "--wait", "3", "--json")
    assert result.rc == 1
    assert result.json["alive"] is False and result.json["exit_code"] == 1
    assert "bad config" in "\n".join(result.json["log_tail"])


def test_stop_by_recorded_pid_and_pid_reuse_guard(ck, script_repo, launch_env):
    repo = script_repo(SLEEPER)
    run_id = ck("launch", "start", repo, "--command", "python train.py 60", "--wait", "0.3", "--json").json["run_id"]
    meta_file = launch_env / run_id / "meta.json"
    meta = json.loads(meta_file.read_text())

    # pretend the recorded pids now belong to a stranger (pid reuse): stop must signal nothing (for
    # ck none of the run's processes is alive, so there is nothing to stop: not an error)
    stranger = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        meta_file.write_text(json.dumps({**meta, "run_id": "someone-else", "pid": stranger.pid,
                                         "pgid": stranger.pid, "supervisor_pid": stranger.pid}))
        refused = ck("launch", "stop", run_id, "--json")
        assert refused.rc == 0 and refused.json["stopped"] is False and refused.json["signal_sent"] is None
        os.kill(meta["pid"], 0)  # still alive
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()
    meta_file.write_text(json.dumps(meta))

    stopped = ck("launch", "stop", run_id, "--json")
    assert stopped.rc == 0, stopped
    assert stopped.json["signal_sent"] == "SIGTERM"
    assert stopped.json["state"] == "stopped" and stopped.json["exit_code"] == 128 + signal.SIGTERM
    assert ck("launch", "status", run_id, "--json").json["alive"] is False
    # stopping it again (an agent's status-then-stop can race the run's own end) changes nothing
    again = ck("launch", "stop", run_id, "--json")
    assert again.rc == 0 and again.json["stopped"] is False and again.json["signal_sent"] is None
    assert again.json["state"] == "stopped" and again.json["exit_code"] == 128 + signal.SIGTERM

    diagnosis = ck("launch", "diagnose", run_id, "--json").json
    assert diagnosis["failure"] == "stopped" and "Stopped on request" in diagnosis["advice"]

    again = ck("launch", "stop", run_id)
    assert again.rc == 0 and "had already ended" in again.out and "nothing to stop" in again.out


def test_gpus_from_a_fake_nvidia_smi(ck, script_repo, tmp_path):
    """No GPU here: a fake nvidia-smi on PATH prints recorded output so --gpus is exercised for real."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "nvidia-smi"
    fake.write_text("#!/bin/sh\n"
                    "case \"$*\" in *query-gpu*) printf '0, NVIDIA A100-SXM4-80GB, 81920 MiB, 60000 MiB, 90 %%\\n"
                    "1, NVIDIA A100-SXM4-80GB, 81920 MiB, 2100 MiB, 3 %%\\n';; esac\n")
    fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}

    gpus = ck("launch", "gpus", "--json", env=env).json
    assert gpus["device"] == "cuda" and gpus["suggested"] == "1"
    assert [g["index"] for g in gpus["gpus"]] == [1, 0]
    assert gpus["gpus"][0]["description"] == "NVIDIA A100-SXM4-80GB — 2.1/80.0 GB used, 3% util"

    repo = script_repo("import os\nprint('visible=' + os.environ['CUDA_VISIBLE_DEVICES'])\n")
    run = ck("launch", "start", repo, "--command", "python train.py", "--gpus", "auto", "--wait", "2",
             "--json", env=env).json
    assert "visible=1" in ck("launch", "logs", run["run_id"]).out

    bad = ck("launch", "start", repo, "--command", "python train.py", "--gpus", "0,7", env=env)
    assert bad.rc == 2 and "no GPU with index 7" in bad.err
    no_gpu = ck("launch", "start", repo, "--command", "python train.py", "--gpus", "0")  # real PATH: none
    assert no_gpu.rc == 2 and "none are available" in no_gpu.err


def test_start_uses_the_venv_asked_for_and_creates_nothing(ck, script_repo, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    repo = script_repo("import sys\nprint('prefix=' + sys.prefix)\n")
    before = sorted(p.name for p in repo.iterdir())
    run = ck("launch", "start", repo, "--command", "python train.py", "--env", venv, "--wait", "2", "--json").json
    assert f"prefix={venv}" in ck("launch", "logs", run["run_id"]).out
    # no environment created; the only new entry is the link to the run's log (issue 11)
    assert sorted(p.name for p in repo.iterdir() if p.name != "experiment.log") == before
    assert (repo / "experiment.log").is_symlink()
    assert (repo / "experiment.log").resolve() == Path(run["log"]).resolve()

    # without --env: the user's python on PATH, never ck's own installation (it was, wrongly, before)
    run = ck("launch", "start", repo, "--command", "python train.py", "--wait", "2", "--json").json
    assert run["environment"]["source"] == "python on PATH"
    assert f"prefix={sys.prefix}\n" not in ck("launch", "logs", run["run_id"]).out


def test_bad_input_exits_2(ck, tmp_path, script_repo):
    assert ck("launch", "start", tmp_path / "nope", "--command", "python train.py").rc == 2
    repo = script_repo("print(1)\n")
    missing = ck("launch", "start", repo, "--command", "python missing.py", "--json")
    assert missing.rc == 2 and "entry point missing.py not found" in missing.json["error"]
    assert ck("launch", "start", repo, "--command", "python train.py", "--env", "no-such-env").rc == 2
    for sub in ("status", "logs", "stop", "diagnose"):
        result = ck("launch", sub, "no-such-run-1", "--json")
        assert result.rc == 2 and "unknown run id" in result.json["error"], sub
    assert ck("launch", "status", "../escape").rc == 2
    assert not Path(os.environ["CK_LAUNCH_HOME"]).exists()  # nothing written for bad input


def test_list_columns_repo_filter_iso_times_and_a_closed_pipe(ck, script_repo, wait_done, tmp_path):
    first, second = script_repo("print('a')\n"), script_repo("print('b')\n")
    runs = [ck("launch", "start", repo, "--command", "python train.py", "--wait", "0", "--json").json["run_id"]
            for repo in (first, second, first)]
    for run_id in runs:
        final = wait_done(run_id)
    assert final["state"] == "succeeded"
    for key in ("started", "ended"):  # one timestamp format: ISO 8601 with the UTC offset
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", final[key]), final[key]
    exit_record = json.loads((Path(final["state_dir"]) / "exit.json").read_text())
    assert exit_record["ended"] == final["ended"]

    listed = ck("launch", "list", "--repo", first, "--json").json
    assert [r["run_id"] for r in listed] == [runs[0], runs[2]]
    assert set(listed[0]) >= {"run_id", "repo", "environment", "state", "log"}
    assert listed[0]["repo"] == str(first.resolve()) and listed[0]["environment"].startswith("interpreter ")
    table = ck("launch", "list").out.splitlines()
    assert table[0].split("\t") == ["RUN_ID", "STATE", "ELAPSED_S", "REPO", "ENVIRONMENT", "LOG"]
    assert len(table) == 4

    # `ck launch list | head -1`: the reader has gone away before ck writes; no BrokenPipe traceback
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([*CK, "launch", "list"], stdout=write_end, stderr=subprocess.PIPE, text=True,
                              timeout=60, cwd=str(tmp_path))
    finally:
        os.close(write_end)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_a_run_that_ends_between_the_liveness_check_and_the_exit_record_is_not_killed(
        ck, script_repo, wait_done, launch_env, monkeypatch):
    """Under load `ck launch status` can read "no exit record" just before the supervisor writes it
    and "supervisor gone" just after it exits: that run ended normally, it was not killed."""
    from cruijff_kit.launch import process, state

    repo = script_repo("print('step 0 loss 1.0')\n")
    run_id = ck("launch", "start", repo, "--command", "python train.py", "--wait", "0", "--json").json["run_id"]
    wait_done(run_id)
    folder = launch_env / run_id
    # back to the moment before status saw the end: no exit code in meta.json, no exit record yet
    meta = json.loads((folder / state.META).read_text())
    for key in ("exit_code", "signal", "ended", "ended_approx", "loss_health"):
        meta.pop(key, None)
    (folder / state.META).write_text(json.dumps(meta))
    record = (folder / state.EXIT).read_text()
    (folder / state.EXIT).unlink()

    def supervisor_finishes_now(meta):  # it writes its record, then exits
        (folder / state.EXIT).write_text(record)
        return False

    monkeypatch.setattr(process, "_supervisor_alive", supervisor_finishes_now)
    st = process.status(run_id)
    assert st["state"] == "succeeded" and st["exit_code"] == 0, st
