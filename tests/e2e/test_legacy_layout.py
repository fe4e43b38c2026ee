"""A plan in the original project's markdown layout (Evaluation Tasks table, Evaluation Matrix
with '✓ epoch X,Y' cells, Training / Evaluation / Output subsections) scaffolds with the
evaluations it names, on the tiny model, and its Temperature, Scorer and evaluation System
prompt reach inspect-ai: a real evaluation's .eval log records them."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.cli import run_ck

ROOT = Path(__file__).resolve().parents[2]
TASK = ROOT / "tools/cruijff_kit/blueprints/capitalization/inspect_task.py"
LEGACY = (ROOT / "tests/experiment/legacy_matrix.md").read_text()
pytestmark = pytest.mark.slow


def ck(*args, env=None, check=True, timeout=600):
    return run_ck(*args, env=env, check=check, timeout=timeout)


@pytest.fixture(scope="module")
def legacy(tmp_path_factory, tiny_model):
    from cruijff_kit.blueprints.capitalization.generate import generate

    root = tmp_path_factory.mktemp("legacy")
    model = tiny_model  # the session's (the control's evaluation only reads it)
    data = generate(root / "data.json", n=40)
    (root / "claude.local.md").write_text(f"- venv: {sys.prefix}\n")
    env = {"CK_LOCAL_CONFIG": str(root / "claude.local.md")}
    exp = root / "cap_rank_epochs"
    exp.mkdir()
    text = (LEGACY.replace("MODEL_DIR", str(model)).replace("DATA_JSON", str(data)).replace("TASK_PY", str(TASK))
            .replace("CKPT_DIR", str(root / "ckpts")).replace("EXP_DIR", str(exp)))
    (exp / "experiment_summary.md").write_text(text)
    r = ck("scaffold", exp, env=env)
    return root, exp, env, r


def test_legacy_layout_scaffolds_the_matrix_evaluations(legacy):
    root, exp, _, r = legacy
    assert "no evaluations" not in r.stderr
    scripts = {p.relative_to(exp).as_posix() for p in exp.glob("*/eval/*.slurm")}
    assert scripts == {"rank4/eval/epoch1.slurm", "rank8/eval/epoch0.slurm",
                       "rank8/eval/epoch1.slurm", "base/eval/base.slurm"}
    epoch1 = (exp / "rank8" / "eval" / "epoch1.slurm").read_text()
    assert str(root / "ckpts" / "cap_rank_epochs" / "rank8" / "epoch_1") in epoch1  # ### Output honoured
    for s in scripts:
        text = (exp / s).read_text()
        assert "--temperature 0.5" in text and '"scorer": "includes"' in text and '"split": "test"' in text
        assert '"system_prompt": "Capitalize the word."' in text
    assert "Temperature" not in r.stderr and "Scorer" not in r.stderr  # both honoured: no warning


def test_legacy_temperature_and_scorer_reach_inspect(legacy):
    """The control's evaluation, run for real: the log records the sampling temperature, the
    plan's scorer and ck's decoding note."""
    from inspect_ai.log import read_eval_log

    _, exp, env, _ = legacy
    script = exp / "base" / "eval" / "base.slurm"
    r = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=600,
                       env={**os.environ, **env}, cwd=script.parent)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    [log_file] = (script.parent / "logs").glob("*.eval")
    log = read_eval_log(str(log_file))
    assert log.status == "success"
    assert log.plan.config.temperature == 0.5
    assert [s.scorer for s in log.results.scores] == ["includes"]
    assert log.eval.metadata["ck_decoding"] == "sampling at temperature 0.5"
    assert log.eval.task_args["system_prompt"] == "Capitalize the word."
    assert log.samples[0].messages[0].role == "system"
