"""The follow-up experiment, for real on the tiny model (real torchtune, real inspect-ai, local
executor): a finished sweep gets a new task on one run's later epoch (`ck design --add-task`), and
`ck run --only inspect` evaluates that and only that; no training runs again. The evaluation's log
names the checkpoint it evaluated (epoch_1, also for an adapter merged in scratch)."""
import json
import sys
from pathlib import Path

import pytest

from tests.e2e.cli import run_ck

ROOT = Path(__file__).resolve().parents[2]
TASK = ROOT / "tools/cruijff_kit/blueprints/capitalization/inspect_task.py"
pytestmark = pytest.mark.slow

SPEC = """name: followup
models: {{tiny: {model}}}
dataset: {data}
grid: {{lora_rank: [4, 8]}}
epochs: 2
gpus: 0
controls: false
config: {{Max steps per epoch: 2, Eval max tokens: 4, Warmup steps: 0}}
tasks:
  - {{task: cap_test, script: {task}, epochs: [0]}}
"""


def ck(*args, env=None, check=True, timeout=900):
    return run_ck(*args, env=env, check=check, timeout=timeout)


def _logs(exp: Path) -> dict[Path, object]:
    from inspect_ai.log import read_eval_log

    return {p: read_eval_log(str(p), header_only=True) for p in sorted(exp.glob("*/eval/logs/*.eval"))}


def test_a_new_task_on_one_checkpoint_evaluates_only_that(tmp_path):
    from cruijff_kit.blueprints.capitalization.generate import generate
    from cruijff_kit.tiny_model import make_tiny_model

    model = make_tiny_model(tmp_path / "model")
    data = generate(tmp_path / "data.json", n=40)
    (tmp_path / "claude.local.md").write_text(f"- venv: {sys.prefix}\n")
    env = {"CK_LOCAL_CONFIG": str(tmp_path / "claude.local.md"), "CK_EXECUTOR": "local"}
    (tmp_path / "spec.yaml").write_text(SPEC.format(model=model, data=data, task=TASK))
    exp = tmp_path / "exp"
    ck("design", exp, "--spec", tmp_path / "spec.yaml", env=env)
    ck("scaffold", exp, env=env)
    first = json.loads(ck("run", exp, "--executor", "local", "--poll", "0.3", "--json", env=env).stdout)
    assert first["ok"], first
    ledger = json.loads((exp / ".ck" / "ledger.json").read_text())["jobs"]
    before = {p: p.stat().st_mtime_ns for p in _logs(exp)}
    assert len(before) == 2  # cap_test at epoch_0 of both runs

    added = json.loads(ck("design", exp, "--add-task", f"cap_new={TASK}@1:rank8", "--json", env=env).stdout)
    assert [a["runs"] for a in added["added"]] == [["tiny_rank8_lr5e-5"]]
    for line in added["next"]:  # exactly the commands the reply names
        ck(*line.split()[1:], "--json", env=env)
    after = json.loads((exp / ".ck" / "ledger.json").read_text())["jobs"]
    assert set(after) - set(ledger) == {"rank8/eval/epoch1"}
    for key in ("rank4/finetune", "rank8/finetune"):
        assert len(after[key]["attempts"]) == len(ledger[key]["attempts"]) == 1  # nothing retrained
    assert all(after[k]["attempts"] == ledger[k]["attempts"] for k in ledger)  # no other job ran again
    logs = _logs(exp)
    assert {p: p.stat().st_mtime_ns for p in before} == before
    new = [log for p, log in logs.items() if p not in before]
    assert len(new) == 1
    log = new[0]
    assert log.status == "success" and log.eval.metadata["ck_task"] == "cap_new" and log.eval.metadata["ck_epoch"] == "1"
    assert log.eval.model.endswith("/epoch_1")
    model_path = str(log.eval.model_args.get("model_path", ""))
    assert model_path.endswith("epoch_1") and not model_path.endswith("epoch_0"), model_path

    report = json.loads(ck("analyze", exp, "--json", env=env).stdout)
    assert "cap_new" in report["tasks"]
