import pytest

from cruijff_kit.errors import CkError
from cruijff_kit.experiment.design import DesignSpec, design_experiment
from cruijff_kit.experiment.model import Evaluation
from cruijff_kit.experiment.naming import check_safe_name, run_directories
from cruijff_kit.util.numbers import format_float
from cruijff_kit.experiment.parse import parse_summary_text
from cruijff_kit.experiment.render import render_summary


def spec(lora_ranks=(8, 16, 32, 64), learning_rates=(1e-5, 5e-5), batch_sizes=None, gpus=None,
         tasks=(("capitalization", "tasks/cap.py", (0,)),), **kw):
    base = dict(name="sweep", models=[("Llama-3.2-1B-Instruct", "/m/1b")], dataset="/d/w.json")
    base.update(kw)
    grid = {"lora_rank": list(lora_ranks), "learning_rate": list(learning_rates)}
    if batch_sizes:
        grid["batch_size"] = list(batch_sizes)
    settings = {"num_gpus": gpus} if gpus is not None else {}
    return DesignSpec(**base, grid=grid, settings=settings,
                      tasks=[Evaluation(task=t, script=s, epochs=e) for t, s, e in tasks])


def test_grid_is_cartesian_product_plus_control_and_round_trips():
    exp = design_experiment(spec())
    assert len(exp.finetuned_runs) == 8 and len(exp.control_runs) == 1
    assert parse_summary_text(render_summary(exp)) == exp
    dirs = run_directories(exp)
    assert sorted(v for v in dirs.values()) == sorted(
        ["base"] + [f"rank{r}_lr{lr}" for r in (8, 16, 32, 64) for lr in ("1e-5", "5e-5")])


def test_only_varying_parameters_name_directories():
    assert set(run_directories(design_experiment(spec(learning_rates=[1e-5]))).values()) == \
        {"rank8", "rank16", "rank32", "rank64", "base"}
    two_models = design_experiment(spec(models=[("Llama-3.2-1B-Instruct", "/a"), ("Llama-3.2-3B-Instruct", "/b")],
                                        learning_rates=[1e-5], lora_ranks=[8]))
    assert set(run_directories(two_models).values()) == {
        "Llama-3.2-1B", "Llama-3.2-3B", "Llama-3.2-1B_base", "Llama-3.2-3B_base"}
    bs = design_experiment(spec(lora_ranks=[8], learning_rates=[1e-5], batch_sizes=[4, 8]))
    assert set(run_directories(bs).values()) == {"bs4", "bs8", "base"}


def test_format_float_reads_like_a_person_and_round_trips():
    for value, text in [(1e-5, "1e-5"), (5e-5, "5e-5"), (0.0003, "3e-4"), (0.01, "0.01"), (2.5e-6, "2.5e-6")]:
        assert format_float(value) == text and float(text) == value


@pytest.mark.parametrize("bad", ["a b", "../x", "x;rm -rf", "$(id)", "-x", "a/b", ""])
def test_unsafe_names_rejected(bad):
    with pytest.raises(CkError):
        check_safe_name(bad)


def test_design_rejects_bad_grid_values():
    with pytest.raises(CkError, match="rank"):
        design_experiment(spec(lora_ranks=[0]))
    with pytest.raises(CkError, match="learning rate"):
        design_experiment(spec(learning_rates=[-1.0]))
    with pytest.raises(CkError, match="epoch 3"):
        design_experiment(spec(tasks=[("cap", "t.py", (3,))]))
    with pytest.raises(CkError, match="unsafe"):
        design_experiment(spec(name="my sweep"))


def test_time_estimate_uses_model_config_and_dataset(tmp_path):
    import json
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps(
        {"hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 256, "vocab_size": 512}))
    (tmp_path / "d.json").write_text(json.dumps({"train": [{"input": "a", "output": "A"}] * 100}))
    exp = design_experiment(spec(models=[("tiny", str(tmp_path / "m"))], dataset=str(tmp_path / "d.json"), gpus=0))
    assert all(r.est_time.startswith("~") and r.est_time.endswith("s") for r in exp.finetuned_runs)
    unknown = design_experiment(spec(models=[("mystery", "/nowhere")]))
    assert unknown.finetuned_runs[0].est_time == "unknown"
