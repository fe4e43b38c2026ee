"""Our recipes run for real on CPU with torchtune 0.6.1 and write correct epoch checkpoints."""
from __future__ import annotations

import math
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.finetune.ckpt_check import merge_error
from cruijff_kit.finetune.config import render_finetune_yaml

pytestmark = pytest.mark.slow  # real training, evaluation or training processes: `make test`, not test-fast

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
    # the design's Est. Disk for this run is what torchtune really wrote (logs aside)
    from cruijff_kit.experiment.disk import planned_disk_bytes
    from cruijff_kit.settings import BY_KEY

    written = sum(f.stat().st_size for f in out.rglob("*") if f.is_file() and "logs" not in f.parts)
    planned = planned_disk_bytes(str(tiny_model), lambda k: setup.get(k, BY_KEY[k].default))
    assert abs(planned - written) <= 0.05 * written, (planned, written)


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

    from cruijff_kit.evaluate.launch import weights_without_adapter

    # the merged weights alone: with PEFT installed, transformers would also load the adapter beside them
    view = weights_without_adapter(epoch_dir, epoch_dir.parent / f"{epoch_dir.name}_weights")
    model, info = AutoModelForCausalLM.from_pretrained(view, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    lora_err, other_err = merge_error(epoch_dir, base_dir)
    assert lora_err < 1e-5 and other_err == 0.0


def test_distributed_with_tune_run_nproc_2(setup_dict, tiny_model, tmp_path):
    cfg = _write_config({**setup_dict, "max_steps_per_epoch": 2}, tmp_path / "run")
    _run([str(BIN / "tune"), "run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
          f"{RECIPES}/lora_distributed.py", "--config", str(cfg)], cfg.parent)
    _check_loads_and_merges(Path(setup_dict["output_dir"]) / "epoch_0", tiny_model)


# ---- validation loss during training (finetune/recipes/validation.py) ----------------------------

def _val_lines(output_dir: Path) -> list[dict]:
    from cruijff_kit.state.loss_logs import log_files

    out = []
    for path in log_files(output_dir):
        for line in path.read_text().splitlines():
            if "val_loss:" in line:
                step, _, rest = line.partition("|")
                values = dict(kv.split(":", 1) for kv in rest.split())
                out.append({"step": int(step.split()[1]), **{k: float(v) for k, v in values.items()}})
    return out


def _reference_val_loss(epoch_dir: Path, base_dir: Path, words_json: Path) -> float:
    """Token-weighted loss of the validation rows, recomputed independently: the torchtune
    tokenizer's training sequence and mask, transformers' model of the saved checkpoint."""
    import json

    import torch
    from torchtune.data import Message
    from torchtune.models.qwen2_5 import qwen2_5_tokenizer
    from transformers import AutoModelForCausalLM

    tt = qwen2_5_tokenizer(path=str(base_dir / "vocab.json"), merges_file=str(base_dir / "merges.txt"),
                           special_tokens_path=str(base_dir / "tokenizer.json"), max_seq_len=None)
    from cruijff_kit.evaluate.launch import weights_without_adapter

    # the merged weights alone (with PEFT installed, transformers would load the adapter beside them too)
    view = weights_without_adapter(epoch_dir, epoch_dir.parent / f"{epoch_dir.name}_weights")
    model = AutoModelForCausalLM.from_pretrained(view).eval()
    total, count = 0.0, 0
    for row in json.loads(words_json.read_text())["validation"]:
        tokens, mask = tt.tokenize_messages([Message(role="user", content=row["input"], masked=True),
                                             Message(role="assistant", content=row["output"])])
        labels = torch.tensor([t if not m else -100 for t, m in zip(tokens, mask)])
        with torch.no_grad():
            logits = model(torch.tensor([tokens])).logits[0]
        total += torch.nn.functional.cross_entropy(logits[:-1], labels[1:], ignore_index=-100, reduction="sum").item()
        count += int((labels[1:] != -100).sum())
    return total / count


def test_single_device_validation_loss_every_n_steps_and_each_epoch(setup_dict, tiny_model, words_json, tmp_path):
    setup = {**setup_dict, "epochs": 2, "max_steps_per_epoch": 3, "enable_validation": True,
             "validation_every_n_steps": 2, "logger": "wandb", "my_wandb_project": "ck-tests"}
    cfg = _write_config(setup, tmp_path / "run")
    assert "dataset_val:" in cfg.read_text() and "field: validation" in cfg.read_text()
    _run([sys.executable, "-m", "cruijff_kit.finetune.recipes.lora_single_device", "--config", str(cfg)], cfg.parent,
         env={"WANDB_MODE": "offline", "WANDB_API_KEY": "", "NETRC": str(tmp_path / "no-netrc")})
    out = Path(setup["output_dir"])
    lines = _val_lines(out)
    # every 2 steps (2, 4) and at each epoch end (3, 6; step 6 once, as the epoch end)
    assert [(v["step"], v.get("epoch")) for v in lines] == [(2, None), (3, 0.0), (4, None), (6, 1.0)]
    for v in lines:
        assert math.isfinite(v["val_loss"]) and v["val_loss"] > 0
    for epoch, v in ((0, lines[1]), (1, lines[3])):
        ref = _reference_val_loss(out / f"epoch_{epoch}", tiny_model, words_json)
        assert v["val_loss"] == pytest.approx(ref, rel=1e-4), (epoch, v, ref)
    # the training log is unchanged: a loss line per step
    from cruijff_kit.state.loss_logs import read_loss_curve

    assert [s for s, _ in read_loss_curve(out)] == list(range(1, 7))
    assert [s for s, _ in read_loss_curve(out, metric="val_loss")] == [2, 3, 4, 6]
    # W&B (offline) got them too: its run file (protobuf records) holds val_loss history rows
    (run_file,) = (out / "logs" / "wandb").glob("offline-run-*/run-*.wandb")
    assert run_file.read_bytes().count(b"val_loss") >= 4


def test_distributed_two_gloo_ranks_from_env_vars_with_validation_loss_per_epoch(setup_dict, tiny_model, words_json,
                                                                                  tmp_path):
    """Two gloo ranks started from the env vars torchrun / srun set: the checkpoint loads and is base
    + adapter, rank 0 logs its training examples, and the epoch's validation loss is over the whole split."""
    setup = {**setup_dict, "max_steps_per_epoch": 2, "enable_validation": True}
    cfg = _write_config(setup, tmp_path / "run")
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
    out_dir = Path(setup["output_dir"])
    _check_loads_and_merges(out_dir / "epoch_0", tiny_model)
    # rank 0 wrote what it trained on: its first examples, the prompt masked out of the loss
    examples = [json.loads(x) for x in (cfg.parent / "logs" / "train_examples.jsonl").read_text().splitlines()]
    assert 1 <= len(examples) <= 8
    for ex in examples:
        assert len(ex["labels"]) == len(ex["input_ids"]) and ex["labels"][0] == -100 and ex["labels"][-1] != -100
    lines = _val_lines(out_dir)
    assert [(v["step"], v.get("epoch")) for v in lines] == [(2, 0.0)]
    # each rank evaluated its share; the all-reduced loss is the loss over the whole split
    assert lines[0]["val_loss"] == pytest.approx(_reference_val_loss(out_dir / "epoch_0", tiny_model, words_json), rel=1e-4)
