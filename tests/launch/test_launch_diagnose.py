"""`ck launch diagnose`: real runs that fail in known ways, and the classifier's precedence."""
from __future__ import annotations

import sys

import pytest

from cruijff_kit.launch.diagnose import diagnose_text

FAILING = {
    "oom": ("""\
        print("epoch 0 loss 1.2345", flush=True)
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.35 GiB total capacity)")
        """, "python train.py --batch-size 32", ["--batch-size 16", "2.00 GiB", "gradient checkpointing"]),
    "nan": ("""\
        for step, loss in enumerate([0.91, 0.52, float("nan"), float("nan")]):
            print(f"step {step} loss {loss}")
        """, "python train.py --lr 0.1", ["--lr 0.01", "clip"]),
    "dependency": ("""\
        import os
        import ck_surely_missing_pkg.sub
        """, "python train.py", ["pip install ck_surely_missing_pkg"]),
    "file_not_found": ("""\
        open("data/train.csv").read()
        """, "python train.py", ["data/train.csv", "relative to the run's working dir"]),
    "cuda": ("""\
        raise RuntimeError("CUDA error: device-side assert triggered")
        """, "python train.py", ["CUDA_LAUNCH_BLOCKING=1"]),
    "killed": ("""\
        import os, signal
        print("loading", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """, "python train.py", ["SIGKILL", "OOM killer"]),
    None: ("""\
        print("epoch 0 loss 0.5")
        """, "python train.py", ["No failure"]),
}


@pytest.mark.parametrize("failure", list(FAILING), ids=[str(k) for k in FAILING])
def test_real_failing_runs_are_named(ck, script_repo, wait_done, failure):
    body, command, advice_bits = FAILING[failure]
    repo = script_repo(body)
    run_id = ck("launch", "start", repo, "--command", command, "--wait", "0", "--json").json["run_id"]
    wait_done(run_id)
    result = ck("launch", "diagnose", run_id, "--json")
    assert result.rc == 0, result
    report = result.json
    assert report["failure"] == failure, report
    for bit in advice_bits:
        assert bit in report["advice"], (bit, report["advice"])
    if failure == "nan":
        assert report["evidence"]["text"] == "step 2 loss nan"  # the first NaN: when training went wrong
    if failure == "killed":
        assert report["exit_code"] == 137


def _meta(command="python train.py"):
    return {"command": command, "repo": "/r", "environment": {"kind": "interpreter", "name": "/v/bin/python"}}


def test_traceback_cause_beats_earlier_nan_lines():
    log = ("step 1 loss nan\nTraceback (most recent call last):\n  File \"t.py\", line 3\n"
           "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB\n")
    report = diagnose_text(log, exit_code=1, alive=False, meta=_meta())
    assert report["failure"] == "oom" and report["evidence"]["line"] == 4
    assert report["exception"].startswith("torch.OutOfMemoryError")


def test_unrecognised_exception_falls_back_to_log_patterns_and_signals():
    log = "loss=inf\nTraceback (most recent call last):\nValueError: bad shape\n"
    assert diagnose_text(log, exit_code=1, alive=False, meta=_meta())["failure"] == "nan"
    plain = diagnose_text("Traceback (most recent call last):\nValueError: bad shape\n", exit_code=1,
                          alive=False, meta=_meta())
    assert plain["failure"] is None and "exit" in plain["advice"].lower()
    assert diagnose_text("step 3\nKilled\n", exit_code=None, alive=False, meta=_meta(),
                         wrapper_vanished=True)["failure"] == "killed"
    # the wrapper's own lines echo the command; a flag value like "nan" there is not a symptom
    assert diagnose_text("[ck launch] command: python t.py --loss nan\n", exit_code=0, alive=False,
                         meta=_meta())["failure"] is None


def test_import_advice_maps_module_to_package_and_environment():
    log = "Traceback (most recent call last):\nModuleNotFoundError: No module named 'cv2'\n"
    report = diagnose_text(log, exit_code=1, alive=False, meta=_meta())
    assert report["failure"] == "dependency"
    assert "/v/bin/python -m pip install opencv-python" in report["advice"]


