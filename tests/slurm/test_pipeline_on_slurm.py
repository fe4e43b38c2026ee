"""The real product on the real one-node cluster (scripts/local-slurm): `ck design` -> `ck scaffold`
-> `ck run --executor slurm` with real torchtune and inspect-ai on the tiny model, on CPU.

Covers the cluster tests of issue 4 that need the generated scripts themselves: the tiny
experiment end to end through sbatch (per-run afterok chaining seen in sacct's own start/end
times), a failing training whose evaluation is cancelled while the other runs finish, a 2-rank
gloo fine-tune through sbatch + srun, and `bash -n` + shellcheck over every launch mode.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from .pipeline import SETUP_SCRIPT, design, eval_status, ledger, run_slurm, sacct

pytestmark = pytest.mark.slurm


# --- 1. the tiny experiment end to end, one of its trainings failing ------------------------------
# One experiment serves both (merged from two that each trained and evaluated rank4): rank4 and the
# control run through sbatch to the end; rank8's training fails inside torchtune, its evaluation is
# cancelled by SLURM and everything else still finishes.

@pytest.fixture(scope="module")
def finished(slurm_cluster, inputs):
    exp = design(inputs, "cap_slurm", "--gpus", "0")
    # Break rank8 the way a user can: its setup_finetune.yaml names a dataset that does not exist,
    # regenerated with the seeds' per-run script. So torchtune itself fails inside the generated
    # finetune.slurm, which proves the script hands the recipe's exit code to SLURM (an `exit 1`
    # pasted into the script would prove only that SLURM sees `exit 1`).
    run_dir = exp / "rank8"
    setup = run_dir / "setup_finetune.yaml"
    missing = inputs["base"] / "no_such_data.json"
    text = setup.read_text()
    assert str(inputs["base"] / "data.json") in text
    setup.write_text(text.replace(str(inputs["base"] / "data.json"), str(missing)))
    subprocess.run([sys.executable, str(SETUP_SCRIPT)], cwd=run_dir, check=True, capture_output=True, timeout=60)
    assert str(missing) in (run_dir / "finetune.yaml").read_text()
    t0 = time.monotonic()
    report = run_slurm(inputs, exp)
    print(f"\ntiny experiment through sbatch: {time.monotonic() - t0:.1f} s")
    return exp, report


def test_tiny_experiment_end_to_end_through_sbatch(finished):
    exp, report = finished
    jobs = ledger(exp)
    assert sorted(jobs) == ["base/eval/base",
                            "rank4/eval/epoch0", "rank4/finetune",
                            "rank8/eval/epoch0", "rank8/finetune"]
    assert all(j["job_id"].isdigit() for j in jobs.values()), jobs
    assert sorted(report["submitted"]) == sorted(j["job_id"] for j in jobs.values())
    finished_ok = ("base/eval/base", "rank4/eval/epoch0", "rank4/finetune")
    assert all(jobs[k]["state"] == "COMPLETED" for k in finished_ok), jobs

    truth = sacct(jobs[k]["job_id"] for k in finished_ok)
    assert {jid: row["state"] for jid, row in truth.items()} == {jobs[k]["job_id"]: "COMPLETED" for k in finished_ok}
    train, ev = jobs["rank4/finetune"], jobs["rank4/eval/epoch0"]
    assert ev["attempts"][-1]["after"] == train["job_id"]  # chained to its own training only
    # ISO timestamps of one clock compare as strings; afterok means >= (same second is fine)
    assert truth[ev["job_id"]]["start"] >= truth[train["job_id"]]["end"], truth
    ckpt = exp / "rank4" / "checkpoints" / "epoch_0"
    assert (ckpt / "config.json").is_file() and any(ckpt.glob("*.safetensors"))
    assert (exp / "rank4" / f"slurm-{train['job_id']}.out").is_file()  # sbatch ran from the run dir

    for run in ("rank4", "base"):
        logs = sorted((exp / run / "eval" / "logs").glob("*.eval"))
        assert len(logs) == 1 and eval_status(logs[0]) == "success", (run, logs)

    summary = (exp / "experiment_summary.md").read_text()
    status = summary[summary.index("## Status"):]
    for key in finished_ok:
        run, job = key.split("/")[0], jobs[key]
        assert any(line.startswith(f"| {run} |") and f"| {job['job_id']} | COMPLETED |" in line
                   for line in status.splitlines()), (key, status)


def test_failed_training_cancels_only_its_own_eval(finished):
    exp, report = finished
    run_dir = exp / "rank8"
    assert not report["ok"]
    by_key = {j["key"]: j for j in report["jobs"]}
    assert by_key["rank8/finetune"]["state"] == "FAILED", by_key["rank8/finetune"]
    bad_eval = by_key["rank8/eval/epoch0"]
    assert bad_eval["state"] in ("CANCELLED", "DependencyNeverSatisfied"), bad_eval
    assert (bad_eval["note"] or "").startswith("skipped: training failed"), bad_eval
    for key in ("rank4/finetune", "rank4/eval/epoch0", "base/eval/base"):
        assert by_key[key]["state"] == "COMPLETED" and by_key[key]["ok"], by_key[key]

    jobs = ledger(exp)
    truth = sacct(j["job_id"] for j in jobs.values())
    assert truth[jobs["rank8/finetune"]["job_id"]]["state"] == "FAILED"
    assert truth[jobs["rank8/finetune"]["job_id"]]["exit_code"] != "0:0"
    # never started: SLURM cancelled it for its dependency (no start time, no eval log)
    assert truth[jobs["rank8/eval/epoch0"]["job_id"]]["state"] == "CANCELLED"
    assert not list((run_dir / "eval" / "logs").glob("*.eval"))
    assert not (run_dir / "checkpoints" / "epoch_0").exists()
    fail_log = (run_dir / f"slurm-{jobs['rank8/finetune']['job_id']}.out").read_text()
    assert "no_such_data.json" in fail_log and "finetune exit code: 0" not in fail_log
    summary = (exp / "experiment_summary.md").read_text()
    assert f"| {jobs['rank8/finetune']['job_id']} | FAILED |" in summary
    assert f"| {jobs['rank8/eval/epoch0']['job_id']} | skipped: training failed" in summary


def test_second_run_submits_nothing(finished, inputs):
    """Finished jobs are never submitted again, and a failed one only with --retry-failed."""
    exp, _ = finished
    before = {k: (j["job_id"], len(j["attempts"])) for k, j in ledger(exp).items()}
    report = run_slurm(inputs, exp)
    assert report["submitted"] == [], report
    assert not report["ok"]  # rank8's failure still stands
    by_key = {j["key"]: j for j in report["jobs"]}
    assert "--retry-failed" in (by_key["rank8/finetune"]["note"] or ""), by_key["rank8/finetune"]
    assert {k: (j["job_id"], len(j["attempts"])) for k, j in ledger(exp).items()} == before


# --- 2. a 2-rank distributed fine-tune through sbatch + srun ------------------------------------

def test_two_cpu_ranks_through_sbatch_and_srun(slurm_cluster, inputs):
    # "CPU ranks=2" with no GPUs: num_cpu_ranks in setup_finetune.yaml, and finetune.slurm starts
    # one srun task per rank (each with its own --cpus-per-task) running torchtune's distributed
    # recipe through our CPU shim over gloo.
    # merged weights: the test loads the rank-0 checkpoint with transformers as it is
    exp = design(inputs, "cap_dist", "--gpus", "0", "--set", "CPU ranks=2", "--set", "Save merged weights=true",
                 ranks="4", control=False)
    run_dir = exp / "rank4"
    script = (run_dir / "finetune.slurm").read_text()
    assert "#SBATCH --ntasks-per-node=2" in script and "--gres" not in script
    assert "srun --kill-on-bad-exit=1 --nodes=1 --ntasks-per-node=2" in script
    assert "python -m cruijff_kit.finetune.recipes.lora_distributed --config finetune.yaml" in script
    assert "fsdp_cpu_offload: false" in (run_dir / "finetune.yaml").read_text()

    t0 = time.monotonic()
    # SLURM_LABELIO reaches the srun inside the job (sbatch exports the submitter's environment):
    # every output line then carries the task number, so each rank's own output is visible.
    report = run_slurm(inputs, exp, "--only", "torchtune", env={"SLURM_LABELIO": "1"})
    print(f"\n2-rank CPU fine-tune through sbatch+srun: {time.monotonic() - t0:.1f} s")
    job = ledger(exp)["rank4/finetune"]
    assert report["ok"] and job["state"] == "COMPLETED", report

    steps = subprocess.run(["sacct", "-n", "-P", "-o", "JobID,NTasks,State", "-j", job["job_id"]],
                           capture_output=True, text=True, check=True, timeout=30).stdout.splitlines()
    assert f"{job['job_id']}.0|2|COMPLETED" in steps, steps  # the srun step: 2 tasks, both exit 0
    out = (run_dir / f"slurm-{job['job_id']}.out").read_text()
    for rank in (0, 1):
        assert any(line.lstrip().startswith(f"{rank}:") for line in out.splitlines()), f"no output of rank {rank}"
    assert "LoRAFinetuneRecipeDistributed" in out and "finetune exit code: 0" in out

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cruijff_kit.evaluate.launch import weights_without_adapter

    ckpt = run_dir / "checkpoints" / "epoch_0"
    # the merged weights alone (with PEFT installed, transformers would load the adapter beside them too)
    model = AutoModelForCausalLM.from_pretrained(weights_without_adapter(ckpt, run_dir / "epoch_0_weights"))
    base = AutoModelForCausalLM.from_pretrained(inputs["base"] / "model")
    tok = AutoTokenizer.from_pretrained(ckpt)
    ids = tok("hello", return_tensors="pt").input_ids
    with torch.no_grad():
        assert model.generate(ids, max_new_tokens=2, do_sample=False).shape[1] >= ids.shape[1]
    # the merged LoRA update really reached the saved weights (3 steps at lr 1e-3)
    changed = [n for n, p in model.state_dict().items() if not torch.equal(p, base.state_dict()[n])]
    assert any("q_proj" in n or "v_proj" in n for n in changed), changed


# --- 3. generated scripts: bash -n and shellcheck, every launch mode ----------------------------

def _shellcheck() -> str:
    found = shutil.which("shellcheck")
    if found:
        return found
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "shellcheck"], capture_output=True, timeout=300,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        found = shutil.which("shellcheck")
        if found:
            return found
    pytest.skip("shellcheck is not installed and could not be installed (needs root and apt-get)")


LAUNCH_MODES = {
    "cpu": (["--gpus", "0"], "lora_single_device"),
    "cpu_2_ranks_srun": (["--gpus", "0", "--set", "CPU ranks=2"], "srun --kill-on-bad-exit=1 --nodes=1 --ntasks-per-node=2"),
    "one_gpu": (["--gpus", "1"], "lora_single_device"),
    "node_2_gpus": (["--gpus", "2"], "tune run --nproc_per_node 2"),
    "two_nodes": (["--gpus", "2", "--set", "Nodes=2"], "srun --kill-on-bad-exit=1 --nodes=2 --ntasks-per-node=2"),
}


@pytest.mark.parametrize("mode", LAUNCH_MODES)
def test_scaffolded_scripts_pass_bash_n_and_shellcheck(inputs, mode):
    shellcheck = _shellcheck()
    flags, launcher = LAUNCH_MODES[mode]
    exp = design(inputs, f"lint_{mode}", *flags, ranks="4")
    scripts = sorted(exp.glob("*/finetune.slurm")) + sorted(exp.glob("*/eval/*.slurm"))
    assert len(scripts) == 3, scripts  # rank4 training, its eval, the control's eval
    assert launcher in (exp / "rank4" / "finetune.slurm").read_text()
    for script in scripts:
        n = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert n.returncode == 0, f"{script}: {n.stderr}"
        sc = subprocess.run([shellcheck, "--shell=bash", str(script)], capture_output=True, text=True)
        assert sc.returncode == 0, f"{script}:\n{sc.stdout}"
