"""Exactly once, results validated before they count, experiments as places, a read-only status.

Crashes are real: a child process runs `ck run` with the executor's submit wrapped so that the
process dies (os._exit, like kill -9: no finally, no atexit) right before or right after the
scheduler accepted the job."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cruijff_kit.cli import main
from cruijff_kit.errors import CkError
from cruijff_kit.state.ledger import Ledger

from .helpers import SUMMARY, FakeRun, make_experiment, starts
from .helpers import by_key, run

CRASH = r"""
import os, sys
from cruijff_kit.executors.local import LocalExecutor
from cruijff_kit.cli import main
when = sys.argv[1]
real = LocalExecutor.submit
def submit(self, spec, after=None):
    if when == "before":
        os._exit(137)
    job_id = real(self, spec, after)
    os._exit(137)
LocalExecutor.submit = submit
sys.exit(main(["run", sys.argv[2], "--executor", "local", "--poll", "0.2", "--gpus", "none"]))
"""


def crash_run(exp: Path, when: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    p = subprocess.run([sys.executable, "-c", CRASH, when, str(exp)], capture_output=True, text=True,
                       timeout=60, env=env)
    assert p.returncode == 137, p.stderr


@pytest.mark.parametrize("when", ["before", "after"])
def test_crash_around_submit_then_run_submits_each_job_exactly_once(tmp_path, when):
    exp = make_experiment(tmp_path, [FakeRun("a", sleep=0.5)])
    crash_run(exp, when)
    entry = Ledger(exp).entry("a/finetune")
    assert entry["intent"]["tag"].endswith("-1-a/finetune") and entry.get("job_id") is None
    from cruijff_kit.run.status import experiment_status

    status = {j["key"]: j for j in experiment_status(exp)["jobs"]}
    assert status["a/finetune"]["submitting"] and status["a/finetune"]["state"] == ""
    report = run(exp)
    assert all(j.ok for j in report.jobs), report.to_dict()
    assert len(starts(exp, "a/finetune")) == 1 and len(starts(exp, "a/eval/cap_epoch0")) == 1
    jobs = list((exp / ".ck/local/jobs").glob("*.job.json"))
    assert len(jobs) == 2  # the crashed submission was adopted, not repeated
    entry = Ledger(exp).entry("a/finetune")
    assert "intent" not in entry and len(entry["attempts"]) == 1
    log = (exp / "run-experiment.log").read_text()
    assert ("submission found at the scheduler" in log) == (when == "after")


def test_truncated_eval_log_and_emptied_checkpoint_are_run_again(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("a"), FakeRun("b")])
    assert all(j.ok for j in run(exp).jobs)
    log = exp / "a/eval/logs/cap_epoch0.eval"
    log.write_bytes(log.read_bytes()[: log.stat().st_size // 2])  # a copy cut short
    shard = tmp_path / "outputs/ck-out-b/epoch_0/model-00001-of-00001.safetensors"
    shard.write_bytes(b"")
    again = run(exp)
    jobs = by_key(again)
    assert jobs["a/eval/cap_epoch0"].action == "submit" and jobs["a/finetune"].action == "done"
    assert jobs["b/finetune"].action == "submit" and jobs["b/eval/cap_epoch0"].action == "submit"
    assert all(j.ok for j in again.jobs), again.to_dict()
    assert len(starts(exp, "a/eval/cap_epoch0")) == 2 and len(starts(exp, "a/finetune")) == 1
    assert len(starts(exp, "b/finetune")) == 2 and len(starts(exp, "b/eval/cap_epoch0")) == 2


@pytest.mark.parametrize("name,content", [
    ("ck_checkpoint.json", '{"base_model": "/m", "adapter_only": tr'),  # cut short mid-write
    ("ck_checkpoint.json", '["not", "an", "object"]'),
    ("ck_checkpoint.json", '{"adapter_only": true}'),  # no base model: the adapter cannot be merged
    ("config.json", "\x00\x00\x00"),
    ("tokenizer_config.json", ""),
])
def test_an_unloadable_small_file_makes_the_checkpoint_incomplete(tmp_path, name, content):
    exp = make_experiment(tmp_path, [FakeRun("a")])
    assert all(j.ok for j in run(exp).jobs)
    (tmp_path / "outputs/ck-out-a/epoch_0" / name).write_text(content)
    assert by_key(run(exp, dry_run=True))["a/finetune"].action == "submit"


def test_an_adapter_whose_config_does_not_parse_is_not_complete(tmp_path):
    from cruijff_kit.state.artifacts import checkpoint_problems

    from .helpers import write_weights

    epoch = tmp_path / "epoch_0"
    epoch.mkdir()
    write_weights(epoch / "adapter_model.safetensors")
    (epoch / "adapter_config.json").write_text('{"r": 8, "target_modules": ["q_proj"]}')
    assert checkpoint_problems(epoch) == []
    (epoch / "adapter_config.json").write_text('{"r": 8, "target_mod')
    assert checkpoint_problems(epoch) == ["adapter_config.json: not valid JSON (truncated or corrupt)"]
    (epoch / "adapter_config.json").write_text("[" * 100_000 + "]" * 100_000)  # nesting is no crash
    assert checkpoint_problems(epoch)


def test_a_changed_evaluation_is_a_new_evaluation(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("a")])
    run(exp)
    script = exp / "a/eval/cap_epoch0.slurm"
    script.write_text(script.read_text().replace("#SBATCH --job-name=ev", "#SBATCH --job-name=ev2"))
    report = run(exp)
    job = by_key(report)["a/eval/cap_epoch0"]
    # the old log (of the old script) does not count; the re-run's staged log is also the old
    # evaluation's, so the job is not a result either: exit 0 without its artifact
    assert job.action == "submit" and not job.ok and "no successful .eval log" in job.note


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(root.rglob("*"))}


def test_copied_experiment_never_touches_the_originals_outputs(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("a")])
    run(exp)
    outputs = tmp_path / "outputs"
    before = _snapshot(outputs), _snapshot(exp)
    copy = tmp_path / "copy"
    shutil.copytree(exp, copy, symlinks=True)
    with pytest.raises(CkError, match="copied from") as err:
        run(copy)
    assert err.value.exit_code == 2
    # ck status prints the same error, and exits non-zero with it (an agent reads the exit status)
    for json_flag in ([], ["--json"]):
        result = subprocess.run([sys.executable, "-m", "cruijff_kit", "status", str(copy), *json_flag],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and "copied from" in result.stdout + result.stderr
    assert subprocess.run([sys.executable, "-m", "cruijff_kit", "status", str(exp)], capture_output=True,
                          timeout=120).returncode == 0
    shutil.move(copy / ".ck", copy / ".ck.copied")
    with pytest.raises(CkError, match="belongs to experiment"):  # output_dir claimed by the original
        run(copy)
    assert (_snapshot(outputs), _snapshot(exp)) == before
    assert len(starts(exp)) == 2  # nothing ran for the copy


def test_output_dir_inside_another_experiment_is_refused(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("a")])
    other = tmp_path / "other"
    other.mkdir()
    (other / "experiment_summary.md").write_text(SUMMARY)
    setup = exp / "a/setup_finetune.yaml"
    setup.write_text(setup.read_text().replace(str(tmp_path / "outputs"), str(other / "outputs")))
    with pytest.raises(CkError, match="inside another experiment"):
        run(exp)
    assert starts(exp) == []


def test_moved_experiment_is_rehomed_and_redoes_nothing(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("a")])
    run(exp)
    moved = tmp_path / "moved"
    exp.rename(moved)
    report = run(moved)
    assert report.submitted == [] and all(j.action == "done" for j in report.jobs)
    ident = json.loads((moved / ".ck/experiment.json").read_text())
    assert ident["path"] == str(moved.resolve()) and ident["moved_from"] == str(exp.resolve())


REAL_SUMMARY = """# fake
## Tools
- **Model Preparation:** torchtune
- **Evaluation:** inspect-ai
## Resources
### Models
- **Llama-3.2-1B-Instruct:** /models/Llama-3.2-1B-Instruct
### Dataset
- **Path:** /data/words.json
## Configuration
- **Epochs:** 1
## All Runs
| Run Name | Model | LoRA Rank | Learning Rate | Batch Size | Type | Est. Time |
|---|---|---|---|---|---|---|
| r8 | Llama-3.2-1B-Instruct | 8 | 1e-5 | 4 | Fine-tuned | ~10s |
| r32 | Llama-3.2-1B-Instruct | 32 | 1e-5 | 4 | Fine-tuned | ~10s |
## Evaluation
| Task | Script | Epochs |
|---|---|---|
| cap | tasks/cap.py | 0 |
## Status
Not started.
"""


def test_stale_run_dir_is_reported_not_submitted_and_unscaffolded_runs_are_named(tmp_path):
    # the summary plans rank8 and rank32; on disk: rank8 and an old rank16 from a former design
    exp = make_experiment(tmp_path, [FakeRun("rank8"), FakeRun("rank16")])
    (exp / "experiment_summary.md").write_text(REAL_SUMMARY)
    lines: list[str] = []
    report = run(exp, lines)
    assert report.stale == ["rank16"] and report.unscaffolded == ["rank32"]
    assert {j.run for j in report.jobs} == {"rank8"} and all(j.ok for j in report.jobs)
    assert not starts(exp, "rank16/finetune")
    out = "\n".join(lines)
    assert "rank16/ is not a run of experiment_summary.md" in out and "rank32 has no run directory" in out
    log = (exp / "run-experiment.log").read_text()
    assert "STALE: rank16" in log and "UNSCAFFOLDED: rank32" in log


def test_status_writes_nothing(tmp_path, capsys):
    exp = make_experiment(tmp_path, [FakeRun("a"), FakeRun("b", rc=1)])
    run(exp)
    before = _snapshot(exp)
    ck = exp / ".ck"
    os.chmod(ck, 0o555)  # even a read-only .ck/ is fine for status
    try:
        assert main(["status", str(exp)]) == 0
        assert main(["status", str(exp), "--json"]) == 0
    finally:
        os.chmod(ck, 0o755)
    assert _snapshot(exp) == before
    out = capsys.readouterr().out
    assert "FAILED" in out


@pytest.mark.parametrize("text, what", [
    ("[1, 2]", "top level is a list"),
    ('{"jobs": []}', "'jobs' is not an object"),
    ('{"jobs": {"a/finetune": {"state": "DONE?"}}}', "is not a job state"),
    ('{"jobs": {"a/finetune": "x"}}', "is not an object"),
    ("\xff\xfe not utf-8", "not valid JSON"),
])
def test_ledger_of_the_wrong_shape_is_exit_2_naming_the_file(tmp_path, capsys, text, what):
    exp = make_experiment(tmp_path, [FakeRun("a")])
    (exp / ".ck").mkdir()
    (exp / ".ck/ledger.json").write_bytes(text.encode("latin-1"))
    for cmd in (["run", str(exp), "--executor", "local"], ["status", str(exp)]):
        assert main(cmd) == 2
        err = capsys.readouterr().err
        assert "ledger.json" in err and what in err and "Traceback" not in err
    assert starts(exp) == []


def test_read_only_experiment_is_exit_2_naming_the_directory(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    exp = make_experiment(tmp_path, [FakeRun("a")])
    os.chmod(exp, 0o555)
    try:
        assert main(["run", str(exp), "--executor", "local"]) == 2
    finally:
        os.chmod(exp, 0o755)
    assert ".ck" in capsys.readouterr().err


def test_status_into_a_closed_pipe_is_exit_2_without_traceback(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("a")])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    p = subprocess.Popen([sys.executable, "-m", "cruijff_kit", "status", str(exp)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    p.stdout.close()  # the reader went away (`ck status | head -0`)
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 2
    assert "broken pipe" in err and "Traceback" not in err


def test_second_detach_leaves_the_live_supervisors_pid_file_alone(tmp_path, capsys):
    exp = make_experiment(tmp_path, [FakeRun("a", sleep=3.0, tasks=())])
    args = ["run", str(exp), "--executor", "local", "--detach", "--poll", "0.2", "--gpus", "none"]
    assert main(args) == 0
    pid_file = exp / ".ck/supervisor.pid"
    first = (pid_file.read_text(), pid_file.stat().st_mtime_ns)
    capsys.readouterr()
    assert main(args) == 2
    assert "already monitoring" in capsys.readouterr().err
    assert (pid_file.read_text(), pid_file.stat().st_mtime_ns) == first
    os.kill(int(first[0]), 9)


@pytest.mark.parametrize("content, what", [
    (b"output_dir: \xff\xfe\nepochs: 1\n", "not UTF-8"),
    (b"a: &x [1, 2]\nb: *x\noutput_dir: /tmp/o\n", "aliases"),
    (b"output_dir: [unclosed\n", "invalid YAML"),
])
def test_bad_setup_finetune_yaml_is_exit_2_naming_file_and_line(tmp_path, capsys, content, what):
    exp = make_experiment(tmp_path, [FakeRun("a")])
    (exp / "a/setup_finetune.yaml").write_bytes(content)
    assert main(["run", str(exp), "--executor", "local"]) == 2
    err = capsys.readouterr().err
    assert "setup_finetune.yaml" in err and what in err and "Traceback" not in err
    assert starts(exp) == []


def test_analyze_counts_what_run_counts(tmp_path):
    from cruijff_kit.analyze.eval_logs import EvalScan, scan_run

    exp = make_experiment(tmp_path, [FakeRun("a")])
    run(exp)
    scan = EvalScan()
    scan_run(exp, "a", scan)
    assert list(scan.results) == [("a", "cap", 0)] and scan.results[("a", "cap", 0)].value == 0.75
    script = exp / "a/eval/cap_epoch0.slurm"
    script.write_text(script.read_text() + "# changed\n")  # a new evaluation: the old log is not its result
    scan = EvalScan()
    scan_run(exp, "a", scan)
    assert scan.results == {} and "not the current evaluation" in scan.problems[0]
    log = exp / "a/eval/logs/cap_epoch0.eval"
    log.write_bytes(log.read_bytes()[:100])
    scan = EvalScan()
    scan_run(exp, "a", scan)
    assert scan.results == {} and "not a readable inspect-ai log" in scan.problems[0]


def test_unwritable_state_dir_is_exit_2_naming_it_even_as_root(tmp_path, capsys):
    exp = make_experiment(tmp_path, [FakeRun("a")])
    (exp / ".ck").write_text("not a directory\n")  # the OS refuses every write below it
    assert main(["run", str(exp), "--executor", "local"]) == 2
    err = capsys.readouterr().err
    assert ".ck" in err and "Traceback" not in err
    assert starts(exp) == []
