"""The run side of a search (run/step_search.py) end to end in seconds: a real plan designed with
`ck design --search asha`, scaffolded with `ck scaffold`, run by the real orchestrator and the
local executor; only the trainer and evaluator inside the scaffolded job scripts are stand-ins
(tests/run/search_standins.py) that write real checkpoints, DiskLogger lines and inspect logs.

Covered here (the slow e2e test, tests/e2e/test_search.py, covers val_loss on real torchtune and a
kill mid-search): a trial whose training fails for good or leaves no evidence (and is not trained
again by a rerun or --retry-failed), `--runs` (no trial decided before the trials ahead of it), the
TASK:METRIC path (the rung decided on the `<task>_validation` evaluation's log), the GPU-hour
budget, and `ck run --dry-run`.

Expected decisions come from `expected_decisions` below: ASHA's rule written out plainly (in trial
order, a trial goes on when its value is among the best max(1, n // eta) of the n values that trial
and the earlier ones reached at that rung), applied to the stand-ins' metric functions."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cruijff_kit.cli import main
from cruijff_kit.experiment.parse import load_experiment
from cruijff_kit.state.artifacts import completed_epochs

from . import search_standins as standins
from .helpers import run

TASK = Path(__file__).parents[2] / "tools" / "cruijff_kit" / "blueprints" / "capitalization" / "inspect_task.py"
RUNG_EPOCHS = (1, 2, 3)
ETA = 2
# seed 3 samples learning rates on both sides of 1e-3 and 1e-2: val_loss and accuracy rank them differently
SEARCH = ["--search", "asha", "--trials", "6", "--rungs", "3", "--reduction-factor", str(ETA),
          "--rung-epochs", ",".join(map(str, RUNG_EPOCHS)), "--vary", "Learning rate=1e-5..1e-1:log", "--seed", "3"]


@pytest.fixture
def inputs(design_inputs):
    return design_inputs


def designed(inputs: Path, *extra: str, budget: str | None = None) -> Path:
    """A search plan designed and scaffolded by the real commands (no model needed for either).
    budget: written into the plan's Search section by hand, as a user may, with the runs' Est. Time
    set to ~0s (`ck design` and the plan refuse a budget below the first rung's estimate, minutes
    per trial, which the stand-ins never take)."""
    exp = inputs / "exp"
    assert main(["design", str(exp), "--model", f"Llama-3.2-1B-Instruct={inputs / 'absent' / 'Llama-3.2-1B-Instruct'}",
                 "--dataset", str(inputs / "data.json"), "--gpus", "0", "--no-control",
                 "--task", f"capitalization={TASK}@last", *SEARCH, *extra]) == 0
    if budget is not None:
        summary = exp / "experiment_summary.md"
        text = summary.read_text()
        assert "- **Budget (GPU-hours):** -\n" in text and text.count("| Fine-tuned | ~5m |") == 6
        text = text.replace("- **Budget (GPU-hours):** -\n", f"- **Budget (GPU-hours):** {budget}\n")
        summary.write_text(text.replace("| Fine-tuned | ~5m |", "| Fine-tuned | ~0s |"))
    assert main(["scaffold", str(exp)]) == 0
    return exp


def trials(exp: Path) -> dict[int, tuple[str, float]]:
    """trial -> (run directory, its learning rate as the scaffold wrote it)."""
    out = {}
    for number, r in load_experiment(exp).trials():
        d = next(p for p in exp.iterdir() if p.name.startswith(f"t{number:02d}_"))
        lr = yaml.safe_load((d / "finetune.yaml").read_text())["optimizer"]["lr"]
        assert lr == pytest.approx(r.value("learning_rate"))
        out[number] = (d.name, float(lr))
    return out


def expected_decisions(values: dict[int, list[float]], maximize: bool,
                       fails_at: dict[int, int] | None = None) -> dict[tuple[int, int], tuple[str, float | None]]:
    """(trial, rung) -> (decision, value). values[t][r]: trial t's metric at rung r; fails_at: trial ->
    the rung whose training fails."""
    fails_at = fails_at or {}
    out: dict[tuple[int, int], tuple[str, float | None]] = {}
    alive = sorted(values)
    for r in range(len(RUNG_EPOCHS)):
        seen: list[float] = []
        nxt = []
        for t in alive:
            if fails_at.get(t) == r:
                out[(t, r)] = ("failed", None)
                continue
            v = values[t][r]
            if r == len(RUNG_EPOCHS) - 1:
                out[(t, r)] = ("completed", v)
                continue
            seen.append(v)
            keep = sorted(seen, reverse=maximize)[:max(1, len(seen) // ETA)]
            good = v >= keep[-1] if maximize else v <= keep[-1]
            out[(t, r)] = ("promoted" if good else "pruned", v)
            if good:
                nxt.append(t)
        alive = nxt
    return out


def ledger(exp: Path) -> dict:
    return json.loads((exp / ".ck" / "ledger.json").read_text())


def decided(exp: Path) -> list[dict]:
    return ledger(exp)["search"]["decisions"]


def ran(exp: Path) -> list[dict]:
    return standins.marker_lines(exp.parent / "ran.jsonl")


def trained_epochs(exp: Path, run_dir: str) -> list[int]:
    """Every epoch the stand-in trained for this run, in order (repeats would show)."""
    return [e for row in ran(exp) if row["kind"] == "finetune" and row["run"] == run_dir for e in row["epochs"]]


def evaluated(exp: Path) -> list[str]:
    return [row["job"] for row in ran(exp) if row["kind"] == "eval"]


def assert_trained_rung_by_rung(exp: Path, run_dir: str, rungs_reached: int) -> None:
    """One training per rung reached: rung r stops after its epochs, later rungs resume."""
    attempts = [a for a in ledger(exp)["jobs"][f"{run_dir}/finetune"]["attempts"] if a.get("job_id")]
    assert len(attempts) == rungs_reached, (run_dir, attempts)
    for rung, a in enumerate(attempts):
        over = a.get("overrides") or {}
        assert over.get("stop_after_epochs") == str(RUNG_EPOCHS[rung]), (run_dir, a)
        assert over.get("resume_from_checkpoint") == (None if rung == 0 else "True"), (run_dir, a)


def test_a_trial_that_fails_competes_no_more_blocks_nobody_and_is_never_retrained(inputs, capsys):
    exp = designed(inputs)
    t = trials(exp)
    # trial 1's training fails in its first epoch (rung 0), trial 3's after it was promoted (in epoch
    # 1, rung 1); trial 2 trains its rung but logs no validation loss (no evidence: failed too)
    standins.install(exp, exp.parent / "ran.jsonl", fail_at={t[1][0]: 0, t[3][0]: 1}, no_val_loss=(t[2][0],))
    report = run(exp, max_parallel=2)

    values = {n: [standins.val_loss(lr, e - 1) for e in RUNG_EPOCHS] for n, (_, lr) in t.items()}
    want = expected_decisions(values, maximize=False, fails_at={1: 0, 2: 0, 3: 1})
    # the plan's learning rates make this search non-trivial: two pruned, one promoted past the failures
    assert want[(3, 0)][0] == "promoted" and want[(0, 2)][0] == "completed"
    assert [n for n in t if want.get((n, 0), ("",))[0] == "pruned"] == [4, 5]
    got = decided(exp)
    assert {(d["trial"], d["rung"]): (d["decision"], d["value"]) for d in got} == \
        {k: (d, None if v is None else pytest.approx(v)) for k, (d, v) in want.items()}
    assert all(d["run"] == t[d["trial"]][0] and d["metric"] == "val_loss" for d in got)
    # decided in trial order within a rung, each (trial, rung) once
    for r in range(3):
        order = [d["trial"] for d in got if d["rung"] == r]
        assert order == sorted(order) and len(set(order)) == len(order)
    why = {(d["trial"], d["rung"]): (d["why"], d["epochs"]) for d in got}
    assert why[(1, 0)] == ("training FAILED: exit code 1", 0)
    assert why[(2, 0)] == ("no val_loss after 1 epoch(s): the evidence this rung needs is missing", 1)
    assert why[(3, 1)] == ("training FAILED: exit code 1", 1)

    for n in (4, 5):  # pruned: trained exactly their rung, never more
        run_dir = t[n][0]
        assert trained_epochs(exp, run_dir) == [0] and completed_epochs(exp / run_dir / "checkpoints") == 1
        assert_trained_rung_by_rung(exp, run_dir, 1)
    assert trained_epochs(exp, t[0][0]) == [0, 1, 2]
    assert_trained_rung_by_rung(exp, t[0][0], 3)
    assert evaluated(exp) == [f"{t[0][0]}/eval/epoch2"]  # the only trial that reached its last epoch
    # the failed ones: trial 1 trained nothing, trial 2 and 3 their first rung; their held evaluations skipped
    assert completed_epochs(exp / t[1][0] / "checkpoints") == 0
    assert trained_epochs(exp, t[2][0]) == trained_epochs(exp, t[3][0]) == [0]
    assert [r["failed_at"] for r in ran(exp) if r.get("failed_at") is not None and r["run"] == t[3][0]] == [1]
    assert_trained_rung_by_rung(exp, t[3][0], 2)  # its failed attempt resumed rung 1
    jobs = {j.key: j for j in report.jobs}
    for n in (1, 2, 3):
        ev = jobs[f"{t[n][0]}/eval/epoch2"]
        assert ev.verdict.name == "DEPENDENCY_FAILED" and f"trial {n} failed at rung" in ev.note, ev
    assert jobs[f"{t[1][0]}/finetune"].verdict.name == jobs[f"{t[3][0]}/finetune"].verdict.name == "FAILED"
    # the failures are the invocation's only failures; the pruned trials' jobs are ok
    assert not report.ok
    assert {j.key for j in report.failed} == {f"{t[n][0]}/finetune" for n in (1, 3)} | \
        {f"{t[n][0]}/eval/epoch2" for n in (1, 2, 3)}
    for n in (4, 5):
        assert jobs[f"{t[n][0]}/eval/epoch2"].verdict.name == "PRUNED" and jobs[f"{t[n][0]}/finetune"].ok
        # held, then pruned: never submitted
        assert not (ledger(exp)["jobs"].get(f"{t[n][0]}/eval/epoch2") or {}).get("attempts")
    assert jobs[f"{t[0][0]}/eval/epoch2"].state.name == "COMPLETED"

    # a failed trial's decision is final: running again, even with --retry-failed, trains nothing
    # (the generic retry used to resubmit its training without rung overrides: all epochs from scratch)
    n_ran = len(ran(exp))
    for retry in (False, True):
        again = run(exp, max_parallel=2, retry_failed=retry)
        assert again.submitted == [] and len(ran(exp)) == n_ran and decided(exp) == got, retry
        jobs = {j.key: j for j in again.jobs}
        for n in (1, 2, 3):
            ft = jobs[f"{t[n][0]}/finetune"]
            assert ft.verdict.name == "FAILED" and ft.note.endswith("the search went on without it"), ft
            assert jobs[f"{t[n][0]}/eval/epoch2"].verdict.name == "DEPENDENCY_FAILED"
        assert jobs[f"{t[0][0]}/finetune"].verdict.name == "DONE"
    # `ck status` reads the same fates and epochs from the ledger and the checkpoints
    capsys.readouterr()
    assert main(["status", str(exp), "--json"]) == 0
    st = json.loads(capsys.readouterr().out)["search"]
    assert {r["trial"]: r["fate"] for r in st["trials"]} == \
        {0: "completed", 1: "failed", 2: "failed", 3: "failed", 4: "pruned", 5: "pruned"}
    assert st["best"]["run"] == t[0][0]


def test_runs_selection_decides_no_trial_before_the_trials_ahead_of_it(inputs):
    exp = designed(inputs)
    t = trials(exp)
    standins.install(exp, exp.parent / "ran.jsonl")
    # `--runs` one late trial: it trains its first rung, then waits for trials 0..3 (it used to be
    # decided against itself alone, "best 1 of 1", and promoted to the end)
    first = run(exp, max_parallel=2, runs=f"{t[4][0]}*")
    assert first.ok and ledger(exp).get("search", {}).get("decisions", []) == []
    assert trained_epochs(exp, t[4][0]) == [0] and {row["run"] for row in ran(exp)} == {t[4][0]}
    jobs = {j.key: j for j in first.jobs}
    assert jobs[f"{t[4][0]}/eval/epoch2"].action.value == "hold"

    report = run(exp, max_parallel=2)
    assert report.ok, report.to_dict()
    values = {n: [standins.val_loss(lr, e - 1) for e in RUNG_EPOCHS] for n, (_, lr) in t.items()}
    want = expected_decisions(values, maximize=False)
    assert want[(4, 0)][0] == "pruned"
    assert {(d["trial"], d["rung"]): (d["decision"], d["value"]) for d in decided(exp)} == \
        {k: (d, pytest.approx(v)) for k, (d, v) in want.items()}
    assert trained_epochs(exp, t[4][0]) == [0]  # its rung was not trained again
    assert_trained_rung_by_rung(exp, t[4][0], 1)


def test_a_task_metric_decides_each_rung_from_its_validation_evaluation(inputs):
    # a budget that is never reached: the budget's accounting runs and changes no decision
    exp = designed(inputs, "--metric", "capitalization:accuracy", "--budget-gpu-hours", "1000")
    t = trials(exp)
    standins.install(exp, exp.parent / "ran.jsonl")
    report = run(exp, max_parallel=2)
    assert report.ok, report.to_dict()

    values = {n: [standins.accuracy(lr, e - 1) for e in RUNG_EPOCHS] for n, (_, lr) in t.items()}
    want = expected_decisions(values, maximize=True)
    by_loss = expected_decisions({n: [standins.val_loss(lr, e - 1) for e in RUNG_EPOCHS] for n, (_, lr) in t.items()},
                                 maximize=False)
    assert {k: d for k, (d, _) in want.items()} != {k: d for k, (d, _) in by_loss.items()}  # the metric matters
    got = decided(exp)
    assert {(d["trial"], d["rung"]): (d["decision"], d["value"]) for d in got} == \
        {k: (d, pytest.approx(v)) for k, (d, v) in want.items()}
    assert {d["metric"] for d in got} == {"capitalization:accuracy"}
    final = {d["trial"]: d for d in got}
    for n, (run_dir, _) in t.items():
        epochs = final[n]["epochs"]
        assert trained_epochs(exp, run_dir) == list(range(epochs))
        # the rung evaluations ran up to the trial's last rung, on the validation split; later epochs never
        runs_evals = sorted(row["epoch"] for row in ran(exp) if row["kind"] == "eval" and row["run"] == run_dir)
        assert runs_evals == list(range(epochs)), (run_dir, runs_evals)
        for row in ran(exp):
            if row["kind"] == "eval" and row["run"] == run_dir:
                want_tasks = ["capitalization", "capitalization_validation"] if row["epoch"] == 2 \
                    else ["capitalization_validation"]
                assert row["tasks"] == want_tasks, row
    # the values decided on are those the logs hold, per rung epoch
    from cruijff_kit.state.search import task_metric

    for d in got:
        run_dir = t[d["trial"]][0]
        assert task_metric(exp / run_dir, "capitalization_validation", d["epochs"] - 1, "accuracy") == \
            pytest.approx(d["value"])
    # the Optuna journal holds the same fates
    import optuna

    study = optuna.load_study(study_name="search", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(exp / ".ck" / "search.journal"))))
    assert {s.number: s.state.name for s in study.get_trials()} == \
        {n: {"pruned": "PRUNED", "completed": "COMPLETE"}[d["decision"]] for n, d in final.items()}
    assert study.best_trial.number == max((d for d in final.values() if d["decision"] == "completed"),
                                          key=lambda d: d["value"])["trial"]


def test_a_promotion_over_the_gpu_hour_budget_prunes(inputs):
    exp = designed(inputs, budget="1e-4")  # 0.36 s: less than any trial's first epoch
    assert load_experiment(exp).search.budget_gpu_hours == pytest.approx(1e-4)
    t = trials(exp)
    # an epoch takes over a second: the ledger times jobs to the second, so each counts >= 1 s
    standins.install(exp, exp.parent / "ran.jsonl", epoch_sleep=1.0)
    report = run(exp, max_parallel=2)
    assert report.ok, report.to_dict()

    values = {n: [standins.val_loss(lr, e - 1) for e in RUNG_EPOCHS] for n, (_, lr) in t.items()}
    want = expected_decisions(values, maximize=False)
    got = decided(exp)
    # rung 0 decides every trial; those the rule would promote are pruned for the budget
    assert {d["trial"] for d in got} == set(t) and {d["rung"] for d in got} == {0}
    for d in got:
        rule, value = want[(d["trial"], 0)]
        assert d["decision"] == "pruned" and d["value"] == pytest.approx(value)
        if rule == "promoted":
            assert d["why"].startswith("over the budget: ") and d["why"].endswith("for epochs 2..2 > 0.0001"), d
            used, more = float(d["why"].split()[3]), float(d["why"].split()[7])
            assert used >= 1 / 3600 and more >= 1 / 3600, d  # its own first epoch, and the next one
        else:
            assert d["why"].startswith("not in the best"), d
    assert sum(want[(n, 0)][0] == "promoted" for n in t) >= 2
    for run_dir, _ in t.values():
        assert trained_epochs(exp, run_dir) == [0]
        assert_trained_rung_by_rung(exp, run_dir, 1)
    assert evaluated(exp) == []  # every evaluation (epoch 2) was held, then pruned


def test_dry_run_of_a_search_writes_nothing_and_holds_later_epochs(inputs):
    exp = designed(inputs, "--metric", "capitalization:accuracy")
    t = trials(exp)
    before = {p: p.read_bytes() for p in inputs.rglob("*") if p.is_file()}
    lines: list[str] = []
    report = run(exp, lines, dry_run=True)
    assert {p: p.read_bytes() for p in inputs.rglob("*") if p.is_file()} == before, "a dry run writes nothing"
    assert report.dry_run and report.submitted == []
    jobs = {j.key: j for j in report.jobs}
    assert len(jobs) == 6 * 4  # per trial: its training, and an evaluation at each of epochs 0, 1, 2
    for n, (run_dir, _) in t.items():
        ft = jobs[f"{run_dir}/finetune"]
        assert (ft.action.value, ft.verdict.name) == ("submit", "WOULD_SUBMIT")
        assert ft.note.startswith(f"trial {n} rung 0: train to 1 epoch(s)"), ft.note
        ev0 = jobs[f"{run_dir}/eval/epoch0"]  # rung 0's evidence: chained to the rung's training
        assert ev0.verdict.name == "WOULD_SUBMIT"
        for e in (1, 2):
            ev = jobs[f"{run_dir}/eval/epoch{e}"]
            assert (ev.action.value, ev.verdict.name) == ("hold", "WAITING"), ev
            assert f"trial {n}: epoch {e} is trained only if the search promotes it past rung 0" == ev.note
    assert not (exp / ".ck" / "ledger.json").exists() and not ran(exp)
    text = "\n".join(lines)  # what the user reads
    assert text.count("HELD  trial ") == 6 * 2 and text.count("WOULD SUBMIT") == 6 * 2, text
