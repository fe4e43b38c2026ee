"""Any training setting can be swept: `ck design --vary` / a spec's grid -> one run directory per
level named by the setting's short name -> the value in each run's finetune.yaml."""
import json

import pytest
import yaml

from cruijff_kit.cli import main

TASK = 'from inspect_ai import task\n\n@task\ndef capitalization(data_path: str, split: str = "test"):\n    ...\n'


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    monkeypatch.setenv("CK_LOCAL_CONFIG", str(tmp_path / "claude.local.md"))
    (tmp_path / "claude.local.md").write_text("- slurm_partition: debug\n")
    (tmp_path / "data.json").write_text(json.dumps({"train": [{"input": "a", "output": "A"}]}))
    (tmp_path / "task.py").write_text(TASK)
    return tmp_path


def _design(inputs, *extra):
    exp = inputs / "exp"
    argv = ["design", str(exp), "--model", f"Llama-3.2-1B-Instruct={inputs / 'absent' / 'Llama-3.2-1B-Instruct'}", "--dataset", str(inputs / "data.json"),
            "--task", f"capitalization={inputs / 'task.py'}@all", "--epochs", "2", "--gpus", "0", *extra]
    assert main(argv) == 0
    return exp


@pytest.mark.parametrize("vary,key,path,values,dirs", [
    ("LoRA dropout=0,0.1", "lora_dropout", ("model", "lora_dropout"), [0.0, 0.1], ["drop0.0", "drop0.1"]),
    ("LoRA alpha=8,32", "lora_alpha", ("model", "lora_alpha"), [8.0, 32.0], ["alpha8.0", "alpha32.0"]),
    ("Warmup steps=0,20", "lr_warmup_steps", ("lr_scheduler", "num_warmup_steps"), [0, 20], ["warmup0", "warmup20"]),
    ("seed=1,2", "seed", ("seed",), [1, 2], ["seed1", "seed2"]),
    ("Max steps per epoch=3,5", "max_steps_per_epoch", ("max_steps_per_epoch",), [3, 5], ["steps3", "steps5"]),
    ("Train on input=false,true", "train_on_input", ("dataset", "train_on_input"), [False, True], ["toioff", "toion"]),
    ("LoRA on MLP=true,false", "apply_lora_to_mlp", ("model", "apply_lora_to_mlp"), [True, False], ["mlpon", "mlpoff"]),
    ("LoRA attention modules=q_proj v_proj,q_proj k_proj v_proj", "lora_attn_modules", ("model", "lora_attn_modules"),
     [["q_proj", "v_proj"], ["q_proj", "k_proj", "v_proj"]], ["attnq+v", "attnq+k+v"]),
    ("Weight decay=0,0.1", "weight_decay", ("optimizer", "weight_decay"), [0.0, 0.1], ["wd0.0", "wd0.1"]),
])
def test_vary_any_setting_reaches_every_finetune_yaml(inputs, capsys, vary, key, path, values, dirs):
    exp = _design(inputs, "--vary", vary)
    summary = (exp / "experiment_summary.md").read_text()
    assert main(["scaffold", str(exp)]) == 0, capsys.readouterr()
    made = sorted(p.name for p in exp.iterdir() if p.is_dir())
    assert made == sorted(dirs + ["base"]), made
    for d, value in zip(dirs, values):
        setup = yaml.safe_load((exp / d / "setup_finetune.yaml").read_text())
        assert setup[key] == value
        cfg = yaml.safe_load((exp / d / "finetune.yaml").read_text())
        for part in path:
            cfg = cfg[part]
        assert cfg == value, (d, cfg)
        assert (exp / d / "eval" / "epoch1.slurm").is_file()  # @all = every epoch
    assert "| Type |" in summary


