"""A plan with `Validation during training: true` runs end to end (design -> scaffold -> run with the
local executor: the session's finished experiment, tests/finished_experiment.py) and its training
log has the validation loss at each epoch end."""
from __future__ import annotations

import pytest

from tests.finished_experiment import EPOCHS, FINETUNED, STEPS_PER_EPOCH

pytestmark = pytest.mark.slow  # real training, evaluation or training processes: `make test`, not test-fast


def test_validation_plan_runs_and_logs_val_loss_per_epoch(finished_experiment):
    from cruijff_kit.state.loss_logs import read_loss_curve

    exp = finished_experiment.exp
    assert "- **Validation during training:** true" in (exp / "experiment_summary.md").read_text()
    ends = [STEPS_PER_EPOCH * (e + 1) for e in range(EPOCHS)]
    assert ends == [2, 4]
    for name in FINETUNED:
        run_dir = exp / name
        assert "dataset_val:" in (run_dir / "finetune.yaml").read_text()
        out_dir = run_dir / "checkpoints"
        assert [s for s, _ in read_loss_curve(out_dir, metric="val_loss")] == ends  # each epoch end
        assert [s for s, _ in read_loss_curve(out_dir, metric="epoch")] == ends
        assert all(v > 0 for _, v in read_loss_curve(out_dir, metric="val_loss"))
