"""Which trainer prepares each run (fast: config.json-only model directories, no weights).

ck design picks torchtune where finetune/models.py has a builder and TRL otherwise, writes the
choice, lets the user force (--set) or vary (--vary) it, refuses an architecture neither trainer
covers, and the plan round-trips: parse(render(x)) == x. The scaffold refuses, naming the
setup_finetune.yaml field, what the TRL recipe cannot honour."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cruijff_kit.errors import CkError
from cruijff_kit.experiment.design import DesignSpec, plan_summary
from cruijff_kit.experiment.parse import parse_summary_text
from cruijff_kit.experiment.render import render_summary

HUB = Path(__file__).parent / "hub"


def _model(root: Path, name: str, model_type: str, arch: str) -> str:
    d = root / name
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": model_type, "architectures": [arch]}))
    return str(d)


@pytest.fixture
def models(tmp_path):
    return {"qwen3": _model(tmp_path, "Qwen3-0.6B", "qwen3", "Qwen3ForCausalLM"),
            "gemma": _model(tmp_path, "gemma-3-1b-it", "gemma3_text", "Gemma3ForCausalLM"),
            "qwen25": _model(tmp_path, "Qwen2.5-0.5B-Instruct", "qwen2", "Qwen2ForCausalLM"),
            "phi": _model(tmp_path, "Phi-3-mini", "phi3", "Phi3ForCausalLM"),
            "data": str(tmp_path / "d.json")}


def _spec(m, names, grid=None, settings=None):
    return DesignSpec(name="exp", models=[(n, m[n]) for n in names], dataset=m["data"],
                      grid={"lora_rank": [8], "learning_rate": [5e-5], **(grid or {})}, settings=settings or {})


def _roundtrip(exp):
    assert parse_summary_text(render_summary(exp), "x.md") == exp


def test_design_picks_trl_for_qwen3_and_gemma3_and_writes_it(models):
    exp, text = plan_summary(_spec(models, ["qwen3", "gemma"]))
    assert exp.tools.preparation == "trl" and "- **Model Preparation:** trl" in text
    _roundtrip(exp)


def test_torchtune_stays_the_default_where_it_has_a_builder(models):
    exp, text = plan_summary(_spec(models, ["qwen25"]))
    assert exp.tools.preparation == "torchtune" and "Model preparation" not in text.split("## Tools")[1].split("## Resources")[1]


def test_models_needing_different_trainers_get_a_column(models):
    exp, text = plan_summary(_spec(models, ["qwen25", "qwen3"]))
    assert exp.tools.preparation == "torchtune, trl"
    assert {r.model: r.value("trainer") for r in exp.finetuned_runs} == {"qwen25": "torchtune", "qwen3": "trl"}
    assert "| Model Preparation |" in text
    _roundtrip(exp)


def test_vary_the_trainer_on_one_model(models):
    exp, _ = plan_summary(_spec(models, ["qwen25"], grid={"trainer": ["torchtune", "trl"]}))
    assert sorted(r.value("trainer") for r in exp.finetuned_runs) == ["torchtune", "trl"]
    assert len({r.name for r in exp.runs}) == len(exp.runs)
    _roundtrip(exp)


def test_force_trl_on_a_torchtune_family(models):
    exp, _ = plan_summary(_spec(models, ["qwen25"], settings={"trainer": "trl"}))
    assert exp.stated("trainer") == "trl" and exp.tools.preparation == "trl"
    _roundtrip(exp)


def test_torchtune_forced_on_qwen3_is_refused_at_design(models):
    with pytest.raises(CkError) as e:
        plan_summary(_spec(models, ["qwen3"], settings={"trainer": "torchtune"}))
    assert "torchtune cannot train" in str(e.value) and e.value.field == "Model preparation"
    assert "use trl" in (e.value.hint or "")


def test_an_architecture_neither_trainer_covers_is_refused_with_what_is_supported(models):
    with pytest.raises(CkError) as e:
        plan_summary(_spec(models, ["phi"]))
    msg = str(e.value) + (e.value.hint or "")
    assert "phi3" in msg and "qwen3" in msg and "gemma3_text" in msg and "torchtune: qwen2" in msg


def test_scaffold_refuses_what_the_trl_recipe_cannot_honour(models):
    from cruijff_kit.finetune.trl_config import trl_config

    setup = {"run_name": "r", "model_checkpoint": models["qwen3"], "dataset": models["data"],
             "dataset_format": "json", "lora_rank": 4, "lora_alpha": 8, "learning_rate": 1e-4, "batch_size": 2,
             "epochs": 1, "output_dir": "/tmp/x", "seed": 0, "trainer": "trl"}
    cfg = trl_config(setup)
    assert cfg["lora_target_modules"] == ["q_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    for bad, fld in (({"extra_overrides": {"optimizer.lr": 1}}, "extra_overrides"),
                     ({"num_gpus": 2, "num_nodes": 2}, "num_nodes")):
        with pytest.raises(CkError) as e:
            trl_config({**setup, **bad})
        assert e.value.field == fld and "setup_finetune.yaml" in str(e.value)


def test_qwen3_thinking_mode_is_pinned_whatever_the_caller_passes(tmp_path):
    import jinja2

    from cruijff_kit.finetune.trainers import TRL_FAMILIES, pinned_template

    t = jinja2.Environment().from_string(
        pinned_template((HUB / "qwen3_chat_template.jinja").read_text(), TRL_FAMILIES["qwen3"]))
    for thinking in (True, False, None):
        out = t.render(messages=[{"role": "user", "content": "hi"}], add_generation_prompt=True,
                       **({} if thinking is None else {"enable_thinking": thinking}))
        assert out == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"


def test_ddp_ranks_render_torchrun_one_rank_per_gpu_or_cpu_rank(models):
    from cruijff_kit.finetune.slurm import render_finetune_slurm
    from cruijff_kit.finetune.trl_config import trl_config

    base = {"run_name": "r", "model_checkpoint": models["qwen3"], "dataset": models["data"],
            "dataset_format": "json", "lora_rank": 4, "lora_alpha": 8, "learning_rate": 1e-4, "batch_size": 2,
            "epochs": 1, "output_dir": "/tmp/x", "seed": 0, "trainer": "trl"}
    one = render_finetune_slurm({**base, "num_gpus": 1})
    assert "python -m cruijff_kit.finetune.trl_train --config trl_config.yaml" in one and "torchrun" not in one
    for extra, n in (({"num_gpus": 4}, 4), ({"num_gpus": 0, "num_cpu_ranks": 2}, 2)):
        text = render_finetune_slurm({**base, **extra})
        assert f"torchrun --standalone --nproc_per_node {n} -m cruijff_kit.finetune.trl_train" in text, text
        assert trl_config({**base, **extra})["processes"] == n
    assert "--gres=gpu:4" in render_finetune_slurm({**base, "num_gpus": 4})
