"""`ck design --search …` and a spec's `search:`: the same command writes the same plan, bad input is
refused (exit 2, file:line: field, nothing written), and `ck scaffold` / `ck run --dry-run` take the
plan as it is (a run directory per trial)."""
from pathlib import Path

import pytest
import yaml

from cruijff_kit.cli import main
from cruijff_kit.experiment.parse import load_experiment
from tests.refusals import refused

CAP = Path(__file__).parents[2] / "tools" / "cruijff_kit" / "blueprints" / "capitalization" / "inspect_task.py"


@pytest.fixture
def inputs(design_inputs):
    return design_inputs


def base(inputs):
    return ["--model", f"Llama-3.2-1B-Instruct={inputs / 'absent' / 'Llama-3.2-1B-Instruct'}",
            "--dataset", str(inputs / "data.json"), "--gpus", "0", "--task", f"capitalization={CAP}@last"]


SEARCH = ["--search", "asha", "--trials", "5", "--vary", "Learning rate=1e-5..1e-3:log", "--vary", "LoRA rank=4..32"]


def design(inputs, name, *extra):
    exp = inputs / name
    assert main(["design", str(exp), *base(inputs), *extra]) == 0
    return exp


def test_the_same_command_designs_the_same_trials(inputs):
    a = load_experiment(design(inputs, "a", *SEARCH))
    b = load_experiment(design(inputs, "b", *SEARCH))
    c = load_experiment(design(inputs, "c", *SEARCH, "--seed", "1"))
    assert [r for _, r in a.trials()] == [r for _, r in b.trials()]
    assert [r.settings for _, r in a.trials()] != [r.settings for _, r in c.trials()]
    assert a.search == b.search and c.search.seed == 1
    assert a.epochs == 9 and a.validation is True and len(a.trials()) == 5
    for _, run in a.trials():
        assert 1e-5 <= run.value("learning_rate") <= 1e-3 and 4 <= run.value("lora_rank") <= 32
    log = (inputs / "a" / "design-experiment.log").read_text()
    assert "search=asha trials=5 rung_epochs=1,3,9 metric=val_loss seed=0" in log


def test_tpe_says_its_design_time_trials_are_its_random_start_up(inputs, capsys):
    tpe = ["tpe" if x == "asha" else x for x in SEARCH]
    design(inputs, "tpe", *tpe)
    assert "TPE samples these trials when the plan is designed" in capsys.readouterr().err
    design(inputs, "asha", *SEARCH)
    assert "TPE samples" not in capsys.readouterr().err


