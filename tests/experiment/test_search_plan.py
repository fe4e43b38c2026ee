"""The search in a plan (experiment/search.py): the `## Search` section and the Trial column round-trip,
the trials are sampled deterministically inside their space (log ranges log-uniformly), and a hand-written
plan is refused with file:line: field where `ck design` would refuse it."""
import math
import statistics

import pytest

from cruijff_kit.errors import CkError, CkErrors
from cruijff_kit.experiment.design import DesignSpec, design_experiment, plan_summary
from cruijff_kit.experiment.model import Evaluation
from cruijff_kit.experiment.naming import run_directories
from cruijff_kit.experiment.parse import parse_summary_text
from cruijff_kit.experiment.render import render_summary
from cruijff_kit.experiment.search import (Dimension, Search, dimension_text, optuna_distributions, optuna_params,
                                           parse_dimension, rung_evaluation, sample_trials, split_choices)
from cruijff_kit.settings import BY_KEY

CAP = 'from inspect_ai import task\nfrom inspect_ai.scorer import accuracy, scorer, stderr\n\n' \
      '@scorer(metrics=[accuracy(), stderr()])\ndef exact_case():\n    ...\n\n' \
      '@task\ndef capitalization(data_path: str, split: str = "test"):\n    ...\n'


def _dim(name, text):
    return parse_dimension(name, text, None, None, name)


def spec(tmp_path, search=None, grid=None, **kw):
    script = tmp_path / "cap.py"
    script.write_text(CAP)
    kw.setdefault("models", [("Llama-3.2-1B-Instruct", "/m/1b")])
    return DesignSpec(
        name="srch", dataset="/d/w.json",
        grid=grid or {"learning_rate": _dim("Learning rate", "1e-5..1e-3:log"), "lora_rank": [8, 16],
                      "lora_dropout": _dim("LoRA dropout", "0..0.3"),
                      "lora_attn_modules": [["q_proj", "v_proj"], ["q_proj", "k_proj", "v_proj"]]},
        search=search or {"algorithm": "asha", "trials": 7, "seed": 3},
        tasks=[Evaluation(task="capitalization", script=str(script), epochs=(), epoch_spec="last")], **kw)


def test_a_search_plan_round_trips_and_names_its_trials(tmp_path):
    exp, text = plan_summary(spec(tmp_path, search={"algorithm": "tpe", "trials": 7, "seed": 3,
                                                    "metric": "capitalization:accuracy", "budget_gpu_hours": 100}))
    assert parse_summary_text(text) == exp
    assert render_summary(parse_summary_text(text)) == text
    s = exp.search
    assert (s.algorithm, s.trials, s.rungs, s.reduction_factor, s.rung_epochs) == ("tpe", 7, 3, 3, (1, 3, 9))
    assert (s.metric_task, s.metric_name, s.direction, s.seed, s.budget_gpu_hours) == \
        ("capitalization", "accuracy", "maximize", 3, 100.0)
    assert exp.epochs == 9
    assert [d.key for d in s.space] == ["learning_rate", "lora_dropout", "lora_rank", "lora_attn_modules"]
    trials = exp.trials()
    assert [n for n, _ in trials] == list(range(7))
    assert all(run.finetuned and run.name.startswith(f"t0{n}_") for n, run in trials)
    dirs = run_directories(exp)
    assert sorted(dirs[r.name] for _, r in trials) == sorted(dirs[r.name] for _, r in trials)
    assert all(dirs[r.name].startswith(f"t0{n}_") for n, r in trials) and len(set(dirs.values())) == len(dirs)
    assert "| Trial |" in text and "## Search" in text and "| Learning Rate | 1e-5..0.001:log |" in text
    # the task metric is measured on the validation split at every rung epoch, for the trials only
    ev = rung_evaluation(exp)
    assert ev is not None and ev.task == "capitalization_validation"
    assert exp.eval_split(ev) == "validation" and ev.epochs == (0, 2, 8)
    assert set(ev.runs) == {r.name for _, r in trials}


