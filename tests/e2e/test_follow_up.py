"""The follow-up experiment, for real on the tiny model (the session's finished experiment,
tests/finished_experiment.py: real torchtune, real inspect-ai, local executor): a finished sweep
gets a new task on one run's earlier epoch (`ck design --add-task`; only epoch_1 was evaluated), and
`ck run --only inspect` evaluates that and only that; no training runs again. The evaluation's log
names the checkpoint it evaluated (epoch_0, not the run's last, also for an adapter merged in
scratch)."""
import json
from pathlib import Path

import pytest

from tests.finished_experiment import EVAL_EPOCH, FINETUNED, TASK

pytestmark = pytest.mark.slow


def _logs(exp: Path) -> dict[Path, object]:
    from inspect_ai.log import read_eval_log

    return {p: read_eval_log(str(p), header_only=True) for p in sorted(exp.glob("*/eval/logs/*.eval"))}


def test_a_new_task_on_one_checkpoint_evaluates_only_that(mutable_experiment, tmp_path):
    fin = mutable_experiment
    exp = fin.exp
    target = "drop0.25"
    assert EVAL_EPOCH == 1 and target in FINETUNED  # epoch_0 has no evaluation yet: a new job
    ledger = fin.ledger()
    before = {p: p.stat().st_mtime_ns for p in _logs(exp)}
    assert before and not any("/eval/epoch0" in k for k in ledger)

    added = json.loads(fin.ck("design", exp, "--add-task", f"cap_new={TASK}@0:{target}", "--json").stdout)
    [run_name] = [r for a in added["added"] for r in a["runs"]]
    assert run_name.endswith("_drop0.25") and [a["runs"] for a in added["added"]] == [[run_name]]
    for line in added["next"]:  # exactly the commands the reply names
        fin.ck(*line.split()[1:], "--json")
    after = fin.ledger()
    assert set(after) - set(ledger) == {f"{target}/eval/epoch0"}
    for key in (f"{d}/finetune" for d in FINETUNED):
        assert len(after[key]["attempts"]) == len(ledger[key]["attempts"]) == 1  # nothing retrained
    assert all(after[k]["attempts"] == ledger[k]["attempts"] for k in ledger)  # no other job ran again
    logs = _logs(exp)
    assert {p: p.stat().st_mtime_ns for p in before} == before
    new = [log for p, log in logs.items() if p not in before]
    assert len(new) == 1
    log = new[0]
    assert log.status == "success" and log.eval.metadata["ck_task"] == "cap_new" and log.eval.metadata["ck_epoch"] == "0"
    assert log.eval.model.endswith("/epoch_0")
    model_path = str(log.eval.model_args.get("model_path", ""))
    assert model_path.endswith("epoch_0") and not model_path.endswith("epoch_1"), model_path

    report = json.loads(fin.ck("analyze", exp, "--out", tmp_path / "analysis", "--json").stdout)
    assert "cap_new" in report["tasks"]
