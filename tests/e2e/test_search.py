"""An ASHA search for real on the tiny model (real torchtune, real inspect-ai, local executor):
4 trials over a learning-rate range where the learning rate matters, 3 rungs (1, 2, 3 epochs),
reduction factor 2 (4 -> 2 -> 1 trials).

Once, with the defaults a user gets (`--poll 60`): the detached supervisor is killed mid-search and
`ck run` resumes it. Checked against what disk says: pruned trials trained fewer epochs, no rung of
a trial trained twice, every decision the one the values on disk imply (in trial order), the same
decisions before and after the kill, the Optuna journal agrees, and the best configuration is the
one the full grid of the same learning rates finds.

The full grid is also the plain (non-search) kill-and-resume check: its detached supervisor is
killed once a training has finished, and `ck run` resumes it without redoing or resubmitting
anything (merged here from tests/e2e/test_pipeline.py, which trained two runs of its own for it)."""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.cli import run_ck

ROOT = Path(__file__).resolve().parents[2]
TASK = ROOT / "tools/cruijff_kit/blueprints/capitalization/inspect_task.py"
pytestmark = pytest.mark.slow
BUDGET_S = 600  # the search, the kill and the resume (about 1-2 min on a quiet 2-core machine)
TRIALS, RUNGS = 4, 3
SEARCH = ["--search", "asha", "--trials", str(TRIALS), "--rungs", str(RUNGS), "--reduction-factor", "2",
          "--rung-epochs", "1,2,3", "--metric", "val_loss", "--seed", "0"]
COMMON = ["--gpus", "0", "--no-control", "--set", "Max steps per epoch=3", "--set", "Warmup steps=0", "--set", "Eval max tokens=4",
          "--task", f"capitalization={TASK}@last"]


def ck(*args, env, check=True, timeout=900):
    return run_ck(*args, env=env, check=check, timeout=timeout)


def read_ledger(exp: Path) -> dict:
    p = exp / ".ck" / "ledger.json"
    return json.loads(p.read_text()) if p.exists() else {"jobs": {}}


def final_decisions(exp: Path) -> dict[int, dict]:
    """trial -> its last decision (the ledger lists them in the order they were made)."""
    return {d["trial"]: d for d in read_ledger(exp)["search"]["decisions"]}


def best_completed(final: dict[int, dict]) -> dict:
    return min((d for d in final.values() if d["decision"] == "completed"), key=lambda d: (d["value"], d["trial"]))


def kill_supervisor_when(exp: Path, ready, what: str, deadline: float) -> None:
    """SIGKILL the experiment's detached supervisor once ready(ledger) holds; fail at the deadline."""
    pid = int((exp / ".ck" / "supervisor.pid").read_text().split()[0])
    while not ready(read_ledger(exp)):
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {BUDGET_S / 2:.0f} s")
        time.sleep(0.5)
    os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_model):
    from cruijff_kit.blueprints.capitalization.generate import generate

    base = tmp_path_factory.mktemp("search")
    generate(base / "data.json", n=40)
    (base / "claude.local.md").write_text(f"- venv: {sys.prefix}\n")
    return {"base": base, "model": tiny_model, "env": {"CK_LOCAL_CONFIG": str(base / "claude.local.md")}}


@pytest.fixture(scope="module")
def searched(inputs):
    """The search, killed once mid-way and resumed: (experiment, decisions before the kill)."""
    exp, env = inputs["base"] / "asha", inputs["env"]
    ck("design", exp, "--model", f"tiny={inputs['model']}", "--dataset", inputs["base"] / "data.json",
       "--vary", "Learning rate=1e-5..5e-2:log", *SEARCH, *COMMON, env=env)
    ck("scaffold", exp, env=env)
    t0 = time.monotonic()
    ck("run", exp, "--executor", "local", "--max-parallel", "2", "--detach", env=env)
    # kill it once rung 0 is partly decided
    kill_supervisor_when(exp, lambda ledger: len(ledger.get("search", {}).get("decisions", [])) >= 3,
                         "3 search decisions", t0 + BUDGET_S / 2)
    before = read_ledger(exp)["search"]["decisions"]
    r = ck("run", exp, "--executor", "local", "--max-parallel", "2", "--json", env=env,
           timeout=BUDGET_S - (time.monotonic() - t0))
    return exp, before, json.loads(r.stdout)


