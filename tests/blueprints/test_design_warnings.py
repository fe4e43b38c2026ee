"""`ck design` warns (and --json reports) plans that would answer the question wrongly: evaluating on
training rows, on a tiny split, or with a warmup that is a big part of a run."""
from __future__ import annotations

import json

from cruijff_kit.blueprints.capitalization import demo
from cruijff_kit.blueprints.capitalization.generate import SHIPPED_WORDS, generate
from cruijff_kit.cli import main as ck


def _design(tmp_path, capsys, data, *extra):
    capsys.readouterr()
    rc = ck(["design", str(tmp_path / "exp"), "--model", f"tiny={tmp_path}", "--dataset", str(data), "--ranks", "8",
             "--lrs", "1e-3", "--batch-sizes", "2,8", "--epochs", "1", "--gpus", "0", "--json", *extra])
    out = capsys.readouterr()
    assert rc == 0, out.err
    return json.loads(out.out), out.err


def test_old_demo_layout_fires_every_warning(tmp_path, capsys):
    # the previous demo: 25 words, train repeated 15x (300 rows), evaluated on the train split, warmup 100
    data = generate(tmp_path / "old.json", n=25, seed=0, splits=(0.8, 0.1, 0.1), word_source=SHIPPED_WORDS, repeat=15)
    report, _ = _design(tmp_path, capsys, data, "--set", "Evaluation split=train")
    codes = [w["code"] for w in report["warnings"]]
    assert "eval_split_overlaps_train" in codes
    # batch 8: 300 // 8 = 37 steps, warmup 100 -> warned; batch 2: 150 steps, 100 >= 37.5 -> warned too
    warm = {w["run"]: w["message"] for w in report["warnings"] if w["code"] == "warmup_fraction"}
    assert len(warm) == 2 and any("37 optimizer steps" in m for m in warm.values())
    assert any("150 optimizer steps" in m for m in warm.values())

    report, _ = _design(tmp_path, capsys, data, "--force")  # default split: test, 3 rows
    codes = [w["code"] for w in report["warnings"]]
    assert "eval_split_small" in codes and "eval_split_overlaps_train" not in codes


def test_warnings_printed_and_logged_without_json(tmp_path, capsys):
    data = generate(tmp_path / "old.json", n=25, seed=0, word_source=SHIPPED_WORDS)
    rc = ck(["design", str(tmp_path / "exp"), "--model", f"tiny={tmp_path}", "--dataset", str(data), "--ranks", "8",
             "--lrs", "1e-3", "--epochs", "1", "--gpus", "0"])
    err = capsys.readouterr().err
    assert rc == 0 and "warning: evaluation split 'test' has 3 rows" in err
    assert "DESIGN_WARNING" in (tmp_path / "exp" / "design-experiment.log").read_text()


def test_demo_plan_has_no_warnings(tmp_path, capsys):
    data = generate(tmp_path / "demo.json", **demo.DATA)
    report, err = _design(tmp_path, capsys, data, "--set", f"Warmup steps={demo.TRAINING['lr_warmup_steps']}",
                          "--set", f"Evaluation split={demo.EVAL_SPLIT}")
    assert report["warnings"] == [] and "warning" not in err


def test_steps_per_run_follows_torchtune(tmp_path, capsys):
    """drop_last batches, ceil(rows / ranks) per rank, gradient accumulation, max_steps_per_epoch
    (`ck design --json` reports them per run; controls train nothing)."""
    data = generate(tmp_path / "d.json", n=129, seed=0, splits=(0.8, 0.1, 0.1), word_source=SHIPPED_WORDS)  # 103 train
    report, _ = _design(tmp_path, capsys, data, "--epochs", "3", "--set", "Warmup steps=1")
    assert sorted(report["steps"].values(), key=str) == sorted([3 * (103 // 2), 3 * (103 // 8), None], key=str)
    report, _ = _design(tmp_path, capsys, data, "--force", "--epochs", "2", "--set", "CPU ranks=2",
                        "--set", "Gradient accumulation steps=2", "--set", "Warmup steps=1")
    assert sorted(v for v in report["steps"].values() if v is not None) == [2 * ((52 // 8) // 2), 2 * ((52 // 2) // 2)]
    report, _ = _design(tmp_path, capsys, data, "--force", "--epochs", "2", "--set", "Max steps per epoch=5",
                        "--set", "Warmup steps=1")
    assert sorted(v for v in report["steps"].values() if v is not None) == [10, 10]


def test_a_run_with_no_full_batch_is_named(tmp_path, capsys):
    data = tmp_path / "few.json"
    data.write_text(json.dumps({"train": [{"input": "a", "output": "A"}] * 5, "test": [{"input": "b", "output": "B"}] * 40}))
    report, _ = _design(tmp_path, capsys, data)
    no_steps = [w for w in report["warnings"] if w["code"] == "no_steps"]
    assert len(no_steps) == 1 and "8" in no_steps[0]["run"].rsplit("_", 1)[-1]  # batch 8 > 5 rows; batch 2 has 2 steps


def test_a_missing_evaluation_split_is_named(tmp_path, capsys):
    data = generate(tmp_path / "d.json", n=200, seed=0, word_source=SHIPPED_WORDS)
    report, _ = _design(tmp_path, capsys, data, "--set", "Evaluation split=dev", "--set", "Warmup steps=1")
    assert [w["code"] for w in report["warnings"]] == ["eval_split_missing"]


def test_paths_that_do_not_exist_are_warned_at_design(tmp_path, capsys):
    """A model, dataset, task script or checkpoint that is not there is said by `ck design` (and listed in
    --json), not first by scaffold; warnings, because a cluster path may exist only on the cluster."""
    data = generate(tmp_path / "d.json", **demo.DATA)
    capsys.readouterr()
    rc = ck(["design", str(tmp_path / "exp"), "--model", f"tiny={tmp_path}/nomodel", "--model", f"ok={tmp_path}",
             "--dataset", str(tmp_path / "nodata.json"), "--task", f"cap={tmp_path}/no_task.py@0",
             "--eval-only", f"other=ok@{tmp_path}/nockpt", "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    by_code = {}
    for w in json.loads(out.out)["warnings"]:
        by_code.setdefault(w["code"], []).append(w["message"])
    assert by_code["model_missing"] == [f"model 'tiny': {tmp_path}/nomodel does not exist here"]
    assert by_code["dataset_missing"] == [f"dataset {tmp_path}/nodata.json does not exist here"]
    assert "no_task.py does not exist here" in by_code["task_missing"][0]
    assert "nockpt does not exist here" in by_code["checkpoint_missing"][0]
    rc = ck(["design", str(tmp_path / "exp2"), "--model", f"tiny={tmp_path}", "--dataset", str(data)])
    err = capsys.readouterr().err
    assert rc == 0 and "does not exist here" not in err
