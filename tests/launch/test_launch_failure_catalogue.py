"""`ck launch diagnose` on the failures researchers hit, as the tools print them (failure_logs.py):
each gets its category, the exception (or the parser's error line), evidence lines and advice that
names the fix: the flag, the install command, the service, the pin."""
from __future__ import annotations

import pytest

from cruijff_kit.launch.diagnose import diagnose_text

from .failure_logs import CASES


def _meta(command: str) -> dict:
    return {"command": command, "repo": "/r", "environment": {"kind": "interpreter", "name": "/v/bin/python"}}


@pytest.mark.parametrize("case", list(CASES))
def test_catalogue_failure_is_named_with_its_exception_and_advice(case):
    log, exit_code, command, category, exception_bit, advice_bits = CASES[case]
    report = diagnose_text(log, exit_code=exit_code, alive=False, meta=_meta(command))
    assert report["failure"] == category, report
    assert report["exception"] and exception_bit in report["exception"], report["exception"]
    assert report["evidence"] and exception_bit in report["evidence"]["text"]
    assert any(exception_bit in e["text"] for e in report["evidence_lines"])
    for bit in advice_bits:
        assert bit in report["advice"], (bit, report["advice"])


def test_advice_never_misleads_across_categories():
    """The wrong advice researchers got before: download advice for a refused local port, `pip install
    pkg_resources`, a CPU-build claim for a CUDA torch without GPUs."""
    mlflow = diagnose_text(CASES["mlflow_refused"][0], exit_code=1, alive=False, meta=_meta("python t.py"))
    assert "HF_HUB_OFFLINE" not in mlflow["advice"] and "download first" not in mlflow["advice"]
    pkg = diagnose_text(CASES["pkg_resources_removed"][0], exit_code=1, alive=False, meta=_meta("python t.py"))
    assert "install pkg_resources" not in pkg["advice"]
    box2d = diagnose_text(CASES["gymnasium_box2d_extra"][0], exit_code=1, alive=False, meta=_meta("python t.py"))
    assert "install Box2D" not in box2d["advice"] and "install box2d" not in box2d["advice"]
    nccl = diagnose_text(CASES["nccl_cuda_build_no_gpu"][0], exit_code=1, alive=False, meta=_meta("python t.py"))
    assert "CPU-only build" not in nccl["advice"]


def test_bad_args_advice_uses_the_scripts_own_flags_when_the_tool_suggests_none():
    info = {"args": [{"flags": ["--learning-rate"], "dest": "learning_rate"}, {"flags": ["--epochs"], "dest": "epochs"}]}
    log = "usage: train.py [-h]\ntrain.py: error: unrecognized arguments: --learnin-rate 0.1\n"
    report = diagnose_text(log, exit_code=2, alive=False, meta=_meta("python train.py --learnin-rate 0.1"), info=info)
    assert report["failure"] == "bad_args"
    assert "did you mean --learning-rate?" in report["advice"] and "the script defines it" in report["advice"]


def test_a_quick_exit_without_progress_is_flagged_and_a_real_run_is_not():
    quiet = diagnose_text("loading config\n", exit_code=0, alive=False, meta=_meta("python lib.py"), elapsed_s=2.0)
    assert quiet["failure"] == "no_progress"
    assert "Finished in 2 s and logged no step: did the entry point train?" in quiet["advice"]
    assert "lib.py may only define functions" in quiet["advice"]
    trained = diagnose_text("epoch 0 loss 0.5\n", exit_code=0, alive=False, meta=_meta("python t.py"), elapsed_s=2.0)
    assert trained["failure"] is None
    long = diagnose_text("done\n", exit_code=0, alive=False, meta=_meta("python t.py"), elapsed_s=3600.0)
    assert long["failure"] is None


def test_the_final_exception_is_the_last_tracebacks_even_for_unusual_class_names():
    from cruijff_kit.launch.diagnose import final_exception, _log_lines

    log = (TB_A := "Traceback (most recent call last):\n  File \"a.py\", line 1\nKeyError: 'x'\n\n"
           "During handling of the above exception, another exception occurred:\n\n"
           "Traceback (most recent call last):\n  File \"a.py\", line 3\n"
           "gymnasium.error.NameNotFound: Environment `Foo` doesn't exist.\n")
    assert final_exception(_log_lines(log))[1] == "gymnasium.error.NameNotFound: Environment `Foo` doesn't exist."
    assert TB_A  # the chained first traceback is not the answer
