"""Trainer overrides: what `ck run` may put in CK_TUNE_OVERRIDES (checked before submission), a
search rung's overrides (stop_after_epochs, resume_from_checkpoint), and the generated finetune.slurm
handing them to every trainer's command unchanged, one argument each."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cruijff_kit.errors import CkError
from cruijff_kit.finetune.epoch_stop import stop_after_epochs, stops_after
from cruijff_kit.finetune.slurm import render_finetune_slurm
from cruijff_kit.run import recovery
from cruijff_kit.run.recovery import ENV_VAR, check_overrides, format_overrides, rung_overrides


@pytest.mark.parametrize("value, k", [(1, 1), (3, 3), ("2", 2), (" 4 ", 4), (None, None), ("", None),
                                      ("null", None)])
def test_stop_after_epochs_accepts_whole_epochs(value, k):
    assert stop_after_epochs(value) == k


@pytest.mark.parametrize("value", [0, -1, "0", "-2", "1.5", 1.5, 2.0, True, False, "two", "1e1", [1]])
def test_stop_after_epochs_refuses_anything_else(value):
    with pytest.raises(ValueError, match="stop_after_epochs must be a whole number of epochs >= 1"):
        stop_after_epochs(value)


def test_a_stop_at_or_beyond_the_last_epoch_is_no_stop():
    # epoch is 0-based, just finished; 3 epochs in all
    assert [e for e in range(3) if stops_after(e, 1, 3)] == [0]
    assert [e for e in range(3) if stops_after(e, 2, 3)] == [1]
    assert not any(stops_after(e, k, 3) for e in range(3) for k in (3, 4, None))


def test_rung_overrides_first_and_later_rungs_keep_other_overrides():
    first = rung_overrides({"batch_size": "2", "gradient_accumulation_steps": "4"}, stop_after=1, resume=False)
    assert first == {"batch_size": "2", "gradient_accumulation_steps": "4", "stop_after_epochs": "1"}
    second = rung_overrides(first, stop_after=2, resume=True)
    assert second == {**first, "stop_after_epochs": "2", "resume_from_checkpoint": "True"}
    assert format_overrides(second) == ("batch_size=2 gradient_accumulation_steps=4 stop_after_epochs=2 "
                                        "resume_from_checkpoint=True")
    # a restarted first rung never resumes what an earlier attempt left
    assert "resume_from_checkpoint" not in rung_overrides(second, stop_after=1, resume=False)
    with pytest.raises(CkError) as err:
        rung_overrides({}, stop_after=0, resume=False)
    assert err.value.field == "stop_after_epochs"


def test_retries_keep_the_rung(tmp_path):
    rung = rung_overrides({}, stop_after=2, resume=True)
    (tmp_path / "finetune.yaml").write_text("batch_size: 4\ngradient_accumulation_steps: 1\n")
    oom, _ = recovery.oom_retry(rung, attempts_so_far=0, finetune_yaml=tmp_path / "finetune.yaml", setup_yaml=None)
    assert oom["stop_after_epochs"] == "2" and oom["batch_size"] == "2"
    epoch = tmp_path / "out" / "epoch_0"
    epoch.mkdir(parents=True)
    (epoch / "adapter_config.json").write_text("{}")
    (epoch / "adapter_model.bin").write_bytes(b"x")
    timeout, why = recovery.timeout_retry(rung, attempts_so_far=0, checkpoints=(epoch,))
    assert timeout == rung, why


@pytest.mark.parametrize("overrides, field", [
    ({"stop_after_epochs": "0"}, "stop_after_epochs"),
    ({"stop_after_epochs": "1.5"}, "stop_after_epochs"),
    ({"batch size": "2"}, "batch size"),
    ({"system_prompt": "two words"}, "system_prompt"),
    ({"x": ""}, "x"),
    ({"x": "'quoted'"}, "x"),
    ({"x": "a\\b"}, "x"),
    ({"bad;key": "1"}, "bad;key"),
])
def test_overrides_that_finetune_slurm_would_split_or_garble_are_refused(overrides, field):
    with pytest.raises(CkError) as err:
        format_overrides(overrides)
    assert err.value.field == field


def test_dotted_torchtune_keys_and_plain_values_pass():
    check_overrides({"optimizer.lr": "1e-4", "resume_from_checkpoint": "True", "output_dir": "/a/b-c_d"})


# ---- finetune.slurm hands the overrides to each trainer ------------------------------------------
FAKE = """#!/usr/bin/env bash
# records how the job script called it: program, then one argument per line, then a blank line
{{ basename "$0"; printf '%s\\n' "$@"; echo; }} >> {log}
"""


def _fake_env(tmp_path: Path) -> Path:
    env = tmp_path / "env"
    (env / "bin").mkdir(parents=True)
    log = tmp_path / "calls.log"
    for prog in ("python", "torchrun", "tune"):
        (env / "bin" / prog).write_text(FAKE.format(log=log))
        (env / "bin" / prog).chmod(0o755)
    (env / "bin" / "activate").write_text(f'PATH="{env / "bin"}:$PATH"\n')
    return env


def _trainer_argv(tmp_path: Path, setup: dict, overrides: dict[str, str]) -> list[str]:
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    (run / "finetune.slurm").write_text(render_finetune_slurm(setup))
    (tmp_path / "calls.log").unlink(missing_ok=True)
    proc = subprocess.run(["bash", str(run / "finetune.slurm")], cwd=run, capture_output=True, text=True,
                          env={**os.environ, ENV_VAR: format_overrides(overrides)}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    calls = [c.splitlines() for c in (tmp_path / "calls.log").read_text().split("\n\n") if c.strip()]
    (argv,) = [c for c in calls if "--config" in c]  # the manifest step is the other call
    return argv


@pytest.mark.parametrize("mode, extra, start", [
    ("torchtune one device", {}, ["python", "-m", "cruijff_kit.finetune.recipes.lora_single_device"]),
    ("torchtune node", {"num_gpus": 2}, ["tune", "run", "--nproc_per_node", "2"]),
    ("trl one device", {"trainer": "trl"}, ["python", "-m", "cruijff_kit.finetune.trl_train"]),
    ("trl ranks", {"trainer": "trl", "num_cpu_ranks": 2}, ["torchrun", "--standalone", "--nproc_per_node", "2"]),
])
def test_finetune_slurm_passes_rung_overrides_to_every_trainer(tmp_path, mode, extra, start):
    setup = {"run_name": "r", "experiment_name": "e", "model_checkpoint": "/m", "dataset": "/d",
             "dataset_format": "json", "output_dir": str(tmp_path / "out"), "lora_rank": 4, "lora_alpha": 8,
             "learning_rate": 1e-3, "batch_size": 2, "epochs": 3, "seed": 0, "num_gpus": 0,
             "environment": {"kind": "venv", "path": str(_fake_env(tmp_path))}, **extra}
    overrides = rung_overrides({"optimizer.lr": "3e-4"}, stop_after=2, resume=True)
    argv = _trainer_argv(tmp_path, setup, overrides)
    assert argv[:len(start)] == start, argv
    assert argv[-3:] == ["optimizer.lr=3e-4", "stop_after_epochs=2", "resume_from_checkpoint=True"], argv
    assert _trainer_argv(tmp_path, setup, {})[-1] in ("finetune.yaml", "trl_config.yaml")  # none: none added
