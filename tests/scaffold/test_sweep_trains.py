"""Done-means of issue 12: a sweep over a setting that is not rank / learning rate / batch size
scaffolds and trains (real torchtune, tiny model) with the value in each finetune.yaml: the
session's finished experiment (tests/finished_experiment.py) sweeps LoRA dropout."""
import pytest
import yaml

from tests.finished_experiment import EPOCHS, SWEEP

pytestmark = pytest.mark.slow


def test_dropout_sweep_trains_with_its_value(finished_experiment):
    exp = finished_experiment.exp
    assert sorted(p.name for p in exp.iterdir() if (p / "finetune.yaml").is_file()) == sorted(SWEEP)
    for d, p in SWEEP.items():
        run = exp / d
        assert yaml.safe_load((run / "finetune.yaml").read_text())["model"]["lora_dropout"] == p
        # what torchtune ran with (the config it saved beside its checkpoints), and what it wrote
        trained = yaml.safe_load((run / "checkpoints" / "torchtune_config.yaml").read_text())
        assert trained["model"]["lora_dropout"] == p
        for epoch in range(EPOCHS):
            assert any((run / "checkpoints" / f"epoch_{epoch}").glob("*.safetensors")), (run, epoch)