def test_scaffold_and_dry_run_take_every_trial(inputs, capsys):
    exp = design(inputs, "exp", *SEARCH, "--rung-epochs", "1,2", "--metric", "capitalization:accuracy",
                 "--vary", "LoRA dropout=0,0.1")
    plan = load_experiment(exp)
    assert plan.search.rungs == 2 and plan.epochs == 2
    assert main(["scaffold", str(exp)]) == 0
    dirs = sorted(p.name for p in exp.iterdir() if p.is_dir() and p.name.startswith("t0"))
    assert len(dirs) == 5 and [d[:4] for d in dirs] == ["t00_", "t01_", "t02_", "t03_", "t04_"]
    for (n, run), d in zip(plan.trials(), dirs):
        setup = yaml.safe_load((exp / d / "setup_finetune.yaml").read_text())
        assert setup["learning_rate"] == run.value("learning_rate") and setup["lora_rank"] == run.value("lora_rank")
        assert setup["epochs"] == 2
        # the task metric on the validation split at every rung (0-based epochs 0 and 1)
        assert {p.name for p in (exp / d / "eval").glob("*.slurm")} == {"epoch0.slurm", "epoch1.slurm"}
        assert '"split": "validation"' in (exp / d / "eval" / "epoch0.slurm").read_text()
    capsys.readouterr()
    assert main(["run", str(exp), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert all(f"{d}" in out for d in dirs)


def test_a_spec_file_states_the_search(inputs):
    spec = inputs / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "spec_search", "models": {"Llama-3.2-1B-Instruct": str(inputs / "absent")},
        "dataset": str(inputs / "data.json"), "gpus": 0,
        "tasks": [{"task": "capitalization", "script": str(CAP), "epochs": "last"}],
        "grid": {"learning_rate": "1e-5..1e-3:log", "lora_rank": [8, 16]},
        "search": {"algorithm": "tpe", "trials": 3, "rungs": 2, "reduction_factor": 2, "seed": 5,
                   "metric": "capitalization:accuracy", "budget_gpu_hours": 1000}}, sort_keys=False))
    assert main(["design", str(inputs / "s"), "--spec", str(spec)]) == 0
    plan = load_experiment(inputs / "s")
    s = plan.search
    assert (s.algorithm, s.trials, s.rung_epochs, s.seed, s.direction, s.budget_gpu_hours) == \
        ("tpe", 3, (1, 2), 5, "maximize", 1000.0)
    assert {d.key: (d.low, d.high, d.log) if d.is_range else d.choices for d in s.space} == \
        {"learning_rate": (1e-5, 1e-3, True), "lora_rank": (8, 16)}
    # flags win over the spec
    assert main(["design", str(inputs / "s2"), "--spec", str(spec), "--trials", "2"]) == 0
    assert load_experiment(inputs / "s2").search.trials == 2


RANK = ["--vary", "LoRA rank=4..32"]
CLI = [  # (extra flags, field, a phrase of the message)
    (["--search", "asha", "--trials", "4", "--vary", "Learning rate=1e-3..1e-5:log"], "--vary Learning rate",
     "inverted range"),
    (["--search", "asha", "--trials", "4", "--vary", "Learning rate=1e-5..1e-5"], "--vary Learning rate", "empty range"),
    (["--search", "asha", "--trials", "4", "--vary", "Learning rate=1e-5.."], "--vary Learning rate", "empty range"),
    (["--search", "asha", "--trials", "4", "--vary", "Learning rate=0..1e-3:log"], "--vary Learning rate", "above 0"),
    (["--search", "asha", "--trials", "4", "--vary", "LoRA rank=4.5..32"], "--vary LoRA rank", "whole number"),
    (["--search", "asha", "--trials", "4", "--vary", "LoRA on MLP=0..1"], "--vary LoRA on MLP", "not a number"),
    (["--search", "asha", "--trials", "4", "--vary", "Split=1..2"], "Split", "cannot differ between runs"),
    (["--search", "asha", "--trials", "4", "--vary", "LoRA dropout=0..1"], "--vary LoRA dropout", "< 1"),
    (RANK, "--vary LoRA rank", "there is no search"),
    (["--trials", "4", *RANK], "--trials", "add --search"),
    (["--search", "grid", "--trials", "4", *RANK], "--search", "unknown search algorithm"),
    (["--search", "asha", *RANK], "--trials", "needs a number of trials"),
    (["--search", "asha", "--trials", "0", *RANK], "--trials", ">= 1"),
    (["--search", "asha", "--trials", "4", "--rungs", "0", *RANK], "--rungs", ">= 1"),
    (["--search", "asha", "--trials", "4", "--reduction-factor", "1", *RANK], "--reduction-factor", ">= 2"),
    (["--search", "asha", "--trials", "4", "--rung-epochs", "1,3,3", *RANK], "--rung-epochs", "strictly increasing"),
    (["--search", "asha", "--trials", "4", "--rung-epochs", "1,3", "--epochs", "4", *RANK], "--rung-epochs",
     "epochs are 4"),
    (["--search", "asha", "--trials", "4", "--epochs", "2", *RANK], "--rung-epochs", "do not fit in 2 epoch"),
    (["--search", "asha", "--trials", "4", "--metric", "sums:accuracy", *RANK], "--metric", "no task 'sums'"),
    (["--search", "asha", "--trials", "4", "--metric", "capitalization:mae", *RANK], "--metric",
     "does not report a metric 'mae'"),
    (["--search", "asha", "--trials", "4", "--metric", "accuracy", *RANK], "--metric", "TASK:METRIC"),
    (["--search", "asha", "--trials", "4", "--direction", "up", *RANK], "--direction", "minimize or maximize"),
    (["--search", "asha", "--trials", "4", "--set", "Validation during training=false", *RANK], "--metric",
     "validation during training is switched off"),
    (["--search", "asha", "--trials", "4", "--budget-gpu-hours", "-1", *RANK], "--budget-gpu-hours", "positive"),
    (["--search", "asha", "--trials", "4", "--budget-gpu-hours", "1e-6", *RANK], "--budget-gpu-hours",
     "smaller than one rung"),
    (["--search", "asha", "--trials", "4"], "--search", "nothing to search"),
    (["--search", "asha", "--trials", "4", "--seeds", "2", *RANK], "--search", "replicate"),
]