def test_spec_grid_takes_any_schema_key_and_names(inputs, capsys):
    spec = inputs / "spec.yaml"
    spec.write_text(f"""name: grid
models: {{Llama-3.2-1B-Instruct: {inputs / 'absent' / 'Llama-3.2-1B-Instruct'}}}
dataset: {inputs / 'data.json'}
question: Does dropout matter at rank 8?
grid:
  lora_rank: [8]
  LoRA dropout: [0.0, 0.05]
  seed: [1, 2]
gpus: 0
config:
  Warmup steps: 5
tasks:
  - task: capitalization
    script: task.py
    epochs: last
    split: validation
""")
    assert main(["design", str(inputs / "g"), "--spec", str(spec)]) == 0
    assert main(["scaffold", str(inputs / "g")]) == 0
    made = sorted(p.name for p in (inputs / "g").iterdir() if p.is_dir())
    assert made == sorted(["base", "drop0.0_seed1", "drop0.0_seed2", "drop0.05_seed1", "drop0.05_seed2"])
    cfg = yaml.safe_load((inputs / "g" / "drop0.05_seed2" / "finetune.yaml").read_text())
    assert cfg["model"]["lora_dropout"] == 0.05 and cfg["seed"] == 2
    assert cfg["lr_scheduler"]["num_warmup_steps"] == 5
    ev = (inputs / "g" / "drop0.05_seed2" / "eval" / "epoch0.slurm").read_text()
    assert '"split": "validation"' in ev
    text = (inputs / "g" / "experiment_summary.md").read_text()
    assert '- **Question:** "Does dropout matter at rank 8?"' in text


@pytest.mark.parametrize("extra,needle", [
    (["--vary", "LoRA dropuot=0,0.1"], "did you mean 'LoRA dropout'"),
    (["--vary", "Temperature=0,1"], "cannot differ between runs"),
    (["--vary", "LoRA dropout=0,1.5"], "< 1"),
    (["--ranks", "8,8"], "lists 8 twice"),
    (["--lrs", "inf"], "finite"),
    (["--lrs", "1e-5,nan"], "finite"),
    (["--set", "Warmup step=20"], "did you mean 'Warmup steps'"),
    (["--set", "Seed=-1"], ">= 0"),
    (["--epochs", "0"], ">= 1"),
    (["--epochs", "100000"], "<= 1000"),
    (["--task", "cap=t.py@3"], "evaluates epoch 3"),
    (["--task", "../../x=t.py"], "unsafe task name"),
    (["--vary", "seed=" + ",".join(str(i) for i in range(200)), "--vary", "Warmup steps=" + ",".join(str(i) for i in range(60))],
     "at most 10000"),
])
def test_design_refuses_what_scaffold_would_reject(inputs, capsys, extra, needle):
    exp = inputs / "exp"
    argv = ["design", str(exp), "--model", f"Llama-3.2-1B-Instruct={inputs / 'absent' / 'Llama-3.2-1B-Instruct'}", "--dataset", str(inputs / "data.json"),
            "--epochs", "2", *extra]
    if "--epochs" in extra:
        argv.remove("--epochs"), argv.remove("2")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert not exp.exists()


def test_task_runs_split_and_system_prompt_reach_only_the_planned_eval_scripts(inputs, capsys):
    spec = inputs / "spec.yaml"
    spec.write_text(f"""name: matrix
models: {{Llama-3.2-1B-Instruct: {inputs / 'absent' / 'Llama-3.2-1B-Instruct'}}}
dataset: {inputs / 'data.json'}
grid: {{lora_rank: [8, 16]}}
epochs: 2
tasks:
  - task: capitalization
    script: task.py
    epochs: [1]
    runs: [Llama-3.2-1B-Instruct_rank16_lr5e-5]
    split: validation
""")
    assert main(["design", str(inputs / "m"), "--spec", str(spec)]) == 0
    assert main(["scaffold", str(inputs / "m")]) == 0
    exp = inputs / "m"
    assert sorted(p.name for p in (exp / "rank16" / "eval").glob("*.slurm")) == ["epoch1.slurm"]
    assert '"split": "validation"' in (exp / "rank16" / "eval" / "epoch1.slurm").read_text()
    assert not list((exp / "rank8").glob("eval/*.slurm")) and not list((exp / "base").glob("eval/*.slurm"))
