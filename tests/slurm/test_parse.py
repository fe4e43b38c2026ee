"""Pure parsing: recorded squeue / sacct / sbatch outputs (tests/slurm/recorded/) -> JobInfo / SubmitError."""
from __future__ import annotations

from pathlib import Path

import pytest

from cruijff_kit.executors.core import JobState, SubmitError, SubmitLimitReached
from cruijff_kit.executors.slurm.parse import (
    decode_sacct_exit,
    decode_wait_status,
    explain_refusal,
    parse_sacct,
    parse_sbatch,
    parse_squeue,
    requested_options,
    sacct_starttime,
    slurm_state,
)

REC = Path(__file__).parent / "recorded"


@pytest.mark.parametrize("tz, want", [
    ("UTC0", {"2026-12-07T20:52:18+00:00": "2026-12-07T20:42:18", "2026-12-07T15:52:18-05:00": "2026-12-07T20:42:18",
              "2026-12-07T20:52:18": "2026-12-07T20:42:18"}),
    ("EST5", {"2026-12-07T20:52:18+00:00": "2026-12-07T15:42:18", "2026-12-07T15:52:18-05:00": "2026-12-07T15:42:18",
              "2026-12-07T20:52:18": "2026-12-07T20:42:18"}),  # a naive stamp is already local time
])
def test_sacct_starttime_is_local_wall_time_without_an_offset(monkeypatch, tz, want):
    import time

    # the ledger's intents are aware stamps; sacct refuses any offset ("Invalid time specification")
    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        assert {stamp: sacct_starttime(stamp) for stamp in want} == want  # 10 minutes early, local
        assert sacct_starttime("not a time") == "1970-01-01T00:00:00"  # unreadable: ask from the start
    finally:
        monkeypatch.undo()
        time.tzset()


def test_sbatch_parsable_plain_cluster_and_warnings():
    assert parse_sbatch("123\n") == ("123", None)
    assert parse_sbatch("4567;hpc\n") == ("4567", "hpc")
    assert parse_sbatch("sbatch: warning: can't honor --ntasks-per-node\n89\n") == ("89", None)
    with pytest.raises(ValueError):
        parse_sbatch("Submitted batch job 12\n")


def test_squeue_recorded_states_exit_codes_and_times():
    infos = parse_squeue((REC / "squeue_mixed.txt").read_text())
    assert set(infos) == {str(i) for i in range(14, 22)}
    st = {j: i.state for j, i in infos.items()}
    assert st["14"] is JobState.RUNNING
    assert st["15"] is JobState.FAILED and infos["15"].exit_code == 3  # wait status 768
    assert st["16"] is JobState.PENDING and infos["16"].reason == "Dependency"
    assert st["17"] is JobState.DEPENDENCY_NEVER_SATISFIED  # pending forever (no kill-on-invalid-dep)
    assert st["18"] is JobState.DEPENDENCY_NEVER_SATISFIED  # killed by --kill-on-invalid-dep=yes
    assert st["19"] is JobState.CANCELLED and infos["19"].exit_code == 128 + 15
    assert st["20"] is JobState.COMPLETED and infos["20"].exit_code == 0
    assert st["21"] is JobState.FAILED and infos["21"].exit_code == 128 + 9
    # running: start known, end is only SLURM's time-limit estimate; pending: no times
    assert infos["14"].started == "2026-11-22T06:48:53" and infos["14"].ended is None
    assert infos["16"].started is None and infos["16"].ended is None
    assert infos["20"].ended == "2026-11-22T06:48:56"
    assert infos["14"].log == Path("/tmp/sx/slurm-14.out")  # '%j' expanded
    assert infos["20"].log == Path("/tmp/sx/slurm-20.out")
    assert infos["17"].exit_code is None  # never ran


def test_sacct_recorded_incl_cancelled_by_uid():
    infos = parse_sacct((REC / "sacct_mixed.txt").read_text())
    assert infos["15"].state is JobState.FAILED and infos["15"].exit_code == 3
    assert infos["19"].state is JobState.CANCELLED and infos["19"].reason == "CANCELLED by 0"
    assert infos["18"].state is JobState.DEPENDENCY_NEVER_SATISFIED  # plain CANCELLED + Dependency
    assert infos["17"].state is JobState.DEPENDENCY_NEVER_SATISFIED
    assert infos["20"].state is JobState.COMPLETED and infos["20"].exit_code == 0
    assert infos["21"].exit_code == 128 + 9
    assert infos["14"].state is JobState.RUNNING and infos["14"].exit_code is None and infos["14"].ended is None
    assert infos["16"].started is None
    assert infos["20"].log == Path("/tmp/sx/slurm-20.out")


