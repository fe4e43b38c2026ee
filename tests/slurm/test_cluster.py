"""SlurmExecutor against the real single-node cluster of scripts/local-slurm (see conftest.py)."""
from __future__ import annotations

import subprocess
import time
import uuid

import pytest

from cruijff_kit.executors.core import JobSpec, JobState, SubmitError

from .conftest import wait_terminal, write_script

pytestmark = pytest.mark.slurm


def spec(script, **kw) -> JobSpec:
    return JobSpec(key=f"{script.parent.name}/{script.stem}", script=script, kind=kw.pop("kind", "eval"),
                   run=script.parent.name, **kw)


def test_trivial_job_completes_from_its_own_directory(executor, tmp_path):
    s = write_script(tmp_path / "run1", 'echo "cwd=$(pwd)"; echo "env=$CK_TEST_VALUE"')
    sp = spec(s, env={"CK_TEST_VALUE": "it travels"})
    j = executor.submit(sp)
    info = wait_terminal(executor, [j])[j]
    assert info.state is JobState.COMPLETED and info.exit_code == 0
    assert info.started and info.ended
    assert info.log == executor.log_path(sp, j) == tmp_path / "run1" / f"slurm-{j}.out"
    out = info.log.read_text()
    assert f"cwd={tmp_path / 'run1'}" in out and "env=it travels" in out


def test_failing_job_reports_its_exit_code(executor, tmp_path):
    j = executor.submit(spec(write_script(tmp_path / "run", "echo boom >&2; exit 3")))
    info = wait_terminal(executor, [j])[j]
    assert info.state is JobState.FAILED and info.exit_code == 3
    assert "boom" in info.log.read_text()


def test_eval_chained_on_training_runs_after_it_or_never(executor, tmp_path):
    ok = executor.submit(spec(write_script(tmp_path / "good", "sleep 1"), kind="finetune"))
    bad = executor.submit(spec(write_script(tmp_path / "bad", "sleep 1; exit 7"), kind="finetune"))
    ok_eval = executor.submit(spec(write_script(tmp_path / "good" / "eval", "echo evaluated")), after=ok)
    bad_eval = executor.submit(spec(write_script(tmp_path / "bad" / "eval", "echo evaluated")), after=bad)
    infos = wait_terminal(executor, [ok, bad, ok_eval, bad_eval])
    assert infos[ok].state is JobState.COMPLETED
    assert infos[bad].state is JobState.FAILED and infos[bad].exit_code == 7
    assert infos[ok_eval].state is JobState.COMPLETED
    assert infos[ok_eval].started >= infos[ok].ended  # ISO strings order like times
    assert infos[bad_eval].state is JobState.DEPENDENCY_NEVER_SATISFIED
    assert not (tmp_path / "bad" / "eval" / f"slurm-{bad_eval}.out").exists()  # never ran
    # --kill-on-invalid-dep=yes: it is gone from the queue, not pending forever
    q = subprocess.run(["squeue", "--noheader", f"--jobs={bad_eval}", "--format=%T"], capture_output=True, text=True)
    assert q.stdout.strip() == ""


def test_scancel_running_job(executor, tmp_path):
    j = executor.submit(spec(write_script(tmp_path / "run", "echo started; sleep 60")))
    deadline = time.monotonic() + 30
    while executor.poll([j])[j].state is not JobState.RUNNING:
        assert time.monotonic() < deadline, "job never started"
        time.sleep(0.2)
    executor.cancel([j])
    info = wait_terminal(executor, [j], timeout=30)[j]
    assert info.state is JobState.CANCELLED
    executor.cancel([j])  # finished ids are ignored, no error


@pytest.mark.parametrize("args, setting, words", [
    (["--partition=nope"], "slurm.partition", "partition 'nope' does not exist"),
    (["--mem=64T"], "slurm.mem", "--mem=64T"),
])
def test_sbatch_refusal_names_the_setting_and_submits_nothing(executor, tmp_path, args, setting, words):
    name = f"refused-{uuid.uuid4().hex[:8]}"
    s = write_script(tmp_path / "run", "true", f"--job-name={name}")
    with pytest.raises(SubmitError) as e:
        executor.submit(spec(s, sbatch_args=args))
    err = e.value
    assert err.field == setting and words in err.message and "sbatch: error" in err.message
    assert setting in err.hint and err.file == str(s)
    if setting == "slurm.partition":
        assert "debug" in err.hint  # the partitions that do exist
    # No job id reached us, so nothing can be recorded as submitted. slurmctld itself may keep a
    # record of a memory refusal (JobState=FAILED Reason=BadConstraints): it never ran.
    q = subprocess.run(["squeue", "--noheader", "--states=all", f"--name={name}", "--format=%T|%r"],
                       capture_output=True, text=True)
    assert q.stdout.strip() in ("", "FAILED|BadConstraints")
    assert [p.name for p in s.parent.iterdir()] == [s.name]  # no slurm-<id>.out: it never ran


