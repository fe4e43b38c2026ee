"""Done-means of issue 12: a sweep over a setting that is not rank / learning rate / batch size
scaffolds and trains (real torchtune, tiny model) with the value in each finetune.yaml."""
import os
import subprocess
import sys

import pytest
import yaml

from cruijff_kit.cli import main

pytestmark = pytest.mark.slow


def test_dropout_sweep_trains_with_its_value(tmp_path, monkeypatch):
    from cruijff_kit.blueprints.capitalization.generate import generate
    from cruijff_kit.tiny_model import make_tiny_model

    make_tiny_model(tmp_path / "model")
    generate(tmp_path / "data.json", n=40)
    monkeypatch.setenv("CK_LOCAL_CONFIG", str(tmp_path / "claude.local.md"))
    (tmp_path / "claude.local.md").write_text(f"- venv: {sys.prefix}\n")
    exp = tmp_path / "exp"
    assert main(["design", str(exp), "--model", f"tiny={tmp_path / 'model'}", "--dataset", str(tmp_path / "data.json"),
                 "--gpus", "0", "--no-control", "--vary", "LoRA dropout=0,0.25", "--set", "Max steps per epoch=2",
                 "--set", "Warmup steps=1"]) == 0
    assert main(["scaffold", str(exp)]) == 0
    for d, p in (("drop0.0", 0.0), ("drop0.25", 0.25)):
        run = exp / d
        assert yaml.safe_load((run / "finetune.yaml").read_text())["model"]["lora_dropout"] == p
        r = subprocess.run(["bash", "finetune.slurm"], cwd=run, capture_output=True, text=True, timeout=600,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        assert any((run / "checkpoints" / "epoch_0").glob("*.safetensors"))
