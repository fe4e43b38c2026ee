"""finetune.slurm: valid bash for every launch mode, and it really trains when run with bash."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cruijff_kit.errors import CkError
from cruijff_kit.finetune.config import render_finetune_yaml
from cruijff_kit.finetune.slurm import render_finetune_slurm

pytestmark = pytest.mark.slow  # real training, evaluation or training processes: `make test`, not test-fast

MODES = {
    "cpu": {"num_gpus": 0},
    "one_gpu": {"num_gpus": 1},
    "node": {"num_gpus": 4},
    "multinode": {"num_gpus": 4, "num_nodes": 2},
}
ENVS = [{"kind": "venv", "path": "/opt/my env"}, {"kind": "conda", "name": "ck"}, {"kind": "none"}]


def _lint(script: str, tmp_path: Path) -> None:
    path = tmp_path / "finetune.slurm"
    path.write_text(script)
    subprocess.run(["bash", "-n", str(path)], check=True)
    if shutil.which("shellcheck"):
        proc = subprocess.run(["shellcheck", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("env", ENVS, ids=lambda e: e["kind"])
def test_every_mode_and_environment_is_valid_bash(setup_dict, tmp_path, mode, env):
    script = render_finetune_slurm({**setup_dict, **MODES[mode], "environment": env})
    _lint(script, tmp_path)
    assert script.startswith("#!/usr/bin/env bash\n#SBATCH ")
    assert "set -euo pipefail" in script and 'exit "$status"' in script
    assert ("OMP_NUM_THREADS" in script) == (mode == "cpu")
    assert "HF_HUB_OFFLINE=1" in script and "WANDB_MODE=offline" in script
    assert script.count('${overrides[@]+"${overrides[@]}"}') == 1


def test_launch_commands(setup_dict):
    cpu = render_finetune_slurm(setup_dict)
    assert "python -m cruijff_kit.finetune.recipes.lora_single_device --config finetune.yaml" in cpu
    assert "--gres" not in cpu
    gpu = render_finetune_slurm({**setup_dict, "num_gpus": 1})
    assert "lora_single_device" in gpu and "#SBATCH --gres=gpu:1" in gpu
    node = render_finetune_slurm({**setup_dict, "num_gpus": 4})
    assert "tune run --nproc_per_node 4 cruijff_kit/finetune/recipes/lora_distributed.py --config finetune.yaml" in node
    multi = render_finetune_slurm({**setup_dict, "num_gpus": 4, "num_nodes": 2})
    assert "#SBATCH --nodes=2" in multi and "#SBATCH --ntasks-per-node=4" in multi
    assert "RANK=$SLURM_PROCID LOCAL_RANK=$SLURM_LOCALID WORLD_SIZE=$SLURM_NTASKS" in multi
    assert 'scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1' in multi


def test_headers_are_quoted_and_empty_ones_left_out(setup_dict):
    slurm = {**setup_dict["slurm"], "account": "lab-a", "partition": None, "constraint": "a100|h100", "qos": "",
             "modules": ["cuda/12.1", "a b"]}
    script = render_finetune_slurm({**setup_dict, "slurm": slurm, "environment": {"kind": "venv", "path": "/x y/$HOME"}})
    assert "#SBATCH --account=lab-a\n" in script and "#SBATCH --constraint='a100|h100'\n" in script
    assert "--partition" not in script and "--qos" not in script
    assert "#SBATCH --output=slurm-%j.out" in script
    assert "module load cuda/12.1\nmodule load 'a b'\n" in script
    assert "source '/x y/$HOME/bin/activate'" in script


@pytest.mark.parametrize("key,value", [("account", "my acct"), ("partition", "gpu;rm -rf ~"), ("qos", "a'b"),
                                       ("time", "soon"), ("mem", "lots"), ("gpus", -1)])
def test_a_header_value_no_sbatch_option_can_carry_is_refused(setup_dict, key, value):
    with pytest.raises(CkError) as e:
        render_finetune_slurm({**setup_dict, "slurm": {**setup_dict["slurm"], key: value}})
    assert e.value.field == f"slurm.{key}" and e.value.file == "setup_finetune.yaml"


@pytest.mark.parametrize("env,field", [({"kind": "docker"}, "environment.kind"), ({"kind": "venv"}, "environment.path"),
                                       ({"kind": "conda", "name": ""}, "environment.name")])
def test_bad_environment(setup_dict, env, field):
    with pytest.raises(CkError) as e:
        render_finetune_slurm({**setup_dict, "environment": env})
    assert e.value.field == field


def _run_dir(setup: dict, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "finetune.yaml").write_text(render_finetune_yaml(setup))
    (run / "finetune.slurm").write_text(render_finetune_slurm(setup))
    return run


def test_bash_runs_it_from_its_own_directory_and_it_trains(setup_dict, tmp_path):
    run = _run_dir(setup_dict, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["CK_TUNE_OVERRIDES"] = "max_steps_per_epoch=1 batch_size=2"
    proc = subprocess.run(["bash", str(run / "finetune.slurm")], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "finetune exit code: 0" in proc.stdout
    assert (Path(setup_dict["output_dir"]) / "epoch_0" / "model.safetensors.index.json").is_file()
    log = next((Path(setup_dict["output_dir"]) / "logs").glob("log_*.txt")).read_text()
    assert "Step 1 " in log and "Step 2 " not in log  # the retry overrides reached torchtune
    # the job recorded what it ran with before training (manifest.json in its run directory)
    import hashlib
    import json
    from importlib.metadata import version

    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["config_sha256"] == hashlib.sha256((run / "finetune.yaml").read_bytes()).hexdigest()
    assert manifest["job_script_sha256"] == hashlib.sha256((run / "finetune.slurm").read_bytes()).hexdigest()
    assert manifest["seed"] == manifest["config"]["seed"] and manifest["packages"]["torchtune"] == version("torchtune")
    assert manifest["dataset_sha256"] == hashlib.sha256(Path(setup_dict["dataset"]).read_bytes()).hexdigest()
    assert manifest["gpus"] == []  # no nvidia-smi here


def test_exit_code_is_the_jobs(setup_dict, tmp_path):
    run = _run_dir(setup_dict, tmp_path)
    (run / "finetune.yaml").write_text("this: [is not a torchtune config\n")
    proc = subprocess.run(["bash", "finetune.slurm"], cwd=run, capture_output=True, text=True, timeout=240)
    assert proc.returncode != 0 and f"finetune exit code: {proc.returncode}" in proc.stdout
