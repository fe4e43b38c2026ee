"""The search on the real cluster under its submission limit (QOS cklimit3, MaxSubmitJobsPerUser=3):
4 ASHA trials, rungs at 1 and 2 epochs (4 trainings, then 2 resumed ones and their 2 evaluations:
8 jobs through a limit of 3). Each rung's training is an sbatch job; a promoted trial's
next rung resumes from its checkpoint; evaluations are chained `afterok` to the training that
makes their checkpoint; never more than 3 of our jobs submitted-but-unfinished (sacct's own
times); pruned trials submit nothing more."""
from __future__ import annotations

import json
import time

import pytest

from ..slurm_cluster import TEST_QOS
from .pipeline import TASK, ck, ledger
from .test_limits_on_slurm import most_at_once, sacct_times

pytestmark = pytest.mark.slurm
BUDGET_S = 900
TRIALS = 4


def test_asha_search_under_a_three_job_limit(slurm_cluster, inputs):
    t0 = time.monotonic()
    exp = inputs["base"] / "cap_search"
    ck("design", exp, "--model", f"tiny={inputs['base'] / 'model'}", "--dataset", inputs["base"] / "data.json",
       "--vary", "Learning rate=1e-5..5e-2:log", "--search", "asha", "--trials", str(TRIALS), "--rungs", "2",
       "--reduction-factor", "2", "--rung-epochs", "1,2", "--metric", "val_loss", "--seed", "0",
       "--task", f"capitalization={TASK}@last", "--gpus", "0", "--no-control",
       "--set", "Max steps per epoch=2", "--set", "Eval max tokens=4", env=inputs["env"])
    ck("scaffold", exp, env=inputs["env"])
    env = {**inputs["env"], "SBATCH_QOS": TEST_QOS}
    r = ck("run", exp, "--executor", "slurm", "--poll", "1", "--json", env=env, check=False, timeout=BUDGET_S)
    report = json.loads(r.stdout)
    assert report["ok"], json.dumps(report, indent=1)[:4000]
    data = json.loads((exp / ".ck" / "ledger.json").read_text())
    final = {}
    for d in data["search"]["decisions"]:
        final[d["trial"]] = d
    assert len(final) == TRIALS
    assert {d["decision"] for d in final.values()} == {"pruned", "completed"}, final
    jobs = ledger(exp)
    ids = [a["job_id"] for j in jobs.values() for a in j["attempts"] if a.get("job_id")]
    truth = sacct_times(ids)
    assert {r["state"] for r in truth.values()} == {"COMPLETED"}, truth
    assert most_at_once(truth) <= 3, truth
    for d in final.values():
        attempts = [a for a in jobs[f"{d['run']}/finetune"]["attempts"] if a.get("job_id")]
        # pruned at rung 0: one training job; completed: two (the second resumed)
        assert len(attempts) == (1 if d["decision"] == "pruned" else 2), (d, attempts)
        if d["decision"] == "completed":
            assert attempts[1]["overrides"].get("resume_from_checkpoint") == "True"
            train = truth[attempts[1]["job_id"]]
            ev = truth[jobs[f"{d['run']}/eval/epoch1"]["job_id"]]
            assert ev["start"] >= train["end"], (d, train, ev)  # chained after the rung that made it
            assert (exp / d["run"] / "eval" / "logs").is_dir()
        else:
            assert f"{d['run']}/eval/epoch1" not in jobs or not jobs[f"{d['run']}/eval/epoch1"].get("job_id")
    print(f"\n{TRIALS}-trial ASHA under MaxSubmitJobsPerUser=3: {time.monotonic() - t0:.0f} s")