def _trained(exp: Path, run: str) -> int:
    return sum(1 for p in (exp / run / "checkpoints").glob("epoch_*") if any(p.glob("*.safetensors")))


def test_pruned_trials_trained_fewer_epochs_and_the_search_less_than_the_grid(searched):
    exp, _, report = searched
    assert report["ok"], json.dumps(report, indent=1)[:4000]
    final = final_decisions(exp)
    assert len(final) == TRIALS and {d["decision"] for d in final.values()} <= {"pruned", "completed"}, final
    pruned = [d for d in final.values() if d["decision"] == "pruned"]
    completed = [d for d in final.values() if d["decision"] == "completed"]
    assert pruned and completed
    for d in pruned:
        assert _trained(exp, d["run"]) == d["epochs"] < 3, d
    for d in completed:
        assert _trained(exp, d["run"]) == 3, d
    total = sum(_trained(exp, d["run"]) for d in final.values())
    assert total < TRIALS * RUNGS, total


def test_no_rung_trained_twice_and_each_rung_resumed(searched):
    exp, _, _ = searched
    ledger = read_ledger(exp)
    decisions = ledger["search"]["decisions"]
    for trial in {d["trial"] for d in decisions}:
        mine = sorted((d for d in decisions if d["trial"] == trial), key=lambda d: d["rung"])
        run = mine[0]["run"]
        attempts = [a for a in ledger["jobs"][f"{run}/finetune"]["attempts"] if a.get("job_id")]
        # one training per rung reached: rung r stops after its epochs, later rungs resume
        assert len(attempts) == len(mine), (run, attempts, mine)
        for rung, a in enumerate(attempts):
            over = a.get("overrides") or {}
            assert over.get("stop_after_epochs") == str((1, 2, 3)[rung]), (run, a)
            assert over.get("resume_from_checkpoint") == (None if rung == 0 else "True"), (run, a)


def test_decisions_follow_from_the_values_on_disk_and_survive_the_kill(searched):
    from cruijff_kit.run.search_rules import TrialView, walk
    from cruijff_kit.state.search import epoch_val_loss

    exp, before, _ = searched
    decisions = read_ledger(exp)["search"]["decisions"]
    key = lambda d: (d["trial"], d["rung"])  # noqa: E731
    after = {key(d): d for d in decisions}
    for d in before:  # the same decisions after the kill: none changed, none made twice
        assert after[key(d)] == d
    assert len(after) == len(decisions)
    runs = {d["trial"]: d["run"] for d in decisions}
    views = [TrialView(t, run, _trained(exp, run), False, None,
                       lambda e, run=run: epoch_val_loss(exp / run / "checkpoints").get(e - 1)) for t, run in runs.items()]
    expected = {}
    for _ in range(3):
        for d in walk(views, (1, 2, 3), 2, "val_loss", False, expected):
            expected[(d.trial, d.rung)] = d
    assert {k: (d.decision, d.value) for k, d in expected.items()} == \
        {k: (d["decision"], d["value"]) for k, d in after.items()}


def test_the_optuna_journal_holds_the_same_trials_and_fates(searched):
    import optuna

    exp, _, _ = searched
    study = optuna.load_study(study_name="search", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(exp / ".ck" / "search.journal"))))
    final = final_decisions(exp)
    trials = study.get_trials()
    assert [t.number for t in trials] == list(range(TRIALS))
    for t in trials:
        d = final[t.number]
        assert t.user_attrs["run"] == d["run"]
        assert t.state.name == {"pruned": "PRUNED", "completed": "COMPLETE"}[d["decision"]]
        assert t.intermediate_values[d["epochs"]] == pytest.approx(d["value"])