def test_a_plan_without_a_search_has_no_search_text(tmp_path):
    plain = design_experiment(DesignSpec(name="g", models=[("m", "/m")], dataset="/d.json",
                                         grid={"lora_rank": [8, 16], "learning_rate": [1e-5]}))
    text = render_summary(plain)
    assert plain.search is None and plain.trials() == ()
    assert "Trial" not in text and "Search" not in text
    assert parse_summary_text(text) == plain


def test_val_loss_switches_validation_on(tmp_path):
    exp, _ = plan_summary(spec(tmp_path))
    assert exp.search.metric == "val_loss" and exp.search.direction == "minimize" and exp.validation is True
    assert rung_evaluation(exp) is None
    assert len(exp.evaluations) == 1  # no validation evaluation added for val_loss


def test_sampling_is_deterministic_and_seeded(tmp_path):
    a, _ = plan_summary(spec(tmp_path))
    b, _ = plan_summary(spec(tmp_path))
    other, _ = plan_summary(spec(tmp_path, search={"algorithm": "asha", "trials": 7, "seed": 4}))
    values = lambda e: [r.settings for _, r in e.trials()]  # noqa: E731
    assert values(a) == values(b)
    assert values(a) != values(other)
    for algorithm in ("asha", "tpe"):
        s = Search(algorithm=algorithm, trials=20, seed=11, rung_epochs=(1, 3, 9),
                   space=(_dim("LoRA rank", "4..64:log"), _dim("Weight decay", "0..0.1")))
        assert sample_trials(s) == sample_trials(s)


@pytest.mark.parametrize("algorithm", ["asha", "tpe"])
def test_samples_lie_in_their_ranges_and_log_ranges_are_log_uniform(algorithm):
    s = Search(algorithm=algorithm, trials=600, seed=1, rung_epochs=(1, 3, 9), space=(
        _dim("Learning rate", "1e-5..1e-3:log"), _dim("LoRA dropout", "0..0.2"), _dim("LoRA rank", "4..32"),
        _dim("Batch size", "1, 2, 4")))
    got = sample_trials(s)
    lrs = [t["learning_rate"] for t in got]
    assert all(1e-5 <= v <= 1e-3 for v in lrs)
    # log-uniform: half below the geometric midpoint 1e-4, the log10 mean at -4 (uniform would put
    # 90 % of the samples above 1e-4)
    assert abs(sum(v < 1e-4 for v in lrs) / len(lrs) - 0.5) < 0.08
    assert abs(statistics.mean(math.log10(v) for v in lrs) + 4) < 0.1
    drops = [t["lora_dropout"] for t in got]
    assert all(0 <= v <= 0.2 for v in drops) and abs(statistics.mean(drops) - 0.1) < 0.015
    ranks = [t["lora_rank"] for t in got]
    assert all(isinstance(v, int) and 4 <= v <= 32 for v in ranks) and {4, 32} <= set(ranks)
    assert {t["batch_size"] for t in got} == {1, 2, 4}
    # floats keep 3 significant digits (readable values and run names)
    assert all(float(f"{v:.2e}") == v for v in lrs)


def test_optuna_sees_the_plan_values():
    """What the run-time hands Optuna (add_trial / tell) is accepted by the space's distributions."""
    import optuna

    s = Search(algorithm="tpe", trials=3, rung_epochs=(1, 3), space=(
        _dim("Learning rate", "1e-5..1e-3:log"), _dim("LoRA rank", "4..32"),
        _dim("LoRA attention modules", '"q_proj, v_proj", "q_proj, k_proj, v_proj"')))
    study = optuna.create_study(direction="minimize")
    dists = optuna_distributions(s)
    for values in sample_trials(s):
        study.add_trial(optuna.trial.create_trial(params=optuna_params(s, values), distributions=dists, value=1.0))
    assert len(study.trials) == 3 and isinstance(dists["lora_rank"], optuna.distributions.IntDistribution)


def test_dimension_text_reads_back():
    for name, text in [("Learning rate", "1e-5..0.001:log"), ("LoRA rank", "4..32"), ("LoRA rank", "8, 16"),
                       ("System prompt", '"Be brief, please.", ""'), ("LoRA on MLP", "true, false"),
                       ("LoRA attention modules", '"q_proj, v_proj", output_proj')]:
        d = _dim(name, text)
        assert _dim(name, dimension_text(d)) == d
    assert split_choices('"a, b", c') == ['"a, b"', "c"]
    assert _dim("LoRA rank", "4..32") == Dimension("lora_rank", 4, 32, integer=True)


