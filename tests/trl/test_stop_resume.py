"""stop_after_epochs + resume_from_checkpoint on the TRL recipe, for real on the tiny model: a run
stopped at epoch boundaries and resumed equals the uninterrupted 3-epoch run exactly: every logged
train / validation loss and learning rate, every epoch's adapter and merged weights. The three jobs
are a search's first two rungs (stop after 1, resume and stop after 2) and then the retry `ck run`
makes after a TIMEOUT (its own overrides: resume, no stop), which must go on from the trainer state
of the last finished epoch, not start again. Dropout is on; Max steps per epoch shortens the epochs
(the trainer's own epoch count on a resume would be wrong there without ck's)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cruijff_kit.finetune.slurm import render_finetune_slurm
from cruijff_kit.finetune.trl_config import render_trl_config
from cruijff_kit.run.recovery import rung_overrides, timeout_retry
from cruijff_kit.state.artifacts import checkpoint_problems, completed_epochs
from tests.stop_resume import assert_same_epochs, logged, trained_steps, run_job, safetensors_of

pytestmark = pytest.mark.slow  # real training

EPOCHS = 3
WORDS = ("apple banana cherry orange grape lemon melon peach pear plum house garden "
         "river mountain forest ocean island desert valley city").split()


def _run_dir(model: Path, where: Path) -> tuple[Path, Path]:
    rows = [{"input": w, "output": w.capitalize()} for w in WORDS]
    where.mkdir(parents=True)
    data = where / "words.json"  # 4 validation rows: one whole batch (the trainer drops a partial one)
    data.write_text(json.dumps({"train": rows[:12], "validation": rows[12:16], "test": rows[16:]}))
    setup = {"run_name": "r", "model_checkpoint": str(model), "dataset": str(data), "dataset_format": "json",
             "lora_rank": 4, "lora_alpha": 8, "lora_dropout": 0.1, "learning_rate": 3e-3, "batch_size": 4,
             "epochs": EPOCHS, "max_steps_per_epoch": 2, "output_dir": str(where / "out"), "seed": 0,
             "lr_warmup_steps": 2, "trainer": "trl", "enable_validation": True, "save_merged_weights": True,
             "num_gpus": 0, "environment": {"kind": "venv", "path": sys.prefix}}
    (where / "trl_config.yaml").write_text(render_trl_config(setup))
    (where / "finetune.slurm").write_text(render_finetune_slurm(setup))
    return where, where / "out"


def _job(run_dir: Path, overrides: dict[str, str] | None = None) -> None:
    run_job(run_dir, overrides, timeout=600)


def test_trl_stopped_and_resumed_equals_continuous(tiny_model, tmp_path):
    whole, whole_out = _run_dir(tiny_model, tmp_path / "whole")
    rungs, out = _run_dir(tiny_model, tmp_path / "rungs")
    _job(whole)

    overrides = rung_overrides({}, stop_after=1, resume=False)
    _job(rungs, overrides)
    assert completed_epochs(out) == 1 and not (out / "epoch_1").exists()
    assert checkpoint_problems(out / "epoch_0") == []
    assert list((out / ".trl").glob("checkpoint-2/optimizer.pt"))  # the trainer state a resume reads
    assert logged(out) == {s: v for s, v in logged(whole_out).items() if s <= 2}

    overrides = rung_overrides(overrides, stop_after=2, resume=True)
    _job(rungs, overrides)
    assert completed_epochs(out) == 2

    # the job "timed out" after epoch 1: the retry's overrides, from what disk holds
    retry, why = timeout_retry({}, attempts_so_far=0, checkpoints=tuple(out / f"epoch_{e}" for e in range(EPOCHS)))
    assert retry == {"resume_from_checkpoint": "True"}, why
    _job(rungs, retry)
    assert completed_epochs(out) == EPOCHS
    assert trained_steps(out) == list(range(1, 7)), "each step trained once: every job resumed, none restarted"

    values = logged(out)
    assert values == logged(whole_out)
    assert sorted(values) == list(range(1, 7))
    assert sorted(v["epoch"] for v in values.values() if "val_loss" in v) == [0.0, 1.0, 2.0]
    assert_same_epochs(whole_out, out, EPOCHS, safetensors_of, prefixes=("adapter_model", "model"))


def test_trl_refuses_a_bad_stop(tiny_model, tmp_path):
    run_dir, out = _run_dir(tiny_model, tmp_path / "run")
    proc = subprocess.run([sys.executable, "-m", "cruijff_kit.finetune.trl_train", "--config", "trl_config.yaml",
                           "stop_after_epochs=0"], cwd=run_dir, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "stop_after_epochs must be a whole number of epochs >= 1, got 0" in proc.stderr
    assert not out.exists()
