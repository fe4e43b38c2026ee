"""Run-time estimates (experiment/estimate.py): the shape follows steps (dataset rows, epochs, batch
size, max steps), and earlier experiments on the same model calibrate it to measured times."""
from __future__ import annotations

import json
from pathlib import Path

from cruijff_kit.experiment.design import DesignSpec, design_experiment
from cruijff_kit.experiment.estimate import (
    calibrate,
    estimate_seconds,
    forward_batches,
    suggested_slurm_time,
)

# Llama-3.2-1B-Instruct's real config.json dimensions
LLAMA_1B = {"hidden_size": 2048, "num_hidden_layers": 16, "intermediate_size": 8192, "vocab_size": 128256,
            "num_attention_heads": 32, "num_key_value_heads": 8, "model_type": "llama"}


def model(tmp_path: Path) -> Path:
    d = tmp_path / "models" / "Llama-3.2-1B-Instruct"
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(LLAMA_1B))
    return d


def data(tmp_path: Path, rows: int, name: str = "words.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps({"train": [{"input": f"w{i}", "output": f"W{i}"} for i in range(rows)]}))
    return p


def design(tmp_path: Path, m: Path, d: Path, batch_sizes, exp_name="sweep", **kw):
    # the settings schema's DesignSpec: grid levels and Configuration settings by setup key
    spec = DesignSpec(name=exp_name, models=[("llama1b", str(m))], dataset=str(d),
                      grid={"lora_rank": [8], "learning_rate": [1e-4], "batch_size": list(batch_sizes)},
                      settings={"num_gpus": 1}, controls=False,
                      experiment_dir=str(tmp_path / "exps" / exp_name), **kw)
    exp = design_experiment(spec)
    return {exp.value("batch_size", r): r.est_time for r in exp.finetuned_runs}


def test_steps_follow_rows_batch_size_ranks_and_max_steps():
    assert forward_batches(examples=1000, epochs=2, batch_size=4) == 500
    assert forward_batches(examples=1000, epochs=1, batch_size=4, ranks=2) == 125
    assert forward_batches(examples=1000, epochs=1, batch_size=4, max_steps_per_epoch=10, grad_accum=2) == 20


def test_estimate_changes_with_batch_size_and_dataset_size(tmp_path, monkeypatch):
    monkeypatch.setenv("CK_LOCAL_CONFIG", str(tmp_path / "none.md"))  # no output base to scan
    (tmp_path / "none.md").write_text("")
    m = model(tmp_path)
    p = 1.2e9
    small_bs = estimate_seconds(params=p, examples=20000, epochs=1, batch_size=1, gpus=1)
    big_bs = estimate_seconds(params=p, examples=20000, epochs=1, batch_size=16, gpus=1)
    assert small_bs > big_bs * 1.1  # 20000 batches pay the per-batch cost 16x as often
    more_rows = estimate_seconds(params=p, examples=80000, epochs=1, batch_size=16, gpus=1)
    assert more_rows > big_bs * 2.5  # 4x the rows; the start-up overhead is paid once
    by_bs = design(tmp_path, m, data(tmp_path, 20000), [1, 16])
    assert by_bs[1] != by_bs[16], by_bs
    assert design(tmp_path, m, data(tmp_path, 500, "small.json"), [16])[16] != by_bs[16]


def earlier_experiment(tmp_path: Path, m: Path, d: Path, *, batch_size: int, seconds: int, name: str) -> None:
    exp = tmp_path / "exps" / name
    run = exp / "rank8_lr1e-4"
    run.mkdir(parents=True)
    (run / "setup_finetune.yaml").write_text(
        f"model_checkpoint: {m}\ndataset: {d}\nbatch_size: {batch_size}\nepochs: 1\nnum_gpus: 1\n"
        "gradient_accumulation_steps: 1\nmax_steps_per_epoch: null\n")
    (exp / ".ck").mkdir()
    (exp / ".ck" / "ledger.json").write_text(json.dumps({"version": 1, "jobs": {
        "rank8_lr1e-4/finetune": {"kind": "finetune", "run": "rank8_lr1e-4", "state": "COMPLETED",
                                  "job_id": "77", "attempts": [{"job_id": "77", "started": "2026-11-01T10:00:00",
                                                                "ended": f"2026-11-01T{10 + seconds // 3600:02d}:"
                                                                         f"{seconds % 3600 // 60:02d}:{seconds % 60:02d}",
                                                                "state": "COMPLETED"}]},
        "rank8_lr1e-4/eval/cap_epoch0": {"kind": "eval", "run": "rank8_lr1e-4", "state": "COMPLETED",
                                         "attempts": [{"started": "2026-11-01T10:00:00",
                                                       "ended": "2026-11-01T19:00:00"}]}}}))


def test_measured_runs_of_the_same_model_calibrate_the_estimate(tmp_path, monkeypatch):
    monkeypatch.setenv("CK_LOCAL_CONFIG", str(tmp_path / "none.md"))
    (tmp_path / "none.md").write_text("")
    m, d = model(tmp_path), data(tmp_path, 20000)
    before = design(tmp_path, m, d, [4, 16])
    earlier_experiment(tmp_path, m, d, batch_size=4, seconds=2 * 3600, name="last_week")
    cal = calibrate(str(m), [tmp_path / "exps"])
    assert cal is not None and cal.runs == 1  # the eval entry is not a fine-tune
    after = design(tmp_path, m, d, [4, 16])
    assert after[4] == "~2.0h", after  # same model, data and batch size: the measured time
    assert after[16] != after[4] and after != before
    # another model's history does not count
    other = tmp_path / "models" / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps(LLAMA_1B))
    assert calibrate(str(other), [tmp_path / "exps"]) is None


def test_output_base_from_claude_local_md_is_searched(tmp_path, monkeypatch):
    m, d = model(tmp_path), data(tmp_path, 20000)
    base = tmp_path / "scratch"
    base.mkdir()
    cfg = tmp_path / "claude.local.md"
    cfg.write_text(f"- output_dir_base: {base}\n")
    monkeypatch.setenv("CK_LOCAL_CONFIG", str(cfg))
    earlier_experiment(base.parent, m, d, batch_size=4, seconds=3600, name="x")  # tmp/exps/x (not base)
    assert design(tmp_path / "elsewhere", m, d, [4])[4] != "~60m"
    (tmp_path / "exps" / "x").rename(base / "x")
    assert design(tmp_path / "elsewhere", m, d, [4])[4] == "~60m"


def test_suggested_slurm_time_has_a_margin():
    assert suggested_slurm_time(None) is None
    assert suggested_slurm_time(60) == "00:15:00"
    assert suggested_slurm_time(3600) == "01:30:00"
    assert suggested_slurm_time(20 * 3600) == "1-06:00:00"


def test_time_limit_for_a_run_follows_its_estimate_and_measurements(tmp_path):
    from cruijff_kit.experiment.estimate import estimated_time_limit

    m, d = model(tmp_path), data(tmp_path, 20000)
    setup = {"model_checkpoint": str(m), "dataset": str(d), "epochs": 1, "batch_size": 4, "num_gpus": 1,
             "max_steps_per_epoch": None, "gradient_accumulation_steps": 1}
    assert estimated_time_limit(setup, []) == "00:15:00"  # the formula says ~2 min: the floor
    earlier_experiment(tmp_path, m, d, batch_size=4, seconds=2 * 3600, name="measured")
    assert estimated_time_limit(setup, [tmp_path / "exps"]) == "03:00:00"  # 2 h measured x 1.5
    assert estimated_time_limit({**setup, "dataset": str(tmp_path / "missing.json")}, []) is None
