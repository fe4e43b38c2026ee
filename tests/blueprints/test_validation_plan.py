"""A plan with `Validation during training: true` runs end to end (design -> scaffold -> run with the
local executor) and its training log has the validation loss at each epoch end."""
from __future__ import annotations

import os
import sys

from cruijff_kit.blueprints.capitalization.generate import SHIPPED_WORDS, generate
from cruijff_kit.cli import main as ck
import pytest

pytestmark = pytest.mark.slow  # real training, evaluation or training processes: `make test`, not test-fast


def test_validation_plan_runs_and_logs_val_loss_per_epoch(tiny_model, tmp_path, monkeypatch, capsys):
    from cruijff_kit.state.loss_logs import read_loss_curve

    data = generate(tmp_path / "words.json", n=40, seed=0, splits=(0.6, 0.2, 0.2), word_source=SHIPPED_WORDS)
    local = tmp_path / "claude.local.md"
    local.write_text(f"- venv: {sys.prefix}\n- slurm_time: 00:10:00\n- slurm_mem: 2G\n- slurm_cpus: 1\n")
    monkeypatch.setenv("CK_LOCAL_CONFIG", str(local))
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: valplan\nmodels: {{tiny: {tiny_model}}}\ndataset: {data}\n"
                    "grid: {lora_rank: [4], learning_rate: [0.003], batch_size: [4]}\ncontrols: false\n"
                    "epochs: 2\ngpus: 0\nvalidation: true\nconfig: {Warmup steps: 1, Max steps per epoch: 2}\n")
    exp = tmp_path / "valplan"
    assert ck(["design", str(exp), "--spec", str(spec)]) == 0
    assert "- **Validation during training:** true" in (exp / "experiment_summary.md").read_text()
    assert ck(["scaffold", str(exp)]) == 0
    (run_dir,) = [p for p in exp.iterdir() if (p / "finetune.yaml").is_file()]
    assert "dataset_val:" in (run_dir / "finetune.yaml").read_text()
    assert ck(["run", str(exp), "--executor", "local", "--poll", "0.5"]) == 0, capsys.readouterr()
    out_dir = run_dir / "checkpoints"
    assert [s for s, _ in read_loss_curve(out_dir, metric="val_loss")] == [2, 4]  # each epoch end
    assert [s for s, _ in read_loss_curve(out_dir, metric="epoch")] == [2, 4]
    assert all(v > 0 for _, v in read_loss_curve(out_dir, metric="val_loss"))
