"""`ck launch diagnose`: real runs that fail in known ways, and the classifier's precedence."""
from __future__ import annotations

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
    "import": ("""\
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
    assert report["failure"] == "import"
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