# ---- a hand-written plan is refused like `ck design` refuses --------------------------------------

def _designed(tmp_path, **search):
    _, text = plan_summary(spec(tmp_path, search={"algorithm": "asha", "trials": 4, "seed": 0,
                                                  "metric": "capitalization:accuracy", **search}))
    return text


def _line_of(text, token):
    return next(i for i, line in enumerate(text.splitlines(), 1) if token in line)


def _refusals(text):
    with pytest.raises(CkError) as info:
        parse_summary_text(text, "plan.md")
    err = info.value
    return err.errors if isinstance(err, CkErrors) else [err]


EDITS = [  # (old, new, field of the refusal, a phrase of its message); the line is the new text's
    ("| Learning Rate | 1e-5..0.001:log |", "| Learning Rate | 1e-3..1e-5:log |", "Learning Rate", "inverted range"),
    ("| Learning Rate | 1e-5..0.001:log |", "| Learning Rate | 1e-3..1e-3 |", "Learning Rate", "empty range"),
    ("| Learning Rate | 1e-5..0.001:log |", "| Learning Rate | .. |", "Learning Rate", "empty range"),
    ("| Learning Rate | 1e-5..0.001:log |", "| Learning Rate | 0..1e-3:log |", "Learning Rate", "above 0"),
    ("| LoRA Dropout | 0.0..0.3 |", "| LoRA Rank | 4.5..32 |", "LoRA Rank", "whole number"),
    ("| LoRA Dropout | 0.0..0.3 |", "| Split | 1..2 |", "Split", "cannot differ"),
    ("| LoRA Dropout | 0.0..0.3 |", "| LoRA on MLP | 1..2 |", "LoRA on MLP", "not a number"),
    ("- **Trials:** 4", "- **Trials:** 0", "Trials", ">= 1"),
    ("- **Rungs:** 3", "- **Rungs:** 0", "Rungs", ">= 1"),
    ("- **Reduction factor:** 3", "- **Reduction factor:** 1", "Reduction factor", ">= 2"),
    ("- **Rung epochs:** 1, 3, 9", "- **Rung epochs:** 1, 9, 3", "Rung epochs", "not strictly increasing"),
    ("- **Rung epochs:** 1, 3, 9", "- **Rung epochs:** 1, 3, 5", "Rung epochs", "Epochs is 9"),
    ("- **Metric:** capitalization:accuracy", "- **Metric:** nope:accuracy", "Metric", "no task 'nope'"),
    ("- **Metric:** capitalization:accuracy", "- **Metric:** capitalization:f1", "Metric", "does not report"),
    ("- **Metric:** capitalization:accuracy", "- **Metric:** val_loss", "Metric", "validation during training is off"),
    ("- **Algorithm:** asha", "- **Algorithm:** grid", "Algorithm", "unknown search algorithm"),
    ("- **Seed:** 0", "- **Seeds:** 0", "Seeds", "unknown search field"),
    ("- **Budget (GPU-hours):** -", "- **Budget (GPU-hours):** -1", "Budget (GPU-hours)", "positive"),
    ("- **Budget (GPU-hours):** -", "- **Budget (GPU-hours):** 1e-9", "Budget (GPU-hours)", "smaller than one rung"),
]


@pytest.mark.parametrize("old,new,field,needle", EDITS, ids=[f"edit-{i}" for i in range(len(EDITS))])
def test_bad_search_in_a_plan_is_refused_at_its_line(tmp_path, old, new, field, needle):
    text = _designed(tmp_path)
    assert old in text
    if "Budget" in new:  # a budget needs known run times: give the trials an estimate
        text = text.replace("| unknown | unknown |", "| ~1h | ~1G |")
    text = text.replace(old, new, 1)
    errors = _refusals(text)
    hit = [e for e in errors if needle in e.message]
    assert hit, [str(e) for e in errors]
    assert hit[0].file == "plan.md" and hit[0].field == field and hit[0].line == _line_of(text, new.split("|")[1]
                                                                                          if new.startswith("|")
                                                                                          else new)


