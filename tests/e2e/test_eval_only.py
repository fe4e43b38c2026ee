"""Eval-only runs and re-evaluation, for real on the tiny model (real inspect-ai, local executor).

An Eval-only row evaluates a model this experiment does not train (its Checkpoint, else its
Model): scaffold writes only eval scripts, `ck run` evaluates it, analysis shows it as a row.
Adding a task to the finished experiment makes a new evaluation that `ck run` performs, and only
that one: each run's one eval job (base.slurm, every task) runs again with just the new task, and
the finished evaluation's log is not touched.
"""
import json
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from tests.e2e.cli import run_ck

ROOT = Path(__file__).resolve().parents[2]
TASK = ROOT / "tools/cruijff_kit/blueprints/capitalization/inspect_task.py"
pytestmark = pytest.mark.slow


def ck(*args, env=None, check=True, timeout=600):
    return run_ck(*args, env=env, check=check, timeout=timeout)


def summary(model: Path, data: Path, checkpoint: Path, tasks: list[tuple[str, str]]) -> str:
    rows = "\n".join(f"| {t} | {s} | 0 |" for t, s in tasks)
    return f"""# eval_only_exp

## Resources

### Models
- **tiny:** {model}

### Dataset
- **Path:** {data}

## Configuration
- **Epochs:** 1
- **GPUs:** 0
- **Eval max tokens:** 4

## All Runs
| Run Name | Model | LoRA Rank | Learning Rate | Batch Size | Type | Est. Time | Checkpoint |
|---|---|---|---|---|---|---|---|
| tiny_as_is | tiny | - | - | - | Eval-only | N/A | - |
| other_ckpt | tiny | - | - | - | Eval-only | N/A | {checkpoint} |

## Evaluation
| Task | Script | Epochs |
|---|---|---|
{rows}
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished experiment of two eval-only runs, one task."""
    from cruijff_kit.blueprints.capitalization.generate import generate
    from cruijff_kit.tiny_model import make_tiny_model

    root = tmp_path_factory.mktemp("evalonly")
    model = make_tiny_model(root / "model")
    other = root / "elsewhere" / "epoch_3"  # an HF checkpoint another experiment wrote
    shutil.copytree(model, other)
    data = generate(root / "data.json", n=40)
    (root / "claude.local.md").write_text(f"- venv: {sys.prefix}\n")
    env = {"CK_LOCAL_CONFIG": str(root / "claude.local.md"), "CK_EXECUTOR": "local"}
    exp = root / "exp"
    exp.mkdir()
    (exp / "experiment_summary.md").write_text(summary(model, data, other, [("capitalization", str(TASK))]))
    ck("scaffold", exp, env=env)
    first = json.loads(ck("run", exp, "--executor", "local", "--poll", "0.3", "--json", env=env).stdout)
    return root, exp, model, data, other, env, first


def _ledger(exp: Path) -> dict:
    return json.loads((exp / ".ck" / "ledger.json").read_text())["jobs"]


def test_eval_only_runs_are_scaffolded_as_evaluations_only(finished):
    _, exp, model, _, other, _, _ = finished
    for run in ("tiny_as_is", "other_ckpt"):
        assert not (exp / run / "finetune.slurm").exists()
        assert not (exp / run / "setup_finetune.yaml").exists()
        assert [p.name for p in (exp / run / "eval").glob("*.slurm")] == ["base.slurm"]
    as_is = (exp / "tiny_as_is" / "eval" / "base.slurm").read_text()
    ckpt = (exp / "other_ckpt" / "eval" / "base.slurm").read_text()
    assert f"MODEL_DIR={shlex.quote(str(model))}\n" in as_is
    assert str(other) in ckpt and str(model) not in ckpt.split("MODEL_DIR=", 1)[1].split("\n", 1)[0]


