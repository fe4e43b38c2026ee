"""stop_after_epochs + resume_from_checkpoint on the torchtune recipes, for real on the tiny model:
a run stopped at epoch boundaries and resumed (1 -> 2 -> 3 epochs, as a search's rungs would) is the
uninterrupted 3-epoch run, bit for bit: every logged train / validation loss and learning rate,
every epoch's adapter and merged weights. Dropout is on, so the random state must resume too."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cruijff_kit.finetune.config import render_finetune_yaml
from cruijff_kit.finetune.slurm import render_finetune_slurm
from cruijff_kit.run.recovery import rung_overrides
from cruijff_kit.state.artifacts import checkpoint_problems, completed_epochs
from tests.stop_resume import assert_same_epochs, logged, run_job, safetensors_of

pytestmark = pytest.mark.slow  # real training

EPOCHS = 3


def _run_dir(setup_dict: dict, where: Path, **extra) -> tuple[Path, Path]:
    setup = {**setup_dict, "epochs": EPOCHS, "max_steps_per_epoch": None, "lora_dropout": 0.1,
             "enable_validation": True, "lr_warmup_steps": 2, "output_dir": str(where / "out"), **extra}
    where.mkdir(parents=True)
    (where / "finetune.yaml").write_text(render_finetune_yaml(setup))
    (where / "finetune.slurm").write_text(render_finetune_slurm(setup))
    return where, where / "out"


def _job(run_dir: Path, overrides: dict[str, str] | None = None) -> None:
    run_job(run_dir, overrides, timeout=300)


def _tensors(epoch_dir: Path) -> dict:
    """The epoch's adapter_model.pt and .safetensors tensors."""
    import torch

    found = {f"adapter:{k}": v for k, v in torch.load(epoch_dir / "adapter_model.pt", weights_only=True).items()}
    return {**found, **safetensors_of(epoch_dir)}


def test_single_device_stopped_and_resumed_equals_continuous(setup_dict, tmp_path):
    whole, whole_out = _run_dir(setup_dict, tmp_path / "whole")
    rungs, out = _run_dir(setup_dict, tmp_path / "rungs")
    _job(whole)

    overrides = rung_overrides({}, stop_after=1, resume=False)
    _job(rungs, overrides)
    # stopped at the rung: epoch 0 saved as any intermediate epoch, the resume state beside it
    assert completed_epochs(out) == 1 and not (out / "epoch_1").exists()
    assert checkpoint_problems(out / "epoch_0") == []
    assert (out / "recipe_state" / "recipe_state.pt").is_file()
    first = logged(out)
    assert max(first) == 4 and first[4]["epoch"] == 0.0 and "val_loss" in first[4]  # 16 rows / batch 4
    assert first == {s: v for s, v in logged(whole_out).items() if s <= 4}

    for stop in (2, EPOCHS):  # the last rung's stop is the run's end: no stop at all
        overrides = rung_overrides(overrides, stop_after=stop, resume=True)
        _job(rungs, overrides)
        assert completed_epochs(out) == stop

    assert logged(out) == logged(whole_out)
    assert sorted(v["epoch"] for v in logged(out).values() if "val_loss" in v) == [0.0, 1.0, 2.0]
    assert_same_epochs(whole_out, out, EPOCHS, _tensors, prefixes=("model",))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_ranks(cfg: Path, *overrides: str) -> None:
    env = {"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
    procs = [subprocess.Popen([sys.executable, "-m", "cruijff_kit.finetune.recipes.lora_distributed", "--config",
                               str(cfg), *overrides], cwd=cfg.parent,
                              env={**os.environ, **env, "RANK": str(r), "LOCAL_RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in (0, 1)]
    for p in procs:
        text, _ = p.communicate(timeout=300)
        assert p.returncode == 0, text[-5000:]


def test_distributed_two_ranks_stop_and_resume_equals_continuous(setup_dict, tmp_path):
    """Two gloo ranks, dropout on: each rank's random state is saved and restored (one file per rank)."""
    common = {"epochs": 2, "max_steps_per_epoch": 2, "lora_dropout": 0.1, "enable_validation": True,
              "save_merged_weights": False}
    whole = tmp_path / "whole" / "finetune.yaml"
    rungs = tmp_path / "rungs" / "finetune.yaml"
    for cfg in (whole, rungs):
        cfg.parent.mkdir(parents=True)
        cfg.write_text(render_finetune_yaml({**setup_dict, **common, "output_dir": str(cfg.parent / "out")}))
    _two_ranks(whole)
    _two_ranks(rungs, "stop_after_epochs=1")
    out = rungs.parent / "out"
    assert completed_epochs(out) == 1
    assert sorted(p.name for p in (out / "recipe_state").glob("ck_rng_rank*.pt")) == ["ck_rng_rank0.pt",
                                                                                     "ck_rng_rank1.pt"]
    _two_ranks(rungs, "resume_from_checkpoint=True")
    assert completed_epochs(out) == 2
    assert logged(out) == logged(whole.parent / "out")
    import torch

    for epoch in (0, 1):
        a = torch.load(whole.parent / "out" / f"epoch_{epoch}" / "adapter_model.pt", weights_only=True)
        b = torch.load(out / f"epoch_{epoch}" / "adapter_model.pt", weights_only=True)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f"epoch_{epoch}"


def test_a_bad_stop_is_refused_before_training(setup_dict, tmp_path):
    bad = "1.5"  # every other bad value: tests/run/test_recovery_overrides.py (the same check)
    run_dir, out = _run_dir(setup_dict, tmp_path / "run")
    proc = subprocess.run([sys.executable, "-m", "cruijff_kit.finetune.recipes.lora_single_device", "--config",
                           "finetune.yaml", f"stop_after_epochs={bad}"], cwd=run_dir, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode != 0
    assert f"stop_after_epochs must be a whole number of epochs >= 1, got {bad}" in proc.stderr.replace("'", "")
    assert "Traceback" not in proc.stderr
    assert not list(out.glob("epoch_*"))
