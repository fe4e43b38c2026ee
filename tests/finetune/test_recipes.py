"""Our recipes run for real on CPU with torchtune 0.6.1 and write correct epoch checkpoints."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ckpt_check import merge_error
from cruijff_kit.finetune.config import render_finetune_yaml

# `tune run` turns a custom recipe's *relative* path into a module name (a/b.py -> a.b) and runs it
# with -m, so the package-relative path works from any directory because cruijff_kit is installed.
RECIPES = "cruijff_kit/finetune/recipes"
BIN = Path(sys.executable).parent


def _write_config(setup: dict, run_dir: Path) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = run_dir / "finetune.yaml"
    cfg.write_text(render_finetune_yaml(setup))
    return cfg


def _run(cmd: list[str], cwd: Path, env: dict | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_single_device_two_epochs_each_epoch_is_base_plus_its_own_adapter(setup_dict, tiny_model, tmp_path):
    setup = {**setup_dict, "epochs": 2, "max_steps_per_epoch": 3}
    cfg = _write_config(setup, tmp_path / "run")
    _run([sys.executable, "-m", "cruijff_kit.finetune.recipes.lora_single_device", "--config", str(cfg)], cfg.parent)
    out = Path(setup["output_dir"])
    for epoch in (0, 1):
        lora_err, other_err = merge_error(out / f"epoch_{epoch}", tiny_model)
        # With torchtune's stock recipe, epoch_1 = base + delta_0 + delta_1 (error ~ |delta_0|), and
        # epoch 1 trains on base + delta_0.
        assert lora_err < 1e-5, f"epoch_{epoch}: merged != base + own adapter (max err {lora_err})"
        assert other_err == 0.0
    assert list((out / "logs").glob("log_*.txt")), "DiskLogger wrote nothing"


def test_stock_recipe_has_the_bug_we_fix(setup_dict, tiny_model, tmp_path):
    """Guards the reason our recipe exists: if torchtune fixes it, this fails and we can drop the subclass."""
    setup = {**setup_dict, "epochs": 2, "max_steps_per_epoch": 3}
    cfg = _write_config(setup, tmp_path / "run")
    _run([str(BIN / "tune"), "run", "lora_finetune_single_device", "--config", str(cfg)], cfg.parent)
    lora_err, _ = merge_error(Path(setup["output_dir"]) / "epoch_1", tiny_model)
    assert lora_err > 1e-3


def test_single_device_runs_with_tune_run(setup_dict, tmp_path):
    cfg = _write_config(setup_dict, tmp_path / "run")
    _run([str(BIN / "tune"), "run", f"{RECIPES}/lora_single_device.py", "--config", str(cfg),
          f"output_dir={tmp_path / 'by_path'}"], cfg.parent)
    assert (tmp_path / "by_path" / "epoch_0" / "model.safetensors.index.json").is_file()


def _check_loads_and_merges(epoch_dir: Path, base_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    model, info = AutoModelForCausalLM.from_pretrained(epoch_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    lora_err, other_err = merge_error(epoch_dir, base_dir)
    assert lora_err < 1e-5 and other_err == 0.0


def test_distributed_two_gloo_ranks_from_env_vars(setup_dict, tiny_model, tmp_path):
    cfg = _write_config({**setup_dict, "max_steps_per_epoch": 2}, tmp_path / "run")
    base_env = {"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "cruijff_kit.finetune.recipes.lora_distributed", "--config", str(cfg)],
            cwd=cfg.parent, env={**os.environ, **base_env, "RANK": str(r), "LOCAL_RANK": str(r)},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for r in (0, 1)
    ]
    for p in procs:
        out, _ = p.communicate(timeout=240)
        assert p.returncode == 0, out[-5000:]
    _check_loads_and_merges(Path(setup_dict["output_dir"]) / "epoch_0", tiny_model)


def test_distributed_with_tune_run_nproc_2(setup_dict, tiny_model, tmp_path):
    cfg = _write_config({**setup_dict, "max_steps_per_epoch": 2}, tmp_path / "run")
    _run([str(BIN / "tune"), "run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
          f"{RECIPES}/lora_distributed.py", "--config", str(cfg)], cfg.parent)
    _check_loads_and_merges(Path(setup_dict["output_dir"]) / "epoch_0", tiny_model)