def test_wandb_url_and_summary_from_an_online_log():
    from cruijff_kit.launch.wandb_runs import find_run, summary_from_log

    log = ("wandb: Syncing run sunny-1\n"
           "wandb: 🚀 View run sunny-1 at: https://wandb.ai/team/proj/runs/ab12cd34\n"
           "wandb: Run summary:\nwandb: train/loss 0.1234\nwandb:       epoch 2\nwandb:\n")
    run = find_run(log)
    assert run["url"] == "https://wandb.ai/team/proj/runs/ab12cd34" and run["offline"] is False
    assert summary_from_log(log) == {"train/loss": "0.1234", "epoch": "2"}


def test_cli_modules_import_no_heavy_packages():
    import subprocess
    import sys

    code = ("import sys, cruijff_kit.launch.cli as c, cruijff_kit.launch.detect, cruijff_kit.launch.process, "
            "cruijff_kit.launch.diagnose, cruijff_kit.launch.wandb_inject, cruijff_kit.launch.env; "
            "heavy = {'torch', 'wandb', 'transformers'} & set(sys.modules); assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --------------------------------------------------------------------------- issue 11 cases
NEW_FAILURES = {
    # Lightning's accelerator check, as it prints it (lightning is not installed here)
    "no_gpu": ("""\
        class MisconfigurationException(Exception):
            pass
        MisconfigurationException.__module__ = "lightning.fabric.utilities.exceptions"
        raise MisconfigurationException("No supported gpu backend found!")
        """, "python train.py", ["GPU node", "on CPU"]),
    "no_driver": ("""\
        raise RuntimeError("Found no NVIDIA driver on your system. Please check that you have an NVIDIA GPU "
                           "and installed a driver from http://www.nvidia.com/Download/index.aspx")
        """, "python train.py", ["no NVIDIA driver on this machine", "not a driver/CUDA version mismatch"]),
    "network": ("""\
        import urllib.request
        print("downloading dataset", flush=True)
        urllib.request.urlopen("http://ck-no-such-host.invalid/mnist.tar.gz", timeout=5)
        """, "python train.py", ["could not reach it", "HF_HUB_OFFLINE=1"]),
}


@pytest.mark.parametrize("case", list(NEW_FAILURES))
def test_new_failures_are_named_with_the_right_advice(ck, script_repo, wait_done, case):
    body, command, advice_bits = NEW_FAILURES[case]
    repo = script_repo(body)
    run_id = ck("launch", "start", repo, "--command", command, "--wait", "0", "--json").json["run_id"]
    wait_done(run_id)
    report = ck("launch", "diagnose", run_id, "--json").json
    assert report["failure"] == {"no_driver": "no_gpu"}.get(case, case), report
    for bit in advice_bits:
        assert bit in report["advice"], (bit, report["advice"])
    assert "older than torch" not in report["advice"]


def test_nccl_missing_on_a_cpu_torch_names_the_repos_backend_switch(ck, tmp_path, wait_done):
    """Real torch (CPU build): init_process_group('nccl') fails; nanoGPT-style repos switch with --backend=gloo."""
    from .training_repos import CONFIGURATOR, write_repo

    repo = write_repo(tmp_path / "ddp", {"configurator.py": CONFIGURATOR, "train.py": (
        "import os\nimport torch.distributed as dist\n\nbackend = 'nccl'\nexec(open('configurator.py').read())\n"
        "os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT='29531', RANK='0', WORLD_SIZE='1')\n"
        "dist.init_process_group(backend=backend)\n")})
    run_id = ck("launch", "start", repo, "--command", "python train.py", "--python", sys.executable, "--wait", "0",
                "--json").json["run_id"]
    wait_done(run_id, timeout=60)
    report = ck("launch", "diagnose", run_id, "--json").json
    assert report["failure"] == "distributed", report
    assert "--backend=gloo" in report["advice"]


DIVERGING = {
    # above 1e6 though under 100x the first value (5e4): the absolute limit
    "absolute": "for i, loss in enumerate([5e4, 4e4, 4e6, 4e32]):\n    print(f'step {i} loss {loss}')\n",
    "relative": "for i, loss in enumerate([0.5, 0.4, 3.0, 60.0, 0.3]):\n    print(f'step {i} train_loss={loss}')\n",
}


@pytest.mark.parametrize("kind", list(DIVERGING))
def test_a_diverged_loss_is_a_state_not_a_success(ck, script_repo, wait_done, kind):
    repo = script_repo(DIVERGING[kind])
    run_id = ck("launch", "start", repo, "--command", "python train.py", "--wait", "0", "--json").json["run_id"]
    final = wait_done(run_id)
    assert final["exit_code"] == 0 and final["state"] == "diverged", final
    report = ck("launch", "diagnose", run_id, "--json").json
    assert report["failure"] == "diverged"
    assert report["evidence"]["text"] == {"absolute": "step 2 loss 4000000.0", "relative": "step 3 train_loss=60.0"}[kind]
    assert "lower the learning rate" in report["advice"]


def test_nan_run_is_state_nan_and_advice_uses_the_repos_flag_form(ck, tmp_path, wait_done):
    """Exit 0 with a NaN loss is `nan`, not `succeeded`; a configurator repo only accepts --key=value."""
    from .training_repos import CONFIGURATOR, write_repo

    repo = write_repo(tmp_path / "nan", {"configurator.py": CONFIGURATOR, "train.py": (
        "learning_rate = 6e-4\nexec(open('configurator.py').read())\n"
        "for i, loss in enumerate([4.2, 3.9, float('nan')]):\n    print(f'iter {i}: loss {loss:.4f}')\n")})
    run_id = ck("launch", "start", repo, "--command", "python train.py", "--wait", "0", "--json").json["run_id"]
    final = wait_done(run_id)
    assert final["exit_code"] == 0 and final["state"] == "nan"
    report = ck("launch", "diagnose", run_id, "--json").json
    assert report["failure"] == "nan" and report["evidence"]["text"] == "iter 2: loss nan"
    assert "--learning_rate=6e-05" in report["advice"] and "--learning_rate 6e-05" not in report["advice"]

    argparse_repo = write_repo(tmp_path / "ap", {"train.py": (
        "import argparse\np = argparse.ArgumentParser()\np.add_argument('--learning-rate', dest='lr', type=float, "
        "default=0.1)\nargs = p.parse_args()\nprint('step 0 loss 1.0')\nprint('step 1 loss nan')\n")})
    run_id = ck("launch", "start", argparse_repo, "--command", "python train.py --learning-rate 0.5", "--wait", "0",
                "--json").json["run_id"]
    wait_done(run_id)
    advice = ck("launch", "diagnose", run_id, "--json").json["advice"]
    assert "--learning-rate 0.05" in advice, advice


def test_loss_health_reads_common_log_formats():
    from cruijff_kit.launch.losses import health

    hf = "{'loss': 2.31, 'grad_norm': nan, 'learning_rate': 5e-05, 'epoch': 0.1}\n{'loss': 2.1, 'epoch': 0.2}\n"
    assert health(hf)["state"] == "ok"  # a NaN grad_norm is not a NaN loss
    bar = "Epoch 0: 100%|██| 10/10 [00:01<00:00, v_num=0, train/loss=2.310]\nEpoch 1: 50%| 5/10 train/loss=nan\n"
    assert health(bar) == {"state": "nan", "evidence": {"line": 2, "text": "Epoch 1: 50%| 5/10 train/loss=nan"},
                           "reason": "train/loss is nan"}
    ds = "step 1 loss 2.0 loss_scale 65536.0\nstep 2 loss 1.9 loss_scale 4294967296.0\n"
    assert health(ds)["state"] == "ok"  # fp16 loss scale is not a loss
    assert health("[ck launch] command: python t.py --loss 1e9\nloss 1.0\n")["state"] == "ok"
    assert health("step 0: train loss 4.28, val loss 4.29\nRuntimeError: Function 'MulBackward0' returned nan values")[
        "state"] == "nan"
