"""The done-means of the bundled demo: `make demo` (run_demo) shows fine-tuned runs beating the
control ON HELD-OUT WORDS by at least twice the combined standard error, read from the real
inspect .eval logs. One demo run for the session (it is the whole pipeline: about 2-3 minutes)."""
from __future__ import annotations

import json
import math

import pytest

from cruijff_kit.blueprints.capitalization import demo
from cruijff_kit.blueprints.capitalization.generate import generate


def test_demo_splits_are_distinct_words_and_test_is_big(tmp_path):
    data = json.loads(generate(tmp_path / "w.json", **demo.DATA).read_text())
    words = {split: {r["input"] for r in rows} for split, rows in data.items()}
    assert not (words["train"] & words["test"]) and not (words["train"] & words["validation"])
    assert not (words["validation"] & words["test"])
    assert len(words["test"]) >= 100 and len(data["test"]) == len(words["test"])
    assert demo.EVAL_SPLIT == "test"


@pytest.fixture
def demo_run(demo_experiment):
    exp, _stdout = demo_experiment  # the session's one demo run (tests/conftest.py; a failed demo fails there)
    return exp


def _accuracy_and_stderr(log) -> tuple[float, float, int]:
    scores = log.results.scores[0]
    n = len(log.samples)
    return scores.metrics["accuracy"].value, scores.metrics["stderr"].value, n


@pytest.mark.slow
def test_demo_fine_tuned_beats_control_on_held_out_words(demo_run):
    from inspect_ai.log import read_eval_log

    exp = demo_run
    data = json.loads((exp.parent / "data" / "capitalization.json").read_text())
    test_words = {r["input"] for r in data["test"]}
    train_words = {r["input"] for r in data["train"]}
    results = {}
    for path in sorted(exp.glob("*/eval/logs/*.eval")):
        log = read_eval_log(str(path))
        assert log.status == "success"
        # evaluated on the held-out words, all of them
        inputs = {s.input for s in log.samples}
        assert inputs == test_words and not inputs & train_words
        results[path.parts[-4]] = _accuracy_and_stderr(log)
    controls = {k: v for k, v in results.items() if "base" in k or "control" in k}
    tuned = {k: v for k, v in results.items() if k not in controls}
    assert len(controls) == 1 and len(tuned) == 4, results
    (c_acc, c_se, _), = controls.values()
    best = max(tuned, key=lambda k: tuned[k][0])
    b_acc, b_se, _ = tuned[best]
    print(f"held-out accuracy: control {c_acc:.3f} +- {c_se:.3f}; best {best} {b_acc:.3f} +- {b_se:.3f}")
    assert b_acc - c_acc >= 2 * math.sqrt(b_se ** 2 + c_se ** 2)
    assert b_acc >= 0.5  # learning, not noise
