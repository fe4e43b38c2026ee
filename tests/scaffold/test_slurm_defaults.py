"""SLURM --mem / --time defaults follow the model's size and the run's estimate when
claude.local.md leaves them unset; a value the user set always wins."""
import json
from pathlib import Path

from cruijff_kit.experiment.estimate import params_from_model, suggested_slurm_mem
from cruijff_kit.localconfig import DEFAULT_MEM, DEFAULT_TIME, parse_local_config
from cruijff_kit.scaffold.torchtune_worker import slurm_estimates

# Llama-3.1-8B's and Llama-3.2-1B's real config.json sizes
LLAMA_8B = {"hidden_size": 4096, "num_hidden_layers": 32, "intermediate_size": 14336, "vocab_size": 128256}
LLAMA_1B = {"hidden_size": 2048, "num_hidden_layers": 16, "intermediate_size": 8192, "vocab_size": 128256}


def _model(tmp_path: Path, name: str, cfg: dict) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text(json.dumps(cfg))
    return d


def _setup(model: Path, data: Path, **kw) -> dict:
    return {"model_checkpoint": str(model), "model_name": model.name, "dataset": str(data), "epochs": 1,
            "batch_size": 4, "num_gpus": 1, "max_steps_per_epoch": None, "gradient_accumulation_steps": 1, **kw}


def test_mem_grows_with_the_model_and_never_drops_below_the_old_default(tmp_path):
    big = params_from_model(str(_model(tmp_path, "8b", LLAMA_8B)), "")
    small = params_from_model(str(_model(tmp_path, "1b", LLAMA_1B)), "")
    assert 7.5e9 < big < 8.5e9 and 1e9 < small < 1.5e9
    assert suggested_slurm_mem(small) == DEFAULT_MEM  # bf16 weights twice + 8 GB fit in the 32G floor
    assert int(suggested_slurm_mem(big)[:-1]) >= big * 4 / 1e9  # the weights twice, in GB
    assert suggested_slurm_mem(None) is None
    assert suggested_slurm_mem(1e6, floor_gb=8) == "9G"  # a tiny CPU-only model: 8 GB + its weights, not 32G


def test_unset_time_and_mem_come_from_the_estimate_and_the_model(tmp_path):
    data = tmp_path / "d.json"
    data.write_text(json.dumps({"train": [{"input": "a", "output": "A"}] * 20000}))
    model = _model(tmp_path, "8b", LLAMA_8B)
    exp = tmp_path / "exps" / "e"
    exp.mkdir(parents=True)
    local = parse_local_config("- slurm_partition: gpu\n")
    est = slurm_estimates(_setup(model, data), exp, local)
    assert est["mem"] == suggested_slurm_mem(params_from_model(str(model), ""))
    assert est["time"] and est["time"] != DEFAULT_TIME
    longer = slurm_estimates(_setup(model, data, epochs=8), exp, local)
    assert longer["time"] != est["time"]  # eight passes over the data need a longer --time
    sb = local.sbatch("job", gpus=1, **est)
    assert (sb["time"], sb["mem"]) == (est["time"], est["mem"])


def test_a_value_the_user_set_wins(tmp_path):
    data = tmp_path / "d.json"
    data.write_text(json.dumps({"train": [{"input": "a", "output": "A"}] * 100}))
    model = _model(tmp_path, "8b", LLAMA_8B)
    local = parse_local_config("- slurm_time: 02:00:00\n- slurm_mem: 80G\n")
    est = slurm_estimates(_setup(model, data), tmp_path, local)
    assert est == {}
    assert (local.sbatch("job", gpus=1)["time"], local.sbatch("job", gpus=1)["mem"]) == ("02:00:00", "80G")


def test_eval_mem_follows_the_base_model_unless_the_user_set_it(tmp_path):
    """An adapter epoch is merged into a full copy of its base before evaluation: the eval job
    needs the training job's memory, not a fixed 32G (an 8B base: ~42G)."""
    from cruijff_kit.experiment.model import Experiment, Run, RunType
    from cruijff_kit.scaffold.inspect_worker import eval_mem

    model = _model(tmp_path, "8b", LLAMA_8B)
    exp = Experiment(name="e", experiment_dir=str(tmp_path), models=(("m", str(model)),), dataset="d.json",
                     settings=(("num_gpus", 1),))
    run = Run(name="r", model="m", type=RunType.FINETUNED)
    want = suggested_slurm_mem(params_from_model(str(model), ""))
    assert eval_mem(exp, run, parse_local_config("- slurm_partition: gpu\n")) == want and int(want[:-1]) > 32
    assert eval_mem(exp, run, parse_local_config("- slurm_mem: 80G\n")) is None  # claude.local.md's wins