def test_trial_rows_are_checked(tmp_path):
    text = _designed(tmp_path)
    row = next(line for line in text.splitlines() if line.startswith("| t01_"))
    # a trial number twice
    errors = _refusals(text.replace(row, row.replace("| 1 |", "| 0 |", 1)))
    assert any(e.field == "Trial" and "twice" in e.message for e in errors)
    # a control run numbered as a trial
    base = next(line for line in text.splitlines() if "| Control |" in line)
    errors = _refusals(text.replace(base, base.replace("| - |", "| 9 |", 1)))
    assert any(e.field == "Trial" and "not a search trial" in e.message for e in errors)
    # a space narrowed by hand leaves a trial's value outside it
    changed = text.replace("| Learning Rate | 1e-5..0.001:log |", "| Learning Rate | 1e-5..2e-5:log |")
    errors = _refusals(changed)
    assert any("outside the search space" in e.message and e.field == "Learning Rate"
               and e.line == _line_of(changed, "| t01_") for e in errors), [str(e) for e in errors]
    # trials not numbered 0 .. Trials-1
    last = next(line for line in text.splitlines() if line.startswith("| t03_"))
    changed = text.replace(last, last.replace("| 3 |", "| 5 |", 1))
    errors = _refusals(changed)
    assert any(e.field == "Trials" and "4 trial(s)" in e.message and e.line == _line_of(changed, "**Trials:**")
               for e in errors)


def test_a_trial_column_without_a_search_is_refused(tmp_path):
    text = _designed(tmp_path)
    start, end = text.index("## Search"), text.index("## All Runs")
    errors = _refusals(text[:start] + text[end:])
    assert any(e.field == "Trial" and "no '## Search'" in e.message for e in errors)


def test_the_validation_evaluation_is_required(tmp_path):
    text = _designed(tmp_path)
    row = next(line for line in text.splitlines() if line.startswith("| capitalization_validation"))
    errors = _refusals(text.replace(row + "\n", ""))
    assert any(e.field == "Metric" and "validation split" in e.message for e in errors)


def test_unknowable_metrics_are_accepted_when_known_and_said(tmp_path):
    text = _designed(tmp_path).replace(str(tmp_path / "cap.py"), "/elsewhere/cap.py")
    exp = parse_summary_text(text, "plan.md")
    assert any("accepted 'accuracy' as a known scorer metric" in w for w in exp.warnings)
    errors = _refusals(text.replace("capitalization:accuracy", "capitalization:wellness"))
    assert any(e.field == "Metric" and "not one ck's scorers report" in e.message for e in errors)


def test_design_refuses_what_the_search_cannot_run(tmp_path):
    with pytest.raises(CkError, match="tunes one model"):
        design_experiment(spec(tmp_path, models=[("a", "/a"), ("b", "/b")]))
    with pytest.raises(CkError, match="replicate"):
        design_experiment(spec(tmp_path, settings={"seeds": 2}))
    with pytest.raises(CkError, match="validation during training is switched off"):
        design_experiment(spec(tmp_path, settings={"enable_validation": False}))
    with pytest.raises(CkError, match="epochs are 4"):
        design_experiment(spec(tmp_path, settings={"epochs": 4}, search={"algorithm": "asha", "trials": 2,
                                                                         "rung_epochs": "1,2,3"}))
    ok = design_experiment(spec(tmp_path, settings={"epochs": 6}))
    assert ok.search.rung_epochs == (1, 2, 6) and ok.epochs == 6
    with pytest.raises(CkError, match="no search"):
        design_experiment(spec(tmp_path, search=None).__class__(
            name="g", models=[("m", "/m")], dataset="/d.json", grid={"lora_rank": _dim("LoRA rank", "4..8")}))


def test_trial_settings_have_their_types(tmp_path):
    exp = design_experiment(spec(tmp_path))
    for _, run in exp.trials():
        assert isinstance(run.value("lora_rank"), int) and isinstance(run.value("learning_rate"), float)
        assert BY_KEY["lora_attn_modules"].problem(list(run.value("lora_attn_modules"))) is None
