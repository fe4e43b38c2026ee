"""TRL + PEFT for real on CPU (tiny, format-faithful Qwen3 / Gemma 3 checkpoints and the tiny Qwen2.5):
design -> scaffold -> local run -> analyze. What is evaluated is what was trained, token for token:
each evaluated sample's `prompt_token_ids` (the .eval sample metadata) equals the prompt part of the
training example for the same row in <run>/logs/train_examples.jsonl, for the fine-tuned run and the
control alike; validation loss is logged per epoch; the adapter loads with PEFT."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.e2e.cli import run_ck

ROOT = Path(__file__).resolve().parents[2]
TASK = ROOT / "tools/cruijff_kit/blueprints/capitalization/inspect_task.py"
pytestmark = pytest.mark.slow

SPEC = """name: {name}
models: {{{models}}}
dataset: {data}
grid: {{lora_rank: [4]}}
epochs: 1
gpus: 0
controls: {controls}
config: {{Max steps per epoch: 2, Eval max tokens: 2, Warmup steps: 0, Batch size: 2,
          Validation during training: true, System prompt: {system_prompt}}}
tasks:
  - {{task: cap_train, script: {task}, split: train}}
"""


def _experiment(root: Path, models: dict[str, Path], data: Path, *extra, controls=True,
                system_prompt='""') -> tuple[Path, dict]:
    (root / "claude.local.md").write_text(f"- venv: {sys.prefix}\n")
    env = {"CK_LOCAL_CONFIG": str(root / "claude.local.md"), "CK_EXECUTOR": "local"}
    (root / "spec.yaml").write_text(SPEC.format(name=root.name, models=", ".join(f"{k}: {v}" for k, v in models.items()),
                                                data=data, task=TASK, controls=str(controls).lower(),
                                                system_prompt=system_prompt))
    exp = root / "exp"
    run_ck("design", exp, "--spec", root / "spec.yaml", *extra, env=env)
    run_ck("scaffold", exp, env=env)
    report = json.loads(run_ck("run", exp, "--executor", "local", "--poll", "1", "--json", env=env).stdout)
    ledger = json.loads((exp / ".ck" / "ledger.json").read_text())["jobs"]
    assert ledger and all(j["state"] == "COMPLETED" for j in ledger.values()), (report, ledger)
    return exp, env


def _samples(run_dir: Path) -> dict[str, list[int]]:
    """input text -> prompt_token_ids, from the run's .eval logs."""
    from inspect_ai.log import read_eval_log

    out = {}
    for f in (run_dir / "eval" / "logs").glob("*.eval"):
        log = read_eval_log(str(f))
        assert log.status == "success"
        for s in log.samples:
            out[str(s.input)] = s.metadata["prompt_token_ids"]
    return out


def _examples(run_dir: Path) -> list[dict]:
    lines = (run_dir / "logs" / "train_examples.jsonl").read_text().splitlines()
    assert len(lines) == 8
    return [json.loads(x) for x in lines]


def _prompt_part(ex: dict) -> list[int]:
    first = next(i for i, label in enumerate(ex["labels"]) if label != -100)
    assert all(label == -100 for label in ex["labels"][:first]) and ex["labels"][first:] == ex["input_ids"][first:]
    return ex["input_ids"][:first]


def _assert_identity(exp: Path, data: Path, run: str, control: str | None) -> list[dict]:
    """Every training example's prompt ids are the ids evaluation gave the model for that row."""
    rows = json.loads(data.read_text())["train"]
    examples = _examples(exp / run)
    evaluated = {d: _samples(exp / d) for d in ((run, control) if control else (run,))}  # each log read once
    for i, ex in enumerate(examples):
        prompt = _prompt_part(ex)
        for d, samples in evaluated.items():
            assert samples[rows[i]["input"]] == prompt, (d, rows[i], ex["text"])
    return examples


def _assert_trl_checkpoint(exp: Path, run: str, base: Path) -> Path:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from cruijff_kit.state.loss_logs import read_loss_curve
    from cruijff_kit.state.artifacts import checkpoint_problems
    from cruijff_kit.finetune.peft_compat import peft_without_old_torchao

    out = exp / run / "checkpoints"
    epoch = out / "epoch_0"
    assert checkpoint_problems(epoch) == []
    assert json.loads((epoch / "ck_checkpoint.json").read_text())["trainer"] == "trl"
    assert read_loss_curve(out, "loss") and read_loss_curve(out, "val_loss"), "train / validation loss logged"
    peft_without_old_torchao()
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(base)), str(epoch))
    assert any("lora_A" in n for n, _ in model.named_parameters())
    # a damaged adapter is not a finished epoch
    header = (epoch / "adapter_config.json").read_text()
    (epoch / "adapter_config.json").write_text(header.replace('"r": 4', '"r": 8'))
    try:
        assert checkpoint_problems(epoch), "rank mismatch must make the epoch incomplete"
    finally:
        (epoch / "adapter_config.json").write_text(header)
    return epoch


def _analyze(exp: Path, env: dict) -> str:
    run_ck("analyze", exp, env=env)
    return (exp / "analysis" / "report.md").read_text()