def test_ck_run_evaluates_eval_only_runs_and_analysis_shows_them(finished):
    from inspect_ai.log import read_eval_log

    _, exp, _, _, other, env, first = finished
    assert first["ok"], first
    jobs = _ledger(exp)
    assert set(jobs) == {"tiny_as_is/eval/base", "other_ckpt/eval/base"}
    assert all(j["state"] == "COMPLETED" for j in jobs.values()), jobs
    logs = list((exp / "other_ckpt" / "eval" / "logs").glob("*.eval"))
    assert len(logs) == 1
    log = read_eval_log(str(logs[0]), header_only=True)
    assert log.status == "success" and log.eval.model == f"ck-hf/{other}"  # the given checkpoint, not the Model
    assert log.results.total_samples >= 1

    ck("analyze", exp, env=env)
    csv = (exp / "analysis" / "results.csv").read_text()
    rows = {line.split(",")[0]: line for line in csv.splitlines()[1:]}
    assert {"tiny_as_is", "other_ckpt"} <= set(rows), csv
    assert all("Eval-only" in rows[r] for r in ("tiny_as_is", "other_ckpt")), csv


def test_adding_a_task_evaluates_only_what_is_new(finished):
    from inspect_ai.log import read_eval_log

    root, exp, model, data, other, env, _ = finished
    before = _ledger(exp)
    logs_before = {p: p.stat().st_mtime_ns for p in exp.glob("*/eval/logs/*.eval")}
    # the same task file under a second task name: a new evaluation, the old one unchanged
    (exp / "experiment_summary.md").write_text(
        summary(model, data, other, [("capitalization", str(TASK)), ("cap_again", str(TASK))]))
    ck("scaffold", exp, env=env)
    report = json.loads(ck("run", exp, "--executor", "local", "--poll", "0.3", "--json", env=env).stdout)
    after = _ledger(exp)
    assert set(after) == set(before)  # still one job per run: its script lists both tasks
    assert all(j["state"] == "COMPLETED" for j in after.values()), after
    assert set(report["submitted"]) == {after[k]["job_id"] for k in after}
    assert {p: p.stat().st_mtime_ns for p in logs_before} == logs_before  # the finished logs untouched
    new = [p for p in exp.glob("*/eval/logs/*.eval") if p not in logs_before]
    assert len(new) == 2
    for p in new:  # only the new task was evaluated
        log = read_eval_log(str(p), header_only=True)
        assert log.status == "success" and log.eval.metadata["ck_task"] == "cap_again"


def test_an_eval_only_design_runs_with_only_inspect_and_the_report_answers_from_it(finished):
    """`ck design --eval-only` without a grid: no fine-tuned run appears; `ck run --only inspect`
    evaluates every run; report.md's answer names the evaluated models' scores."""
    root, _, model, data, other, env, _ = finished
    exp = root / "eo_design"
    design = json.loads(ck("design", exp, "--model", f"tiny={model}", "--dataset", data, "--gpus", "0",
                           "--eval-only", "as_is=tiny", "--eval-only", f"theirs=tiny@{other}",
                           "--task", f"capitalization={TASK}", "--set", "Eval max tokens=4", "--json",
                           env=env).stdout)
    assert design["finetuned"] == 0 and design["eval_only"] == 2 and design["controls"] == 1
    ck("scaffold", exp, env=env)
    report = json.loads(ck("run", exp, "--only", "inspect", "--executor", "local", "--poll", "0.3", "--json",
                           env=env).stdout)
    assert report["ok"], report
    jobs = _ledger(exp)
    assert set(jobs) == {"as_is/eval/base", "theirs/eval/base", "base/eval/base"}
    analysis = json.loads(ck("analyze", exp, "--json", env=env).stdout)
    answer = " ".join(analysis["answer"])
    assert "No fine-tuned run" not in answer and "Evaluated models (not trained here)" in answer, answer
    assert "as_is" in answer and "theirs" in answer and "vs the control" in answer
