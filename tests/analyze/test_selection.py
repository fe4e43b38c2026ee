"""Select on validation, report on test (analyze/selection.py) on real inspect-ai logs of the tiny model."""
import contextlib
import io
import json

import pytest

from cruijff_kit.cli import main

from .conftest import VALSEL_N, VALSEL_TEST, VALSEL_VAL

pytestmark = pytest.mark.slow  # real evaluations of the tiny model (the grid fixture)


def _analyze(exp):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["analyze", str(exp), "--json"]) == 0
    return json.loads(buf.getvalue())


def test_best_run_and_epoch_are_chosen_on_validation_and_reported_on_test(valsel):
    data = _analyze(valsel)
    sel = data["findings"]["capitalization"]["selection"]
    assert sel["on"] == "validation" and sel["validation_task"] == "capitalization_val"
    assert sel["directory"].startswith("rank16") and sel["epoch"] == 0
    assert sel["validation_value"] == VALSEL_VAL["rank16"][0] / VALSEL_N
    assert sel["value"] == VALSEL_TEST["rank16"][0] / VALSEL_N  # its test score, not the test-best 8/8
    assert sel["candidates"] == 4
    best = data["best"]
    assert best["selected_on"] == "validation" and best["epoch"] == 0 and best["value"] == 0.5
    assert best["ci"] and best["ci"][0] < 0.5 < best["ci"][1]
    report = (valsel / "analysis" / "report.md").read_text()
    answer = report.split("## Answer", 1)[1].split("\n## ", 1)[0]
    assert "Selected on validation (capitalization_val): **tiny_rank16" in answer
    assert "its test accuracy is 0.500" in answer
    # the validation task selects; the answer is about the test task only
    assert "capitalization_val accuracy" not in answer
    assert data["findings"]["capitalization_val"]["selection"]["on"] == "test"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["analyze", str(valsel), "--out", str(valsel / "a2"), "--no-store"]) == 0
    assert "; epoch_0 chosen on capitalization_val)" in out.getvalue()


def test_selection_on_test_is_called_optimistic(grid):
    data = _analyze(grid["exp"])
    assert data["findings"]["capitalization"]["selection"]["on"] == "test"
    assert data["best"]["selected_on"] == "test"
    report = (grid["exp"] / "analysis" / "report.md").read_text()
    assert "were chosen on the test set itself (no validation split was evaluated for capitalization)" in report
    assert "optimistic" in report
