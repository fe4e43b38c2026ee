"""`ck design --seeds N`: every configuration once per seed, the seed in each run's name; the plan
states `Seeds` (one schema setting) and round-trips."""
import json

from cruijff_kit.cli import main
from cruijff_kit.experiment.parse import load_experiment, parse_summary_text
from cruijff_kit.experiment.render import render_summary


def _data(tmp_path):
    rows = [{"input": "a", "output": "A"}] * 8
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"train": rows, "validation": rows[:4], "test": rows[:4]}))
    return path


def test_seeds_replicate_every_configuration(tmp_path):
    exp = tmp_path / "e"
    assert main(["design", str(exp), "--model", "m=/models/m", "--dataset", str(_data(tmp_path)), "--ranks", "8,16",
                 "--seeds", "3", "--set", "Seed=7", "--gpus", "0"]) == 0
    plan = load_experiment(exp / "experiment_summary.md")
    assert plan.value("seeds") == 3 and dict(plan.settings)["seeds"] == 3
    tuned = [r for r in plan.runs if r.finetuned]
    assert len(tuned) == 6
    assert {(r.value("lora_rank"), r.value("seed")) for r in tuned} == {(k, s) for k in (8, 16) for s in (7, 8, 9)}
    assert all(r.name.endswith(f"_seed{r.value('seed')}") for r in tuned)
    text = (exp / "experiment_summary.md").read_text()
    assert "- **Seeds:** 3" in text
    assert render_summary(parse_summary_text(text)) == text
    assert parse_summary_text(render_summary(plan)) == plan


def test_seeds_and_a_varied_seed_are_refused_together(tmp_path, capsys):
    exp = tmp_path / "e"
    assert main(["design", str(exp), "--model", "m=/models/m", "--dataset", str(_data(tmp_path)),
                 "--seeds", "2", "--vary", "seed=1,2", "--gpus", "0"]) == 2
    err = capsys.readouterr().err
    assert "Seeds" in err and "factor" in err
    assert not (exp / "experiment_summary.md").exists()
    # a varied seed alone stays a factor
    assert main(["design", str(exp), "--model", "m=/models/m", "--dataset", str(_data(tmp_path)),
                 "--vary", "seed=1,2", "--gpus", "0"]) == 0
    plan = load_experiment(exp / "experiment_summary.md")
    assert plan.value("seeds") == 1 and len([r for r in plan.runs if r.finetuned]) == 2
