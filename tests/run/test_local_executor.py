"""LocalExecutor against real bash processes: env, logs, dependencies, limits, GPUs, re-attach,
cancel, exit-code classification."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cruijff_kit.executors.core import JobSpec, JobState, SubmitError
from cruijff_kit.executors.resources import Resources
from cruijff_kit.executors.local import LocalExecutor
from cruijff_kit.util import procs

from .helpers import wait_for


def script(tmp: Path, name: str, body: str) -> Path:
    d = tmp / "exp" / name.split(".")[0]
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    p.write_text("#!/bin/bash\n" + body + "\n")
    return p


def spec(path: Path, key: str | None = None, gpus: int = 0, env=None) -> JobSpec:
    return JobSpec(key=key or path.stem, script=path, kind="finetune", run=path.parent.name,
                   resources=Resources(gpus_per_node=gpus), env=env or {})


def settle(ex: LocalExecutor, ids, timeout=15.0):
    def done():
        infos = ex.poll(ids)
        return infos if all(i.state.terminal for i in infos.values()) else None
    return wait_for(done, timeout=timeout, step=0.05)


def test_runs_script_from_its_dir_with_slurm_env_and_log_beside_it(tmp_path):
    s = script(tmp_path, "a.slurm", 'echo "pwd=$PWD id=$SLURM_JOB_ID dir=$SLURM_SUBMIT_DIR '
                                      'cuda=[$CUDA_VISIBLE_DEVICES] extra=$CK_TUNE_OVERRIDES"; echo err >&2; exit 0')
    ex = LocalExecutor(tmp_path / "exp", gpus=[])
    jid = ex.submit(spec(s, env={"CK_TUNE_OVERRIDES": "batch_size=2"}))
    assert jid == "local-1"
    info = settle(ex, [jid])[jid]
    assert info.state is JobState.COMPLETED and info.exit_code == 0
    log = s.parent / "slurm-local-1.out"
    assert info.log == log
    text = log.read_text()
    assert f"pwd={s.parent} id=local-1 dir={s.parent} cuda=[] extra=batch_size=2" in text
    assert "err" in text  # stderr goes to the same file
    # exit code recorded on disk by the wrapper, independent of the supervisor
    assert (tmp_path / "exp/.ck/local/jobs/1.exit").read_text().split()[0] == "0"
    # the counter is persisted: a new executor (new process) continues the numbering
    assert LocalExecutor(tmp_path / "exp", gpus=[]).submit(spec(s)) == "local-2"


@pytest.mark.parametrize("body,state,code", [
    ("exit 2", JobState.FAILED, 2),
    ("exit 137", JobState.OUT_OF_MEMORY, 137),
    ('echo "torch.OutOfMemoryError: CUDA out of memory."; exit 1', JobState.OUT_OF_MEMORY, 1),
    ("kill -TERM $$", JobState.FAILED, 143),
])
def test_exit_codes_are_classified(tmp_path, body, state, code):
    ex = LocalExecutor(tmp_path / "exp", gpus=[])
    jid = ex.submit(spec(script(tmp_path, "x.slurm", body)))
    info = settle(ex, [jid])[jid]
    assert (info.state, info.exit_code) == (state, code)


def test_dependency_completed_runs_failed_never(tmp_path):
    ex = LocalExecutor(tmp_path / "exp", max_parallel=4, gpus=[])
    ok = ex.submit(spec(script(tmp_path, "ok.slurm", "sleep 0.2")))
    bad = ex.submit(spec(script(tmp_path, "bad.slurm", "exit 1")))
    after_ok = ex.submit(spec(script(tmp_path, "ev1.slurm", "exit 0")), after=ok)
    after_bad = ex.submit(spec(script(tmp_path, "ev2.slurm", "exit 0")), after=bad)
    first = ex.poll([after_ok])[after_ok]
    assert first.state is JobState.PENDING and first.reason == "Dependency"
    infos = settle(ex, [ok, bad, after_ok, after_bad])
    assert infos[after_ok].state is JobState.COMPLETED
    assert infos[after_bad].state is JobState.DEPENDENCY_NEVER_SATISFIED
    assert not (tmp_path / "exp/ev2/slurm-local-4.out").exists()  # never started


def test_max_parallel_is_respected(tmp_path):
    marker = tmp_path / "m"
    ex = LocalExecutor(tmp_path / "exp", max_parallel=2, gpus=[])
    ids = [ex.submit(spec(script(tmp_path, f"j{i}.slurm",
                                 f'echo "s $(date +%s.%N)" >> {marker}; sleep 0.4; echo "e $(date +%s.%N)" >> {marker}')))
           for i in range(4)]
    seen_running = []
    def done():
        infos = ex.poll(ids)
        seen_running.append(sum(i.state is JobState.RUNNING for i in infos.values()))
        return all(i.state.terminal for i in infos.values())
    wait_for(done)
    assert max(seen_running) == 2
    events = sorted((float(t), k) for k, t in (line.split() for line in marker.read_text().splitlines()))
    level = peak = 0
    for _, kind in events:
        level += 1 if kind == "s" else -1
        peak = max(peak, level)
    assert peak == 2


def test_gpu_pool_hands_out_distinct_devices(tmp_path):
    ex = LocalExecutor(tmp_path / "exp", max_parallel=3, gpus=["0", "1"])
    body = 'echo "cuda=$CUDA_VISIBLE_DEVICES"; sleep 0.3'
    ids = [ex.submit(spec(script(tmp_path, f"g{i}.slurm", body), gpus=1)) for i in range(3)]
    cpu = ex.submit(spec(script(tmp_path, "cpu.slurm", 'echo "cuda=[$CUDA_VISIBLE_DEVICES]"')))
    infos = ex.poll(ids + [cpu])
    states = [infos[i].state for i in ids]
    assert states.count(JobState.RUNNING) == 2 and states.count(JobState.PENDING) == 1  # only 2 GPUs
    settle(ex, ids + [cpu])
    got = [(tmp_path / f"exp/g{i}/slurm-{jid}.out").read_text().strip() for i, jid in enumerate(ids)]
    assert sorted(got[:2]) == ["cuda=0", "cuda=1"] and got[2] in ("cuda=0", "cuda=1")
    assert (tmp_path / f"exp/cpu/slurm-{cpu}.out").read_text().strip() == "cuda=[]"
    with pytest.raises(SubmitError, match="asks for 3 GPU"):
        ex.submit(spec(script(tmp_path, "big.slurm", "true"), gpus=3))


def test_gpus_come_from_the_typed_resources_and_older_records_still_run(tmp_path):
    """The job record keeps the spec's Resources; a record an older ck queued ("gpus": N) is
    still given its N devices."""
    ex = LocalExecutor(tmp_path / "exp", max_parallel=2, gpus=["0", "1", "2"])
    body = 'echo "cuda=$CUDA_VISIBLE_DEVICES"'
    two = ex.submit(spec(script(tmp_path, "two.slurm", body), gpus=2))
    rec = json.loads((tmp_path / "exp/.ck/local/jobs/1.job.json").read_text())
    assert rec["resources"] == Resources(gpus_per_node=2).to_dict() and "gpus" not in rec
    old = ex.submit(spec(script(tmp_path, "old.slurm", body)))
    path = tmp_path / "exp/.ck/local/jobs/2.job.json"
    rec = json.loads(path.read_text())
    del rec["resources"]
    path.write_text(json.dumps({**rec, "gpus": 1}))
    settle(ex, [two, old])
    assert (tmp_path / f"exp/two/slurm-{two}.out").read_text().strip() == "cuda=0,1"
    assert (tmp_path / f"exp/old/slurm-{old}.out").read_text().strip() == "cuda=2"


def test_new_executor_reattaches_by_pid_and_reads_exit_code(tmp_path):
    flag = tmp_path / "go"
    s = script(tmp_path, "w.slurm", f"while [ ! -e {flag} ]; do sleep 0.05; done; exit 5")
    first = LocalExecutor(tmp_path / "exp", gpus=[])
    jid = first.submit(spec(s))
    assert first.poll([jid])[jid].state is JobState.RUNNING
    del first  # the supervisor "dies"; the job lives in its own session
    second = LocalExecutor(tmp_path / "exp", gpus=[])
    assert second.poll([jid])[jid].state is JobState.RUNNING
    flag.touch()
    info = settle(second, [jid])[jid]
    assert (info.state, info.exit_code) == (JobState.FAILED, 5)


def test_a_stranger_with_the_recorded_pid_is_not_our_job(tmp_path):
    ex = LocalExecutor(tmp_path / "exp", gpus=[])
    jid = ex.submit(spec(script(tmp_path, "s.slurm", "true")))
    rec_path = tmp_path / "exp/.ck/local/jobs/1.job.json"
    rec = json.loads(rec_path.read_text())
    # pretend it was launched as a pid that is alive now but started at another time (pid reuse)
    rec.update(phase="launched", pid=os.getpid(), pid_start=procs.start_time(os.getpid()) + 1)
    rec_path.write_text(json.dumps(rec))
    info = LocalExecutor(tmp_path / "exp", gpus=[]).poll([jid])[jid]
    assert info.state is JobState.FAILED and "without recording an exit code" in info.reason


def test_cancel_kills_the_whole_process_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    s = script(tmp_path, "c.slurm", f"sleep 30 & echo $! > {pidfile}; wait")
    ex = LocalExecutor(tmp_path / "exp", gpus=[])
    jid = ex.submit(spec(s))
    queued = ex.submit(spec(script(tmp_path, "q.slurm", "true")), after=jid)
    ex.poll([jid])
    child = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip()))
    ex.cancel([jid, queued])
    infos = ex.poll([jid, queued])
    assert infos[jid].state is JobState.CANCELLED and infos[queued].state is JobState.CANCELLED
    wait_for(lambda: not procs.is_alive(child), timeout=5)


def test_missing_script_is_refused(tmp_path):
    ex = LocalExecutor(tmp_path / "exp", gpus=[])
    with pytest.raises(SubmitError, match="not found"):
        ex.submit(spec(tmp_path / "nope.slurm"))
    assert not (tmp_path / "exp/.ck/local/jobs").exists()  # refused before anything was recorded