@pytest.mark.parametrize("row, state, code", [
    # hand-written in sacct's layout: these states need cgroups / time / preemption to produce
    ("7|TIMEOUT|0:0|2026-01-01T00:00:00|2026-01-01T01:00:00|TimeLimit|/w", JobState.TIMEOUT, 0),
    ("7|OUT_OF_MEMORY|0:125|2026-01-01T00:00:00|2026-01-01T00:01:00|OutOfMemory|/w", JobState.OUT_OF_MEMORY, 253),
    ("7|NODE_FAIL|1:0|2026-01-01T00:00:00|2026-01-01T00:01:00|NodeDown|/w", JobState.NODE_FAIL, 1),
    ("7|PREEMPTED|0:15|2026-01-01T00:00:00|2026-01-01T00:01:00|None|/w", JobState.PREEMPTED, 143),
    ("7|CANCELLED by 1234|0:15|2026-01-01T00:00:00|2026-01-01T00:01:00|None|/w", JobState.CANCELLED, 143),
    ("7|BOOT_FAIL|0:0|Unknown|2026-01-01T00:01:00|None|/w", JobState.NODE_FAIL, 0),
    ("7|DEADLINE|0:0|Unknown|2026-01-01T00:01:00|None|/w", JobState.TIMEOUT, 0),
])
def test_sacct_other_terminal_states(row, state, code):
    info = parse_sacct(row)["7"]
    assert info.state is state and info.state.terminal and info.exit_code == code


def test_sacct_ignores_steps_and_noise():
    text = "sacct: warning: something\n8|COMPLETED|0:0|a|b|None|/w\n8.batch|COMPLETED|0:0|a|b|None|/w\n"
    assert list(parse_sacct(text)) == ["8"]


def test_state_words():
    assert slurm_state("COMPLETING") is JobState.RUNNING  # exit code not final yet
    assert slurm_state("REQUEUED") is JobState.PENDING
    assert slurm_state("CANCELLED+") is JobState.CANCELLED
    assert slurm_state("SOMETHING_NEW") is JobState.UNKNOWN
    assert decode_wait_status(768) == 3 and decode_wait_status(9) == 137 and decode_wait_status(0) == 0
    assert decode_sacct_exit("2:0") == 2 and decode_sacct_exit("0:9") == 137 and decode_sacct_exit("") is None


def test_requested_options_headers_then_cli_override():
    script = "#!/bin/bash\n#SBATCH --partition=gpu\n#SBATCH -c 4\n#SBATCH --mem 40G # comment\n\necho hi\n#SBATCH --qos=late\n"
    got = requested_options(script, ["-p", "debug", "--gres=gpu:2"])
    assert got == {"partition": "debug", "cpus-per-task": "4", "mem": "40G", "gres": "gpu:2"}
    assert "qos" not in got  # sbatch stops reading #SBATCH at the first command


def _refusals() -> dict[str, str]:
    blocks, key = {}, None
    for line in (REC / "sbatch_refusals.txt").read_text().splitlines():
        if line.startswith("== "):
            key = line[3:]
            blocks[key] = ""
        else:
            blocks[key] += line + "\n"
    return blocks


@pytest.mark.parametrize("opt, req, setting, words", [
    ("-p nope", {"partition": "nope"}, "slurm.partition", "partition 'nope' does not exist"),
    ("--mem=100G", {"mem": "100G"}, "slurm.mem", "--mem=100G"),
    ("--gres=gpu:1", {"gres": "gpu:1"}, "slurm.gpus", "--gres=gpu:1"),
    ("-c 4", {"cpus-per-task": "4"}, "slurm.cpus", "--cpus-per-task=4"),
    ("-N 2", {"nodes": "2"}, "slurm.nodes", "'2'"),
    ("--constraint=a100", {"constraint": "a100"}, "slurm.constraint", "'a100'"),
    ("-t 0-bad", {"time": "0-bad"}, "slurm.time", "'0-bad'"),
])
def test_refusals_name_the_setting_and_value(opt, req, setting, words):
    err = explain_refusal(_refusals()[opt], Path("/x/run/finetune.slurm"), req, ["debug (default)"])
    assert isinstance(err, SubmitError)
    assert err.field == setting and err.file == "/x/run/finetune.slurm"
    assert words in err.message and "sbatch: error" in err.message
    assert setting in err.hint and "claude.local.md" in err.hint


def test_refusal_partition_lists_partitions_and_unreachable_controller():
    err = explain_refusal(_refusals()["-p nope"], Path("f.slurm"), {"partition": "nope"}, ["debug (default)", "gpu"])
    assert "partitions on this cluster: debug (default), gpu" in str(err)
    down = explain_refusal("sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)",
                           Path("f.slurm"), {})
    assert "could not reach the SLURM controller" in down.message and down.field is None
    other = explain_refusal("sbatch: error: something new", Path("f.slurm"), {})
    assert "something new" in other.message


@pytest.mark.parametrize("opt", ["--qos=cklimit3 (4th job; QOS MaxSubmitJobsPerUser=3)",
                                 "association MaxSubmitJobs=1, 2nd job"])
def test_submit_limit_refusals_mean_wait_not_fail(opt):
    err = explain_refusal(_refusals()[opt], Path("/x/run/finetune.slurm"), {})
    assert isinstance(err, SubmitLimitReached)
    assert "MaxSubmitJob" in err.message and err.field == "slurm_max_submitted"


@pytest.mark.parametrize("opt", ["--qos=nope", "-t 0-bad", "-p nope", "--mem=100G"])
def test_other_refusals_are_not_limits(opt):
    # "time limits" appears in the limit message: a bad --time must still be a hard refusal
    err = explain_refusal(_refusals()[opt], Path("/x/f.slurm"), {})
    assert isinstance(err, SubmitError) and not isinstance(err, SubmitLimitReached)
