"""A plan in the original cruijff_kit layout scaffolds its evaluations (it used to scaffold none)."""
from pathlib import Path

import yaml

from cruijff_kit.cli import main

from .helpers import TASK

ORIG = (Path(__file__).parents[1] / "experiment" / "original_layout.md").read_text()


def test_original_layout_scaffolds_evaluations_and_honours_checkpoint_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CK_LOCAL_CONFIG", str(tmp_path / "claude.local.md"))
    (tmp_path / "claude.local.md").write_text("- slurm_partition: debug\n")
    exp = tmp_path / "cap_rank_sweep"
    (exp / "tasks" / "capitalization").mkdir(parents=True)
    (exp / "tasks" / "capitalization" / "inspect_task.py").write_text(TASK)
    ckpt = tmp_path / "ck-out"
    (exp / "experiment_summary.md").write_text(
        ORIG.replace("/scratch/me/ck-out", str(ckpt)).replace("at epoch 0.", "at all epochs."))
    assert main(["scaffold", str(exp)]) == 0
    err = capsys.readouterr().err
    assert "no evaluations" not in err
    assert "Scorer 'match' is not applied" in err and "Recipe" in err
    for d in ("rank8", "rank16"):
        setup = yaml.safe_load((exp / d / "setup_finetune.yaml").read_text())
        assert setup["output_dir"] == str(ckpt / "cap_rank_sweep" / d)
        assert setup["epochs"] == 2 and setup["learning_rate"] == 1e-5
        for epoch in (0, 1):
            script = (exp / d / "eval" / f"epoch{epoch}.slurm").read_text()
            assert str(ckpt / "cap_rank_sweep" / d / f"epoch_{epoch}") in script
            assert '"split": "test"' in script  # evaluation split defaults to held-out data
    assert (exp / "base" / "eval" / "base.slurm").is_file()
