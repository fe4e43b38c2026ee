"""Adversarial corpus: inputs a new user (or an attacker) might give ck design / ck scaffold.

Each case asserts the clear refusal: exit 2, the file (and line where there is one) and the
field in the message, no traceback, and not one byte changed anywhere under the test's root
(inside the experiment or outside it). In-process and small, so the corpus stays fast.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from cruijff_kit.cli import main
from tests.refusals import refused

CANON = (Path(__file__).parents[1] / "experiment" / "canonical.md").read_text()
TASK = 'from inspect_ai import task\n\n@task\ndef capitalization(data_path: str, split: str = "test"):\n    ...\n'
ROW = "| Llama-3.2-1B-Instruct_rank8_lr1e-5 | Llama-3.2-1B-Instruct | 8 | 1e-5 | 4 | Fine-tuned | ~10s |"
EVAL = "| capitalization | tasks/capitalization/inspect_task.py | 0 |"
HEAD = "| Run Name | Model | LoRA Rank | Learning Rate | Batch Size | Type | Est. Time |\n|---|---|---|---|---|---|---|"


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("CK_LOCAL_CONFIG", str(tmp_path / "claude.local.md"))
    (tmp_path / "claude.local.md").write_text("- slurm_partition: debug\n")
    exp = tmp_path / "exp"
    (exp / "tasks" / "capitalization").mkdir(parents=True)
    (exp / "tasks" / "capitalization" / "inspect_task.py").write_text(TASK)
    (exp / "experiment_summary.md").write_text(CANON.replace("/scratch/me/cap_4L_lora_lr_sweep", str(exp)))
    return tmp_path


def _line_of(text: str, token: str) -> int:
    return next(i for i, l in enumerate(text.splitlines(), 1) if token in l)


# ---- experiment_summary.md ---------------------------------------------------------------------
# (old, new, field, token on the offending line or None when the error has no line)
SUMMARY = [
    (ROW, ROW.replace("| 8 |", "| 8.5 |"), "LoRA Rank", "8.5"),
    (ROW, ROW.replace("| 8 |", "| 99999 |"), "LoRA Rank", "99999"),
    (ROW, ROW.replace("| 8 |", "| -8 |"), "LoRA Rank", "-8"),
    (ROW, ROW.replace("1e-5", "inf"), "Learning Rate", "inf"),
    (ROW, ROW.replace("1e-5", "nan"), "Learning Rate", "nan"),
    (ROW, ROW.replace("1e-5", "1e5"), "Learning Rate", "1e5"),
    (ROW, ROW.replace("1e-5", "0"), "Learning Rate", "| 0 |"),
    (ROW, ROW.replace("| 4 |", "| 0 |"), "Batch Size", "| 0 |"),
    (ROW, ROW.replace("| 4 |", "| 10000000 |"), "Batch Size", "10000000"),
    (ROW, ROW.replace("Fine-tuned", "Trained"), "Type", "Trained"),
    (ROW, ROW.replace("| Llama-3.2-1B-Instruct | 8", "| Llama-3.2-1B | 8"), "Model", "| Llama-3.2-1B | 8"),
    (ROW, ROW + "\n" + ROW, "Run Name", None),
    (ROW, ROW.replace("Llama-3.2-1B-Instruct_rank8_lr1e-5 |", " |"), "Run Name", "| 8 |"),
    (HEAD, HEAD.replace("| Model |", "| Model | LoRA Dropuot |", 1) + "---|", "All Runs", "Dropuot"),
    (HEAD, HEAD.replace("| Model |", "| Model | Seeds |", 1) + "---|", "All Runs", "Seeds"),
    (HEAD, HEAD.replace("| LoRA Rank |", "| LoRA Rnak |"), "All Runs", "Rnak"),
    (HEAD, HEAD.replace("| Batch Size |", "| Batch size |", 1).replace("| Model |", "| Model | BS |", 1) + "---|",
     "All Runs", "| BS |"),
    (HEAD, HEAD.replace("|---|---|---|", "|---|---|"), "All Runs", None),
    ("- **Epochs:** 1", "- **Epochs:** 1\n- **Warmup step:** 20", "Warmup step", "Warmup step"),
    ("- **Epochs:** 1", "- **Epochs:** 1\n- **LoRA dropout:** 1.5", "LoRA dropout", "1.5"),
    ("- **Epochs:** 1", "- **Epochs:** 1\n- **Seed:** -3", "Seed", "Seed:**"),
    ("- **Epochs:** 1", "- **Epochs:** 1\n- **Logger:** tensorboard", "Logger", "tensorboard"),
    ("- **Epochs:** 1", "- **Epochs:** 1\n- **LoRA attention modules:** q_proj, fc1", "LoRA attention modules", "fc1"),
    ("- **Epochs:** 1", "- **Epochs:** 1\n- **Train on input:** sometimes", "Train on input", "sometimes"),
    ("- **Epochs:** 1", "- **Epochs:** 1\n- **Evaluation split:** ../../etc", "Evaluation split", "../../etc"),
    ("- **Epochs:** 1", "- **Epochs:** 1\n- **Max tokens:** lots", "Max tokens", "lots"),
    ("- **Epochs:** 1", "- **Epochs:** 1\n- **Epochs:** 2", "Epochs", "Epochs:** 2"),
    ("- **Epochs:** 1", "- **Epochs:** 5000", "Epochs", "5000"),
    ("- **GPUs:** 1", "- **GPUs:** 1000", "GPUs", "1000"),
    ("- **Batch size:** 4", "- **Batch size:** four", "Batch size", "four"),
    ("- **Validation during training:** false", "- **Validation during training:** perhaps",
     "Validation during training", "perhaps"),
    ("- **Model Preparation:** torchtune", "- **Model Preparation:** axolotl", "Model Preparation", "axolotl"),
    ("- **Path:** /data/words_4L_80P_300.json", "- **Path:** /data/words.csv", "Dataset", "words.csv"),
    ("- **Path:** /data/words_4L_80P_300.json", "- **Path:** /data/words.txt", "Dataset", "words.txt"),
    (EVAL, "| ../../../x | tasks/capitalization/inspect_task.py | 0 |", "Task", "../../../x"),
    (EVAL, "| a/b | tasks/capitalization/inspect_task.py | 0 |", "Task", "a/b"),
    (EVAL, "| $(id) | tasks/capitalization/inspect_task.py | 0 |", "Task", "$(id)"),
    (EVAL, "| capitalization | tasks/capitalization/inspect_task.py | zero |", "Epochs", "zero"),
    (EVAL, "| capitalization | tasks/capitalization/inspect_task.py | 5000 |", "Epochs", "5000"),
    (EVAL, EVAL + "\n" + EVAL, "Task", None),
    ("| Task | Script | Epochs |\n|---|---|---|\n" + EVAL,
     "| Task | Script | Epochs | Runs |\n|---|---|---|---|\n" + EVAL.rstrip() + " nobody |", "Runs", "nobody"),
    ("| Task | Script | Epochs |\n|---|---|---|", "| Task | Script | Epochs | Temperatur |\n|---|---|---|---|",
     "Evaluation", "Temperatur"),
    ("| Task | Script | Epochs |", "| Task | Script | Epochs | Temperatur |", "Evaluation", "Temperatur"),
    ("| Task | Script | Epochs |\n|---|---|---|\n" + EVAL,
     "| Task | Script | Epochs | Split |\n|---|---|---|---|\n" + EVAL.rstrip() + " ../x |", "Split", "../x"),
    ("## Resources", "## Resources\n\n## Resources", "Resources", None),
    ("# cap_4L_lora_lr_sweep", "# ../../escape", "title", None),
    ("# cap_4L_lora_lr_sweep", "# my sweep; rm -rf ~", "title", None),
]


@pytest.mark.parametrize("old,new,field,token", SUMMARY, ids=[f"summary-{i}" for i in range(len(SUMMARY))])
def test_bad_summary(root, capsys, old, new, field, token):
    summary = root / "exp" / "experiment_summary.md"
    text = summary.read_text()
    assert old in text
    text = text.replace(old, new, 1)
    summary.write_text(text)
    where = f"{summary}:{_line_of(text, token)}: {field}" if token else f"{summary}"
    refused(capsys, ["scaffold", str(root / "exp")], root, where, field)


@pytest.mark.parametrize("content,needle", [
    (b"# x\n\xff\xfe broken", "not UTF-8"),
    (b"", "no '# experiment_name' title"),
    (b"just prose, no headings\n", "no '# experiment_name' title"),
    (b"# x\n" + b"a" * (5 * 1024 * 1024), "larger than"),
], ids=["summary-not-utf8", "summary-empty", "summary-prose", "summary-huge"])
def test_unreadable_summary(root, capsys, content, needle):
    summary = root / "exp" / "experiment_summary.md"
    summary.write_bytes(content)
    refused(capsys, ["scaffold", str(root / "exp")], root, str(summary), needle)


# ---- setup_finetune.yaml (hand edits, then `ck scaffold --only torchtune`) -----------------------
SETUP = [
    ("lora_rank: 8", "lora_rank: eight", "lora_rank", "whole number"),
    ("lora_rank: 8", "lora_rank: 0", "lora_rank", ">= 1"),
    ("lora_rank: 8", "lora_rank: true", "lora_rank", "whole number"),
    ("lora_dropout: 0.0", "lora_dropout: 1.0", "lora_dropout", "< 1"),
    ("learning_rate: 1.0e-05", "learning_rate: .inf", "learning_rate", "finite"),
    ("learning_rate: 1.0e-05", "learning_rate: 100", "learning_rate", "<= 10"),
    ("learning_rate: 1.0e-05", "learning_rate: '1e-5'", "learning_rate", "expected a number"),
    ("batch_size: 4", "batch_size: [4]", "batch_size", "whole number"),
    ("epochs: 1", "epochs: 1\nepoch: 2", "epoch", "did you mean 'epochs'"),
    ("seed: 1234", "sed: 1234", "sed", "unknown setting"),
    ("dataset_format: json", "dataset_format: csv", "dataset_format", "one of"),
    ("lora_attn_modules: [q_proj, v_proj, output_proj]", "lora_attn_modules: [q_proj, up_proj]",
     "lora_attn_modules", "unknown module"),
    ("lora_attn_modules: [q_proj, v_proj, output_proj]", "lora_attn_modules: []", "lora_attn_modules", "non-empty"),
    ("apply_lora_to_mlp: true", "apply_lora_to_mlp: 1", "apply_lora_to_mlp", "true or false"),
    ("logger: disk", "logger: tensorboard", "logger", "one of"),
    ("run_name: rank8", "run_name: ../../x", "run_name", "unsafe name"),
    ("run_name: rank8", "run_name: a/b", "run_name", "unsafe name"),
    ("batch_size: 4", "batch_size: 4\nbatch_size: 2", "batch_size", "appears twice"),
    ("num_gpus: 1", "num_gpus: 1000", "num_gpus", "<= 64"),
    ("partition: debug", 'partition: "gpu\\nrm -rf ~"', "slurm.partition", "newline"),
    ("account: null", 'account: "a\\u0007b"', "slurm.account", "control character"),
    ("slurm: {", 'slurm: {"gres": "gpu:2", ', "slurm.gres", "unknown SLURM setting"),
    ("slurm: {", 'slurm: {"qos": "high prio", ', "slurm.qos", "characters an #SBATCH option may not carry"),
    ("partition: debug", 'partition: "debug;id"', "slurm.partition", "characters an #SBATCH option may not carry"),
    ('time: "01:00:00"', 'time: "3 hours"', "slurm.time", "SLURM time"),
    ("modules: []", 'modules: ["cuda; rm -rf ~"]', "slurm.modules", "module names"),
    ("cpus: 4", "cpus: -1", "slurm.cpus", "whole number"),
    (", gpus: 1,", ", gpus: 65,", "slurm.gpus", "0..64"),
    ("slurm: {", 'slurm: {"partition": "x", ', "partition", "appears twice"),
    ("kind: venv", "kind: docker", "environment", "expected"),
    ("output_dir: ", "output_dir: \"\"\nx_output_dir: ", "output_dir", "must not be empty"),
    ("model_checkpoint: ", "model_checkpoint: 7\nold_checkpoint: ", "model_checkpoint", "expected text"),
]


@pytest.fixture
def scaffolded(root):
    assert main(["scaffold", str(root / "exp"), "--only", "torchtune"]) == 0
    return root / "exp" / "rank8" / "setup_finetune.yaml"


@pytest.mark.parametrize("old,new,field,needle", SETUP, ids=[f"setup-{i}" for i in range(len(SETUP))])
def test_bad_setup_file(root, scaffolded, capsys, old, new, field, needle):
    text = scaffolded.read_text()
    assert old in text, old
    text = text.replace(old, new, 1)
    scaffolded.write_text(text)
    key = field.split(".")[0]
    lines = [i for i, l in enumerate(text.splitlines(), 1) if l.startswith(key + ":")]
    line = lines[-1] if needle == "appears twice" and len(lines) > 1 else _line_of(text, key + ":")
    refused(capsys, ["scaffold", str(root / "exp"), "--only", "torchtune"], root,
            f"{scaffolded}:{line}: {field}: ", needle)


@pytest.mark.parametrize("content,needle", [
    ("a: &a [1, 2]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n",
     "aliases"),
    ("lora_rank: [8\n", "invalid YAML"),
    ("- just\n- a list\n", "expected a mapping"),
    ("x: " + "y" * (2 * 1024 * 1024) + "\n", "larger than"),
    ("\t- bad: indentation\n", "invalid YAML"),
], ids=["setup-alias-bomb", "setup-syntax", "setup-list", "setup-huge", "setup-tab"])
def test_hostile_setup_file(root, scaffolded, capsys, content, needle):
    scaffolded.write_text(content)
    refused(capsys, ["scaffold", str(root / "exp"), "--only", "torchtune"], root, str(scaffolded), needle)


def test_setup_file_not_utf8(root, scaffolded, capsys):
    scaffolded.write_bytes(scaffolded.read_bytes().replace(b"lora_rank: 8", b"lora_rank: \xff"))
    refused(capsys, ["scaffold", str(root / "exp"), "--only", "torchtune"], root, str(scaffolded), "cannot read")


# ---- claude.local.md ---------------------------------------------------------------------------
LOCAL = [
    ("- slurm_cpus: many\n", "slurm_cpus", 1, "whole number"),
    ("x\n- slurm_time: tomorrow\n", "slurm_time", 2, "SLURM time"),
    ("- slurm_mem: a lot\n", "slurm_mem", 1, "memory size"),
    ("- slurm_partiton: gpu\n", "slurm_partiton", 1, "unknown SLURM setting"),
    ("- slurm_gpus: -1\n", "slurm_gpus", 1, "whole number"),
    ("- slurm_account: ab\x07c\n", "slurm_account", 1, "control character"),
    ("- slurm_partition: " + "p" * 2000 + "\n", "slurm_partition", 1, "at most 1024"),
    ("- conda_env: ft\n- venv: /v\n", "conda_env", None, "not both"),
    ("- slurm_partition: a\n- slurm_partition: b\n", "slurm_partition", 2, "set twice (first on line 1)"),
    ("- venv: /a\nnote\n- venv: /b\n", "venv", 3, "set twice"),
    ("- slurm_gpus: 1000\n", "slurm_gpus", 1, "not plausible"),
]


@pytest.mark.parametrize("content,field,line,needle", LOCAL, ids=[f"local-{i}" for i in range(len(LOCAL))])
def test_bad_claude_local_md(root, capsys, content, field, line, needle):
    cfg = root / "claude.local.md"
    cfg.write_text(content)
    where = f"{cfg}:{line}: {field}" if line else f"{cfg}: {field}"
    refused(capsys, ["scaffold", str(root / "exp")], root, where, needle)


def test_claude_local_md_not_utf8(root, capsys):
    cfg = root / "claude.local.md"
    cfg.write_bytes(b"- slurm_partition: \xff\n")
    refused(capsys, ["scaffold", str(root / "exp")], root, str(cfg), "not UTF-8")


# ---- design specs ------------------------------------------------------------------------------
GOOD_SPEC = """name: sweep
models: {Llama-3.2-1B-Instruct: /models/Llama-3.2-1B-Instruct}
dataset: /data/words.json
grid: {lora_rank: [8, 16], learning_rate: [1e-5]}
epochs: 2
tasks:
  - task: capitalization
    script: t.py
    epochs: [0]
