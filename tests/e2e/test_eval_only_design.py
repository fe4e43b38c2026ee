"""`ck design --eval-only` without a grid, for real on the tiny model (real inspect-ai, local
executor): eval-only runs of both kinds (the model as it is; a checkpoint another experiment wrote),
scaffolded as evaluations only, evaluated by `ck run --only inspect`, answered by the report.
(Split from tests/e2e/test_eval_only.py: this experiment is its own, so it runs beside the shared
finished one, not after it.)"""
import json
import shlex
import shutil
import sys

import pytest

from tests.finished_experiment import TASK, run_ck

pytestmark = pytest.mark.slow


def test_an_eval_only_design_runs_with_only_inspect_and_the_report_answers_from_it(tiny_model, tmp_path):
    """`ck design --eval-only` without a grid: no fine-tuned run appears; `ck run --only inspect`
    evaluates every run; report.md's answer names the evaluated models' scores."""
    from inspect_ai.log import read_eval_log

    from cruijff_kit.blueprints.capitalization.generate import generate

    model = tiny_model
    other = tmp_path / "elsewhere" / "epoch_3"  # an HF checkpoint another experiment wrote
    shutil.copytree(model, other)
    data = generate(tmp_path / "data.json", n=40)
    (tmp_path / "claude.local.md").write_text(f"- venv: {sys.prefix}\n")
    env = {"CK_LOCAL_CONFIG": str(tmp_path / "claude.local.md"), "CK_EXECUTOR": "local"}

    def ck(*args):
        return run_ck(*args, env=env)

    exp = tmp_path / "eo_design"
    design = json.loads(ck("design", exp, "--model", f"tiny={model}", "--dataset", data, "--gpus", "0",
                           "--eval-only", "as_is=tiny", "--eval-only", f"theirs=tiny@{other}",
                           "--task", f"capitalization={TASK}", "--set", "Eval max tokens=4", "--json").stdout)
    assert design["finetuned"] == 0 and design["eval_only"] == 2 and design["controls"] == 1
    ck("scaffold", exp)
    for run in ("as_is", "theirs"):  # evaluations only
        assert not (exp / run / "finetune.slurm").exists() and not (exp / run / "setup_finetune.yaml").exists()
        assert [p.name for p in (exp / run / "eval").glob("*.slurm")] == ["base.slurm"]
    as_is = (exp / "as_is" / "eval" / "base.slurm").read_text()
    theirs = (exp / "theirs" / "eval" / "base.slurm").read_text()
    assert f"MODEL_DIR={shlex.quote(str(model))}\n" in as_is  # the Model itself
    assert f"MODEL_DIR={shlex.quote(str(other))}\n" in theirs  # the given checkpoint, not the Model
    report = json.loads(ck("run", exp, "--only", "inspect", "--executor", "local", "--poll", "0.3", "--json").stdout)
    assert report["ok"], report
    jobs = json.loads((exp / ".ck" / "ledger.json").read_text())["jobs"]
    assert set(jobs) == {"as_is/eval/base", "theirs/eval/base", "base/eval/base"}
    for run, evaluated in (("as_is", model), ("theirs", other)):
        [log] = [read_eval_log(str(p), header_only=True) for p in (exp / run / "eval" / "logs").glob("*.eval")]
        assert log.status == "success" and log.eval.model == f"ck-hf/{evaluated}"
    analysis = json.loads(ck("analyze", exp, "--json").stdout)
    answer = " ".join(analysis["answer"])
    assert "No fine-tuned run" not in answer and "Evaluated models (not trained here)" in answer, answer
    assert "as_is" in answer and "theirs" in answer and "vs the control" in answer
