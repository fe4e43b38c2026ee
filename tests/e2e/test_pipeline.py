"""The whole product for real on the tiny model: design -> scaffold -> local run (real torchtune,
real inspect-ai) -> results; learning is real; a finished experiment submits nothing. (A killed
detached supervisor resuming without redoing finished work: tests/e2e/test_search.py, on the search
and on a plain grid.)"""
import json
import re
from pathlib import Path

import pytest

from tests.e2e.cli import run_ck

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def ck(*args, env=None, check=True, timeout=900):
    return run_ck(*args, env=env, check=check, timeout=timeout)


def accuracy(eval_file: Path) -> float:
    from inspect_ai.log import read_eval_log

    log = read_eval_log(str(eval_file))
    assert log.status == "success"
    return log.results.scores[0].metrics["accuracy"].value


@pytest.fixture
def demo(demo_experiment):
    return demo_experiment  # the session's one demo run (tests/conftest.py)


def test_demo_trains_evaluates_and_fine_tuning_beats_control(demo):
    exp, stdout = demo
    ledger = json.loads((exp / ".ck" / "ledger.json").read_text())["jobs"]
    assert ledger and all(j["state"] == "COMPLETED" for j in ledger.values()), ledger
    runs = [d for d in exp.iterdir() if (d / "finetune.slurm").exists()]
    assert len(runs) >= 4
    scores = {}
    for run in runs + [exp / "base"]:
        if run.name != "base":
            ckpts = sorted((run / "checkpoints").glob("epoch_*"))
            assert ckpts and any(ckpts[-1].glob("*.safetensors")), run
        logs = sorted((run / "eval" / "logs").glob("*.eval"))
        assert logs, f"no .eval log in {run}"
        scores[run.name] = accuracy(logs[-1])
    best = max(v for k, v in scores.items() if k != "base")
    assert best > scores["base"], scores
    summary = (exp / "experiment_summary.md").read_text()
    assert "| COMPLETED |" in summary
    for log in ("run-experiment.log", "run-torchtune.log", "run-inspect.log"):
        assert (exp / log).read_text().startswith("[")
    # the report says what each run cost, measured: the ledger's times, torchtune's tokens/s
    report = (exp / "analysis" / "report.md").read_text()
    compute = report[report.index("## Compute (measured)"):].split("\n## ", 1)[0]
    lines = {ln.split(" | ")[0].strip("| "): ln.strip("| ").split(" | ") for ln in compute.splitlines()
             if ln.startswith("| ") and not ln.startswith("| run ")}
    assert set(lines) == {d.name for d in runs} | {"base"}, compute
    for name, cells in lines.items():
        ft_time, tokens, evals = cells[1], cells[5], cells[6]
        if name == "base":
            assert ft_time == "-" and evals.endswith("(1)"), cells
        else:
            assert re.fullmatch(r"\d+:\d\d", ft_time) and float(tokens) > 0 and evals.endswith("(1)"), cells
            # the training process's own peak RSS (no SLURM accounting locally): a real model's worth
            assert re.fullmatch(r"\d+\.\d GiB", cells[2]) and float(cells[2].split()[0]) > 0.1, cells


def test_second_run_on_finished_demo_submits_nothing(demo):
    exp, _ = demo
    r = ck("run", exp, "--executor", "local", "--poll", "0.5", "--json")
    report = json.loads(r.stdout)
    assert report["submitted"] == [] and report["ok"]