"""
SPEC = [
    ("epochs: 2", "epochs: 2\nwarmup_step: 3", "warmup_step", "did you mean"),
    ("epochs: 2", "epochs: 2\nconfig: {Warmup step: 3}", "config.Warmup step", "did you mean 'Warmup steps'"),
    ("epochs: 2", "epochs: 0", "epochs", ">= 1"),
    ("epochs: 2", "epochs: two", "epochs", "whole number"),
    ("learning_rate: [1e-5]", "learning_rate: [.inf]", "grid.learning_rate", "finite"),
    ("learning_rate: [1e-5]", "learning_rate: [1e-5, 1e-5]", "grid.learning_rate", "twice"),
    ("lora_rank: [8, 16]", "lora_rank: [8, 8]", "grid.lora_rank", "twice"),
    ("lora_rank: [8, 16]", "lora_rank: []", "grid.lora_rank", "at least one"),
    ("lora_rank: [8, 16]", "lora_rank: [8, 16], LoRA dropuot: [0, 0.1]", "LoRA dropuot", "did you mean 'LoRA dropout'"),
    ("lora_rank: [8, 16]", "lora_rank: [8, 16], Temperature: [0, 1]", "Temperature", "cannot differ between runs"),
    ("lora_rank: [8, 16]", "lora_rank: [8, 16], lora_dropout: [0.5, 2]", "grid.lora_dropout", "< 1"),
    ("lora_rank: [8, 16]", "lora_rank: [8, 16], seed: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, "
     "18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, "
     "46, 47, 48, 49, 50], lr_warmup_steps: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, "
     "20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, "
     "48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, "
     "76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100]",
     "grid", "at most 10000"),
    ("    epochs: [0]", "    epochs: [2]", "tasks[0]", "evaluates epoch 2"),
    ("    epochs: [0]", "    epochs: [0, 0]", "tasks[0].epochs", "twice"),
    ("    epochs: [0]", "    epochs: sometimes", "tasks[0].epochs", "'all' or 'last'"),
    ("    epochs: [0]", "    epochs: [0]\n    temperature: 0.5", "tasks[0]", "unknown task key"),
    ("    epochs: [0]", "    epochs: [0]\n    runs: [nobody]", "tasks[0]", "names run 'nobody'"),
    ("  - task: capitalization", "  - task: ../../x", "tasks[0]", "unsafe task name"),
    ("dataset: /data/words.json", "dataset: /data/words.csv", "dataset", ".csv files are not supported"),
    ("name: sweep", "name: ../up", "name", "unsafe"),
    ("name: sweep", "name: [a, b]", "name", "expected text"),
    ("models: {Llama-3.2-1B-Instruct: /models/Llama-3.2-1B-Instruct}", "models: [a, b]", "models", "name -> path"),
    ("models: {Llama-3.2-1B-Instruct: /models/Llama-3.2-1B-Instruct}", "models: {'a b': /m}", "models", "unsafe"),
    ("epochs: 2", "epochs: 2\ncontrols: maybe", "controls", "true or false"),
    ("epochs: 2", "epochs: 2\nquestion: [1]", "question", "must be text"),
    ("epochs: 2", "epochs: 2\nsystem_prompt: " + "x" * 20000, "system_prompt", "at most 10000"),
    ("epochs: 2", "epochs: 2\nconfig: [1, 2]", "config", "expected a mapping"),
]


@pytest.mark.parametrize("old,new,field,needle", SPEC, ids=[f"spec-{i}" for i in range(len(SPEC))])
def test_bad_spec(root, capsys, old, new, field, needle):
    assert old in GOOD_SPEC
    text = GOOD_SPEC.replace(old, new, 1)
    spec = root / "spec.yaml"
    spec.write_text(text)
    out = refused(capsys, ["design", str(root / "new"), "--spec", str(spec)], root, str(spec), field, needle)
    assert not (root / "new").exists()
    assert out


def test_good_spec_is_accepted(root, capsys):
    (root / "spec.yaml").write_text(GOOD_SPEC)
    assert main(["design", str(root / "new"), "--spec", str(root / "spec.yaml")]) == 0


@pytest.mark.parametrize("content,needle", [
    ("a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b]\n"
     "d: [*c, *c, *c, *c, *c, *c, *c, *c]\n", "aliases"),
    ("name: x\nmodels: &m {a: /a}\nmore: *m\n", "aliases"),
    ("name: [x\n", "invalid YAML"),
    ("- a\n- b\n", "YAML mapping"),
    ("name: x\n" + "#" * (2 * 1024 * 1024), "larger than"),
], ids=["spec-alias-bomb", "spec-alias", "spec-syntax", "spec-list", "spec-huge"])
def test_hostile_spec(root, capsys, content, needle):
    spec = root / "spec.yaml"
    spec.write_text(content)
    refused(capsys, ["design", str(root / "new"), "--spec", str(spec)], root, str(spec), needle)


def test_spec_not_utf8(root, capsys):
    spec = root / "spec.yaml"
    spec.write_bytes(GOOD_SPEC.encode().replace(b"sweep", b"sw\xffeep"))
    refused(capsys, ["design", str(root / "new"), "--spec", str(spec)], root, str(spec), "not UTF-8")


# ---- ck design flags -----------------------------------------------------------------------------
BASE = ["--model", "Llama-3.2-1B-Instruct=/models/x", "--dataset", "/data/w.json"]
CLI = [
    (["--ranks", "8,8"], "--ranks", "twice"),
    (["--lrs", "inf"], "--lrs", "finite"),
    (["--lrs=-1e-5"], "--lrs", "positive"),
    (["--lrs", "1e-5,nan"], "--lrs", "finite"),
    (["--batch-sizes", "0"], "--batch-sizes", ">= 1"),
    (["--vary", "LoRA dropout"], "--vary", "NAME=VALUE"),
    (["--vary", "dropout=0,1"], "--vary dropout", "< 1"),
    (["--vary", "Nonsense=1,2"], "Nonsense", "unknown setting"),
    (["--vary", "Warmup step=0,10"], "Warmup step", "did you mean 'Warmup steps'"),
    (["--vary", "seed=1,1"], "--vary seed", "twice"),
    (["--set", "Warmup step=20"], "--set", "did you mean 'Warmup steps'"),
    (["--set", "Seed=abc"], "--set Seed", "whole number"),
    (["--set", "Logger=tensorboard"], "--set Logger", "one of"),
    (["--set", "nothing"], "--set", "NAME=VALUE"),
    (["--epochs", "0"], "--epochs", ">= 1"),
    (["--gpus", "-1"], "--gpus", ">= 0"),
    (["--task", "cap=t.py@5"], "--task", "evaluates epoch 5"),
    (["--task", "cap=t.py@soon"], "--task", "'all' or 'last'"),
    (["--task", "../../x=t.py"], "--task", "unsafe task name"),
    (["--task", "cap"], "--task", "NAME=VALUE"),
    (["--name", "a/b"], "name", "unsafe"),
    (["--dataset", "/data/w.csv"], "dataset", ".csv"),
    (["--model", "a b=/m"], "models", "unsafe"),
    (["--system-prompt", "x" * 20000], "--system-prompt", "at most 10000"),
]


@pytest.mark.parametrize("extra,field,needle", CLI, ids=[f"cli-{i}" for i in range(len(CLI))])
def test_bad_design_flags(root, capsys, extra, field, needle):
    refused(capsys, ["design", str(root / "new"), *BASE, *extra], root, field, needle)
    assert not (root / "new").exists()


def test_design_into_a_file_is_refused(root, capsys):
    (root / "afile").write_text("x")
    refused(capsys, ["design", str(root / "afile"), *BASE], root, str(root / "afile"), "cannot write")


# ---- a plan means what it says, or is refused (round 2) ------------------------------------------
BASE_ROW = "| Llama-3.2-1B-Instruct_base | Llama-3.2-1B-Instruct | - | - | - | Control | N/A |"
# (old, new, field, token on the offending line, a phrase of the message)
MEANS = [
    ("## Configuration", "## Configuraton", "heading", "Configuraton", "did you mean '## Configuration'"),
    ("## All Runs", "## All Ruins", "heading", "All Ruins", "did you mean '## All Runs'"),
    ("## Configuration", "## Configura\x07tion", "heading", "Configura", "control or invisible character"),
    ("## Configuration", "## Configuration\u200b", "heading", "Configuration", "control or invisible character"),
    ("## Evaluation\n", "## Training notes\n- **Warmup steps:** 5\n\n## Evaluation\n", "heading",
     "Training notes", "would not read"),
    (ROW, ROW.replace("| 1e-5 |", "|  |"), "Learning Rate", "Instruct_rank8", "is empty"),
    (ROW, ROW.replace("| 4 |", "|   |"), "Batch Size", "Instruct_rank8", "is empty"),
    ("- **Batch size:** 4", "- **Batch size:** 8", "Batch Size", "Instruct_rank8", "Configuration says 8"),
    (BASE_ROW, BASE_ROW.replace("| - | - | - |", "| 8 | - | - |"), "LoRA Rank", "Instruct_base", "not trained"),
    (BASE_ROW, BASE_ROW.replace("| - | - | - |", "| - | 1e-4 | - |"), "Learning Rate", "Instruct_base",
     "not trained"),
    (ROW, ROW.replace("| 1e-5 |", "| 1e-4 |"), "Run Name", "Instruct_rank8", "Llama-3.2-1B-Instruct_rank8_lr1e-4"),
    (ROW, ROW.replace("| 8 |", "| 16 |"), "Run Name", "Instruct_rank8", "Llama-3.2-1B-Instruct_rank16_lr1e-5"),
    ("- **Epochs:** 1", "- **Epochs:** 1\n- **Warmup steps:** varies", "Warmup steps", "varies", "no 'Warmup Steps'"),
    ("- **Epochs:** 1", "- Epochs: 1\n- Warmup step: 3", "Warmup step", "Warmup step:", "did you mean"),
]


@pytest.mark.parametrize("old,new,field,token,needle", MEANS, ids=[f"means-{i}" for i in range(len(MEANS))])
def test_plan_means_what_it_says(root, capsys, old, new, field, token, needle):
    summary = root / "exp" / "experiment_summary.md"
    text = summary.read_text()
    assert old in text
    text = text.replace(old, new, 1)
    summary.write_text(text)
    refused(capsys, ["scaffold", str(root / "exp")], root, f"{summary}:{_line_of(text, token)}: {field}", needle)


def _parsed(root, old, new):
    from cruijff_kit.experiment.parse import load_experiment

    summary = root / "exp" / "experiment_summary.md"
    text = summary.read_text()
    assert old in text
    summary.write_text(text.replace(old, new, 1))
    return load_experiment(root / "exp")


def test_key_lines_without_bold_are_read(root):
    exp = _parsed(root, "- **Epochs:** 1\n- **GPUs:** 1", "- Epochs: 3\n- GPUs: 1\n- **Warmup steps:** 7")
    assert exp.epochs == 3 and exp.value("lr_warmup_steps") == 7


def test_utf8_bom_is_accepted(root, capsys):
    summary = root / "exp" / "experiment_summary.md"
    summary.write_bytes(b"\xef\xbb\xbf" + summary.read_bytes())
    assert main(["scaffold", str(root / "exp"), "--dry-run"]) == 0, capsys.readouterr().err


def test_original_template_words_defer_to_the_runs_table(root):
    exp = _parsed(root, "- **Epochs:** 1", "- **Epochs:** 1\n- **LoRA rank:** varies\n- **Learning rate:** see runs table")
    assert exp.stated("lora_rank") is None and exp.runs[0].value("lora_rank") == 8
    assert exp.runs[0].value("learning_rate") == 1e-5


def test_prose_sections_people_add_are_kept(root):
    exp = _parsed(root, "## Evaluation\n", "## Hypothesis\n\nRank helps.\n\n## Objective\n\nFind it.\n\n## Evaluation\n")
    assert [t for t, _ in exp.other_sections] == ["Hypothesis", "Objective"]


def test_agreeing_configuration_and_runs_table_are_accepted(root):
    exp = _parsed(root, "- **Batch size:** 4", "- **Batch size:** 4\n- **Learning rate:** 1e-5")
    assert exp.runs[0].value("learning_rate") == 1e-5


CLI_ROUND2 = [
    (["--ranks", "4,,8"], "--ranks", "empty item"),
    (["--lrs", "1e-5,"], "--lrs", "empty item"),
    (["--vary", "seed=1,,2"], "--vary seed", "empty item"),
    (["--lrs", "1e-5", "--vary", "learning_rate=1e-4"], "--vary learning_rate", "different Learning rate levels"),
    (["--ranks", "8", "--vary", "LoRA rank=8,16"], "--vary LoRA rank", "different LoRA rank levels"),
]


@pytest.mark.parametrize("extra,field,needle", CLI_ROUND2, ids=[f"cli2-{i}" for i in range(len(CLI_ROUND2))])
def test_bad_design_flags_round2(root, capsys, extra, field, needle):
    refused(capsys, ["design", str(root / "new"), *BASE, *extra], root, field, needle)
    assert not (root / "new").exists()


def test_lrs_and_vary_that_agree_are_accepted(root, capsys):
    assert main(["design", str(root / "new"), *BASE, "--lrs", "1e-5,1e-4", "--vary", "learning rate=1e-5,1e-4"]) == 0
    assert "1e-4" in (root / "new" / "experiment_summary.md").read_text()


# ---- design / scaffold / analyze check what they can see ---------------------------------------
def test_a_venv_that_is_not_there_is_said_at_scaffold(root, capsys):
    (root / "claude.local.md").write_text(f"- venv: {root}/no-venv\n")
    assert main(["scaffold", str(root / "exp"), "--dry-run"]) == 0
    out = capsys.readouterr()
    assert f"venv {root}/no-venv has no bin/activate here" in out.err + out.out


def test_hand_edited_output_dir_outside_the_experiment_is_said(root, scaffolded, capsys):
    text = scaffolded.read_text()
    line = next(l for l in text.splitlines() if l.startswith("output_dir:"))
    scaffolded.write_text(text.replace(line, f"output_dir: {root}/elsewhere/ckpts"))
    capsys.readouterr()
    assert main(["scaffold", str(root / "exp"), "--only", "torchtune"]) == 0
    out = capsys.readouterr()
    assert f"output_dir {root}/elsewhere/ckpts is outside the experiment" in out.err + out.out


@pytest.mark.parametrize("argv,field,needle", [
    (["--limit", "-1", "--samples", "x"], "--limit", "0 or more"),
    (["--out", "{root}/no/such/dir"], "--out", "parent directory of --out does not exist"),
], ids=["analyze-limit", "analyze-out-parent"])
def test_bad_analyze_flags(root, capsys, argv, field, needle):
    refused(capsys, ["analyze", str(root / "exp"), *[a.format(root=root) for a in argv]], root, field, needle)


# ---- no traceback, ever --------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["design", "--json-schema"], ["status", "--json-schema"], ["--help"],
                                  ["design", "{root}/new", *BASE, "--json"], ["status", "{root}/exp", "--json"]],
                         ids=["design-schema", "status-schema", "help", "design-json", "status-json"])
def test_a_reader_that_left_is_one_line_not_a_traceback(root, argv):
    """`ck … --json | head -c 10`: the pipe's reader is gone before ck writes (its read end closed)."""
    import os
    import subprocess
    import sys

    r, w = os.pipe()
    os.close(r)
    env = {**os.environ, "CK_LOCAL_CONFIG": str(root / "claude.local.md")}
    proc = subprocess.run([sys.executable, "-m", "cruijff_kit", *[a.format(root=root) for a in argv]], stdout=w,
                          stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    os.close(w)
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") <= 2, proc.stderr  # at most one line saying so
    assert proc.returncode == (0 if argv == ["--help"] else 2)  # argparse's help ignores a closed pipe itself


def test_a_full_disk_under_analyze_out_is_one_line(root, capsys, monkeypatch):
    import errno

    from cruijff_kit.util import fs

    def full(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fs.os, "fsync", full)
    out = root / "analysis-out"
    out.mkdir()
    rc = main(["analyze", str(root / "exp"), "--out", str(out)])
    text = capsys.readouterr().err
    assert rc == 2 and "No space left on device" in text and "Traceback" not in text
    assert not [p for p in out.iterdir() if p.suffix in (".md", ".csv") or p.name.endswith(".tmp")]