def test_qwen3_and_gemma3_design_to_report(tmp_path, qwen3_model, gemma3_model, cap_data):
    """Both families in one plan, each with its control, under one system prompt (Qwen3 gives it a
    system turn, Gemma folds it into the first user turn)."""
    exp, env = _experiment(tmp_path, {"qwen3": qwen3_model, "gemma": gemma3_model}, cap_data,
                           system_prompt='"Capitalize the word."')
    assert "- **Model Preparation:** trl" in (exp / "experiment_summary.md").read_text()
    for run, model in (("qwen3", qwen3_model), ("gemma", gemma3_model)):
        assert (exp / run / "trl_config.yaml").is_file() and not (exp / run / "finetune.yaml").exists()
        _assert_trl_checkpoint(exp, run, model)
    qwen3 = _assert_identity(exp, cap_data, "qwen3", "qwen3_base")
    assert qwen3[0]["text"].startswith("<|im_start|>system\nCapitalize the word.<|im_end|>\n<|im_start|>user\n")
    # Qwen3's thinking mode pinned off: the empty think block the template writes for it
    assert "<|im_start|>assistant\n<think>\n\n</think>\n\n" in qwen3[0]["text"]
    gemma = _assert_identity(exp, cap_data, "gemma", "gemma_base")
    # Gemma folds the system prompt into the first user turn; one BOS
    assert gemma[0]["text"].startswith("<bos><start_of_turn>user\nCapitalize the word.\n\n")
    assert gemma[0]["input_ids"][:2] == [2, 105] and gemma[0]["input_ids"].count(2) == 1
    report = _analyze(exp, env)
    assert "val epoch_0" in report and "qwen3" in report and "gemma" in report
    doctor = run_ck("doctor", exp, env=env, check=False).stdout
    for run in ("qwen3", "qwen3_base", "gemma", "gemma_base"):
        assert f"ok    prompt identity {run}:" in doctor, doctor


def test_one_plan_varies_the_trainer(tmp_path, cap_data):
    """The tiny Qwen2.5 model, trained by torchtune and by TRL in one plan: both train and are
    evaluated in the same prompt format, and the training ids agree across trainers."""
    from cruijff_kit.tiny_model import make_tiny_model

    model = make_tiny_model(tmp_path / "tiny")
    exp, env = _experiment(tmp_path, {"tiny": model}, cap_data, "--vary", "Model preparation=torchtune,trl",
                           controls=False)
    runs = {d.name: d for d in exp.iterdir() if (d / "finetune.slurm").is_file()}
    tt = next(n for n in runs if "torchtune" in n)
    trl = next(n for n in runs if n.endswith("trl"))
    assert (exp / tt / "finetune.yaml").is_file() and (exp / trl / "trl_config.yaml").is_file()
    _assert_trl_checkpoint(exp, trl, model)
    a = _assert_identity(exp, cap_data, trl, tt)
    b = _examples(exp / tt)
    assert [x["input_ids"] for x in a] == [x["input_ids"] for x in b]  # torchtune's ids = TRL's ids
    report = _analyze(exp, env)
    assert tt in report and trl in report


def test_two_gloo_ranks_train_one_adapter(tmp_path, qwen3_model, cap_data):
    """GPUs > 1 / CPU ranks > 1: finetune.slurm starts DDP ranks with torchrun; here 2 gloo ranks on
    the CPU, each on its half of every step's batches, rank 0 writing the one checkpoint and log."""
    import subprocess

    from cruijff_kit.state.loss_logs import read_log_values
    from cruijff_kit.state.artifacts import checkpoint_problems
    from cruijff_kit.finetune.slurm import render_finetune_slurm
    from cruijff_kit.finetune.trl_config import render_trl_config

    out = tmp_path / "ckpt"
    setup = {"run_name": "r", "model_checkpoint": str(qwen3_model), "dataset": str(cap_data),
             "dataset_format": "json", "lora_rank": 4, "lora_alpha": 8, "learning_rate": 1e-3, "batch_size": 2,
             "epochs": 1, "output_dir": str(out), "seed": 0, "lr_warmup_steps": 0, "trainer": "trl",
             "num_gpus": 0, "num_cpu_ranks": 2, "max_steps_per_epoch": 2,
             "environment": {"kind": "venv", "path": sys.prefix}}
    (tmp_path / "trl_config.yaml").write_text(render_trl_config(setup))
    (tmp_path / "finetune.slurm").write_text(render_finetune_slurm(setup))
    r = subprocess.run(["bash", str(tmp_path / "finetune.slurm")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert checkpoint_problems(out / "epoch_0") == []
    values = read_log_values(out)
    assert sorted(values) == [1, 2]  # one log (rank 0's), 2 steps
    # the cosine decays over the steps that run (Max steps per epoch), as torchtune's does
    assert values[1]["lr"] == pytest.approx(1e-3) and values[2]["lr"] == pytest.approx(5e-4)
    assert len((tmp_path / "logs" / "train_examples.jsonl").read_text().splitlines()) == 8