@pytest.mark.parametrize("extra,field,needle", CLI, ids=[f"cli-{i}" for i in range(len(CLI))])
def test_bad_search_flags_arerefused(inputs, capsys, extra, field, needle):
    refused(capsys, ["design", str(inputs / "new"), *base(inputs), *extra], inputs, f"{field}: ", needle)
    assert not (inputs / "new").exists()


SPEC_BAD = [  # (change to the spec, field, a phrase); the line is the key's line in the file
    ({"search": {"algorithm": "asha", "trials": 0}}, "search.trials", ">= 1"),
    ({"search": {"algorithm": "asha", "trials": 3, "eta": 1}}, "search.reduction_factor", ">= 2"),
    ({"search": {"algorithm": "asha", "trials": 3, "rung_epochs": [3, 1]}}, "search.rung_epochs", "strictly"),
    ({"search": {"algorithm": "asha", "trials": 3, "metric": "capitalization:mae"}}, "search.metric", "does not report"),
    ({"search": {"algorithm": "asha", "trials": 3, "budget_gpu_hours": 1e-7}}, "search.budget_gpu_hours",
     "smaller than one rung"),
    ({"search": {"algorithm": "asha", "trials": 3, "pruner": "x"}}, "search.pruner", "unknown search key"),
    ({"grid": {"learning_rate": "1e-3..1e-5"}}, "grid.learning_rate", "inverted range"),
    ({"search": None}, "Learning rate", "no search"),
]


@pytest.mark.parametrize("change,field,needle", SPEC_BAD, ids=[f"spec-{i}" for i in range(len(SPEC_BAD))])
def test_bad_search_in_a_spec_is_refused_at_its_line(inputs, capsys, change, field, needle):
    d = {"name": "bad", "models": {"Llama-3.2-1B-Instruct": str(inputs / "absent")},
         "dataset": str(inputs / "data.json"), "gpus": 0,
         "tasks": [{"task": "capitalization", "script": str(CAP), "epochs": "last"}],
         "grid": {"learning_rate": "1e-5..1e-3:log"}, "search": {"algorithm": "asha", "trials": 3}}
    d.update(change)
    if d["search"] is None:
        del d["search"]
    spec = inputs / "spec.yaml"
    spec.write_text(yaml.safe_dump(d, sort_keys=False))
    lines = spec.read_text().splitlines()
    key = field.split(".")[-1]
    at = next((i for i, line in enumerate(lines, 1) if line.strip().startswith(f"{key}:")), None)
    if field == "search.reduction_factor":
        at = next(i for i, line in enumerate(lines, 1) if line.strip().startswith("eta:"))
    where = f"{spec}:{at}: {field}" if at and field.startswith(("search.", "grid.")) else f"{spec}"
    refused(capsys, ["design", str(inputs / "new"), "--spec", str(spec)], inputs, where, needle)