@pytest.fixture(scope="module")
def grid(searched, inputs):
    """The full grid over the search's learning rates, 3 epochs each, training only. Its detached
    supervisor is killed once the first training has finished, and `ck run` resumes it:
    (grid experiment, its ledger before the kill, the resuming run's report, the search's lrs)."""
    from cruijff_kit.experiment.parse import load_experiment

    exp, _, _ = searched
    plan = load_experiment(exp)
    lrs = {run.name: plan.value("learning_rate", run) for _, run in plan.trials()}
    grid, env = inputs["base"] / "grid", inputs["env"]
    ck("design", grid, "--model", f"tiny={inputs['model']}", "--dataset", inputs["base"] / "data.json",
       "--lrs", ",".join(f"{v:g}" for v in sorted(set(lrs.values()))), "--epochs", "3",
       "--set", "Validation during training=true", *COMMON, env=env)
    ck("scaffold", grid, env=env)
    run = ["run", grid, "--executor", "local", "--max-parallel", "2", "--poll", "0.5", "--only", "torchtune"]
    ck(*run, "--detach", env=env)
    kill_supervisor_when(grid, lambda ledger: any(k.endswith("/finetune") and j.get("state") == "COMPLETED"
                                                  for k, j in ledger["jobs"].items()),  # intents have no state
                         "finished training", time.monotonic() + BUDGET_S / 2)
    before = read_ledger(grid)["jobs"]
    r = ck(*run, "--json", env=env, timeout=BUDGET_S)
    return grid, before, json.loads(r.stdout), lrs


def test_killed_grid_supervisor_resumes_without_redoing_finished_work(grid):
    exp, before, report, lrs = grid
    after = read_ledger(exp)["jobs"]
    assert report["ok"] and len(after) == len(set(lrs.values())), (report, after)
    assert all(j["state"] == "COMPLETED" for j in after.values()), after
    done_before = {k: j["job_id"] for k, j in before.items() if j.get("state") == "COMPLETED"}
    assert done_before
    for key, job_id in done_before.items():  # nothing finished was redone
        assert after[key]["job_id"] == job_id and len(after[key]["attempts"]) == 1
    assert not set(report["submitted"]) & {j.get("job_id") for j in before.values()}  # nothing submitted twice


def test_best_configuration_matches_the_full_grid(searched, grid):
    from cruijff_kit.experiment.parse import load_experiment
    from cruijff_kit.state.search import epoch_val_loss

    exp, _, _ = searched
    best = best_completed(final_decisions(exp))
    grid_exp, _, _, lrs = grid
    grid_plan = load_experiment(grid_exp)
    losses = {}
    for run in grid_plan.finetuned_runs:
        d = next(p for p in grid_exp.iterdir() if p.is_dir() and (p / "setup_finetune.yaml").is_file()
                 and f"{grid_plan.value('learning_rate', run):g}" in (p / "setup_finetune.yaml").read_text())
        losses[grid_plan.value("learning_rate", run)] = epoch_val_loss(d / "checkpoints")[2]
    grid_best = min(losses, key=losses.get)
    search_best = next(lr for name, lr in lrs.items() if name.startswith(f"t{best['trial']:02d}"))
    assert search_best == pytest.approx(grid_best), (losses, best)
    # the search's best trial trained exactly what the grid's run trained: equal validation loss
    assert best["value"] == pytest.approx(losses[grid_best], rel=1e-4)


def test_status_and_report_show_the_search(searched, inputs):
    exp, _, _ = searched
    final = final_decisions(exp)
    best = best_completed(final)
    st = json.loads(ck("status", exp, "--json", env=inputs["env"]).stdout)["search"]
    assert {t["trial"]: t["fate"] for t in st["trials"]} == {t: d["decision"] for t, d in final.items()}
    assert st["best"]["run"] == best["run"]
    trained = sum(_trained(exp, d["run"]) for d in final.values())
    assert f"{trained} of {TRIALS * RUNGS} run-epochs" in ck("status", exp, env=inputs["env"]).stdout
    ck("analyze", exp, env=inputs["env"])
    report = (exp / "analysis" / "report.md").read_text()
    assert f"## Search: asha, {TRIALS} trials, val_loss (lower is better)" in report
    assert f"trial {best['trial']} (`{best['run']}`" in report and "chosen on validation" in report
    assert "training not finished" not in report