@pytest.mark.parametrize("request_", ["--gres=gpu:1", "--gpus=1"])
def test_gpu_job_accepted_on_fake_gpu_node(executor, tmp_path, request_):
    gres = subprocess.run(["sinfo", "--noheader", "--format=%G"], capture_output=True, text=True).stdout
    if "gpu" not in gres:
        pytest.skip(f"the running cluster has no fake GPUs (sinfo %G: {gres.strip()!r}); "
                    "restart it with LOCAL_SLURM_FAKE_GPUS=2 scripts/local-slurm start")
    j = executor.submit(spec(write_script(tmp_path / "gpu", 'echo "CVD=${CUDA_VISIBLE_DEVICES:-unset}"', request_)))
    info = wait_terminal(executor, [j])[j]
    assert info.state is JobState.COMPLETED
    assert "CVD=0" in info.log.read_text() or "CVD=1" in info.log.read_text()


def test_polling_many_jobs_costs_at_most_two_calls_per_cycle(executor, tmp_path):
    s = write_script(tmp_path / "many", "true")
    ids = [executor.submit(spec(s)) for _ in range(25)]
    assert executor.calls["sbatch"] == 25
    cycles = 0
    while True:
        before = executor.scheduler_calls
        infos = executor.poll(ids)
        cycles += 1
        assert executor.scheduler_calls - before <= 2
        assert executor.calls["sacct"] == 0  # slurmctld still knows them all: squeue suffices
        if all(i.state.terminal for i in infos.values()):
            break
        assert cycles < 200, infos
        time.sleep(0.3)
    assert all(i.state is JobState.COMPLETED for i in infos.values())
    before = executor.scheduler_calls
    executor.poll(ids)
    assert executor.scheduler_calls == before  # finished jobs are never asked about again


def test_sacct_path_on_real_accounting(executor, tmp_path):
    # slurmctld keeps finished jobs for MinJobAge (300 s, the default), so call the sacct half directly to check
    # that real accounting rows parse as squeue's do.
    ok = executor.submit(spec(write_script(tmp_path / "a", "true")))
    bad = executor.submit(spec(write_script(tmp_path / "b", "exit 5")))
    wait_terminal(executor, [ok, bad])
    deadline = time.monotonic() + 20
    while True:  # slurmdbd records job ends asynchronously
        acct, err = executor._sacct([ok, bad])
        if err is None and all(acct.get(j) and acct[j].state.terminal for j in (ok, bad)):
            break
        assert time.monotonic() < deadline, (acct, err)
        time.sleep(0.5)
    assert acct[ok].state is JobState.COMPLETED and acct[ok].exit_code == 0
    assert acct[bad].state is JobState.FAILED and acct[bad].exit_code == 5


def test_find_tagged_since_an_intents_aware_stamp_finds_the_submission(executor, tmp_path):
    # the resume after `ck run` died between sbatch and recording the job id: the ledger's intent
    # holds an aware stamp (now_iso(), with its UTC offset), and sacct must accept what it becomes
    from cruijff_kit.util.formats import now_iso

    since = now_iso()
    tag = f"ck-{uuid.uuid4().hex[:16]}-1-run/eval/epoch0"
    j = executor.submit(spec(write_script(tmp_path / "run", "true"), tag=tag))
    wait_terminal(executor, [j])
    never = f"ck-{uuid.uuid4().hex[:16]}-1-run/finetune"
    found = executor.find_tagged([tag, never], since=since)
    assert [i.job_id for i in found[tag]] == [j] and found[tag][0].state is JobState.COMPLETED
    assert found[never] == []


def test_directory_with_spaces_and_shell_metacharacters(executor, tmp_path):
    weird = tmp_path / "run $(touch PWNED) ;`touch PWNED2` 'q\" & x"
    s = write_script(weird, 'printf "cwd=%s\\n" "$(pwd)"')
    j = executor.submit(spec(s))
    info = wait_terminal(executor, [j])[j]
    assert info.state is JobState.COMPLETED
    assert info.log.parent == weird and f"cwd={weird}" in info.log.read_text()
    assert not list(tmp_path.rglob("PWNED*"))
