"""`ck launch detect`: entry points, dependency files, framework (from the AST), flags."""
from __future__ import annotations

import os
import sys

from .training_repos import (CONSOLE_SCRIPT_LAYOUT, DISTRIBUTED, HF_TRAINER, HYDRA_SRC_LAYOUT, LIGHTNING,
                             LIGHTNING_CLI, NANO_STYLE_LAYOUT, PLAIN_LOOP, write_repo)


def test_plain_loop_repo(ck, plain_repo):
    result = ck("launch", "detect", plain_repo, "--json")
    assert result.rc == 0, result
    info = result.json
    assert info["entry_point"] == "train.py"
    assert info["framework"] == "pytorch"
    assert info["install_order"] == ["requirements.txt"]
    assert info["dependencies"][0]["packages"] == ["torch", "numpy"]
    assert info["wandb"]["used"] is False
    assert info["distributed"]["used"] is False
    flags = {f["dest"]: f for f in info["args"]}
    assert flags["epochs"]["default"] == 2 and flags["epochs"]["type"] == "int"
    assert flags["batch_size"]["flags"] == ["--batch-size"]
    assert flags["data"]["required"] is True
    # required flags appear in the suggestion as placeholders
    assert info["suggested_command"] == "python train.py --data DATA"


def test_hf_trainer_and_dependency_priority(ck, tmp_path):
    repo = write_repo(tmp_path / "hf", {
        "finetune.py": HF_TRAINER,
        "environment.yml": "name: x\ndependencies:\n  - python=3.11\n  - pip:\n    - accelerate\n",
        "pyproject.toml": '[project]\nname = "x"\nversion = "0"\ndependencies = ["transformers>=4", "datasets"]\n',
        "requirements.txt": "transformers\n",
        "setup.py": "from setuptools import setup\nsetup(name='x', install_requires=['peft'])\n",
        "scripts/plot.py": "print('no guard, not an entry point')\n",
    })
    info = ck("launch", "detect", repo, "--json").json
    assert info["entry_point"] == "finetune.py"  # found by its __main__ guard
    assert info["framework"] == "hf_trainer"
    assert any("TrainingArguments" in e for e in info["framework_evidence"]["hf_trainer"])
    assert info["install_order"] == ["requirements.txt", "pyproject.toml", "setup.py", "environment.yml"]
    packages = {d["file"]: d["packages"] for d in info["dependencies"]}
    assert packages["pyproject.toml"] == ["transformers", "datasets"]
    assert packages["setup.py"] == ["peft"]
    assert packages["environment.yml"] == ["python", "accelerate"]
    assert {"--model_name", "--max_len"} <= {f["flags"][0] for f in info["args"]}
    assert [e["path"] for e in info["entry_points"]] == ["finetune.py"]


def test_lightning_from_ast_not_strings(ck, tmp_path):
    repo = write_repo(tmp_path / "lit", {
        "main.py": LIGHTNING,
        # mentions of frameworks in strings/comments must not count
        "train.py": '# uses transformers.Trainer? no\nprint("Trainer(report_to=wandb) keras .fit(")\n',
    })
    info = ck("launch", "detect", repo, "--json").json
    assert info["entry_point"] == "main.py"  # the file with training code beats the conventional name
    assert info["framework"] == "lightning"
    by_path = {e["path"]: e["framework"] for e in info["entry_points"]}
    assert by_path == {"main.py": "lightning", "train.py": None}
    assert info["wandb"]["used"] is False


def test_loop_in_imported_module_and_distributed(ck, tmp_path):
    repo = write_repo(tmp_path / "dist", {
        "run.py": "from trainer import main\n\nif __name__ == '__main__':\n    main()\n",
        "trainer.py": DISTRIBUTED,
    })
    info = ck("launch", "detect", repo, "--json").json
    assert info["entry_point"] == "run.py"
    assert info["framework"] == "pytorch"
    assert info["analyzed_files"] == ["run.py", "trainer.py"]
    assert info["distributed"]["used"] is True
    assert info["suggested_command"] == "python run.py"  # no GPU here: no torchrun (test_torchrun_only_where…)


def test_existing_wandb_is_reported(ck, tmp_path):
    repo = write_repo(tmp_path / "wb", {"train.py": "import wandb\n" + PLAIN_LOOP})
    info = ck("launch", "detect", repo, "--json").json
    assert info["wandb"]["used"] is True
    assert info["wandb"]["evidence"] == ["train.py:1 import wandb"]


def test_bad_input_exits_2(ck, tmp_path):
    missing = ck("launch", "detect", tmp_path / "nope", "--json")
    assert missing.rc == 2
    assert "not a directory" in missing.json["error"]

    empty = write_repo(tmp_path / "empty", {"utils.py": "def f():\n    return 1\n", "README.md": "hi\n"})
    result = ck("launch", "detect", empty)
    assert result.rc == 2
    assert "no entry point found" in result.err and "train.py" in result.err


# --------------------------------------------------------------------------- real layouts (issue 11)

def test_hydra_src_layout_picks_src_train_and_its_switches(ck, tmp_path):
    repo = write_repo(tmp_path / "lht", HYDRA_SRC_LAYOUT)
    info = ck("launch", "detect", repo, "--json").json
    assert info["entry_point"] == "src/train.py"  # not src/models/mnist_module.py (builds a module, trains nothing)
    assert info["framework"] == "lightning"
    by_path = {e["path"]: e for e in info["entry_points"]}
    assert by_path["src/train.py"]["hydra"] and by_path["src/train.py"]["console_script"] == "train_command"
    assert info["hydra"]["config_dir"] == "configs" and info["hydra"]["config_name"] == "train.yaml"
    assert info["hydra"]["groups"] == {"logger": ["csv", "wandb"], "model": ["mnist"],
                                       "trainer": ["cpu", "default", "gpu"]}
    assert [s["name"] for s in info["console_scripts"]] == ["train_command", "eval_command"]
    assert info["suggested_command"] == "python src/train.py trainer=cpu"  # no GPU on this machine
    wb = info["wandb"]
    assert wb["enabled_by_default"] is False and wb["enable"] == "logger=wandb"
    assert wb["project"]["value"] == "my-template" and wb["project"]["where"] == "configs/logger/wandb.yaml:5"
    assert wb["project_switch"] == "logger.wandb.project=P"
    text = ck("launch", "detect", repo).out
    assert "OFF by default; turn it on with logger=wandb" in text and "use logger.wandb.project=P" in text


def test_console_script_without_main_guard(ck, tmp_path):
    repo = write_repo(tmp_path / "cs", CONSOLE_SCRIPT_LAYOUT)
    info = ck("launch", "detect", repo, "--json").json
    assert info["entry_point"] == "src/tinytrain/cli.py"
    assert info["console_scripts"] == [{"name": "tinytrain-fit", "target": "tinytrain.cli:main",
                                        "file": "src/tinytrain/cli.py", "where": "pyproject.toml [project.scripts]"}]
    assert info["suggested_command"] == "tinytrain-fit"
    assert {f["dest"] for f in info["args"]} == {"steps"}


def test_configurator_repo_flags_wandb_off_and_cpu(ck, tmp_path):
    repo = write_repo(tmp_path / "nano", NANO_STYLE_LAYOUT)
    info = ck("launch", "detect", repo, "--json").json
    assert info["entry_point"] == "train.py" and info["framework"] == "pytorch"
    flags = {f["dest"]: f for f in info["args"]}
    assert flags["gradient_accumulation_steps"]["default"] == 4 and flags["learning_rate"]["style"] == "key=value"
    assert "config_keys" not in flags and "ddp" not in flags  # assigned after the configurator runs
    wb = info["wandb"]
    assert wb["used"] is True and wb["enabled_by_default"] is False and wb["enable"] == "--wandb_log=True"
    assert wb["project"]["value"] == "owt" and wb["project_switch"] == "--wandb_project=P"
    # no GPU here: the cuda default is switched off, and no torchrun for DDP-capable code
    assert info["suggested_command"] == "python train.py --device=cpu"
    assert info["distributed"]["used"] is True
    deps = {d["import"]: d["conditional"] for d in info["inferred_dependencies"]}
    assert deps == {"torch": False, "wandb": True, "transformers": True}


def test_lightning_cli_gets_fit(ck, tmp_path):
    repo = write_repo(tmp_path / "cli", {"main.py": LIGHTNING_CLI})
    info = ck("launch", "detect", repo, "--json").json
    assert info["suggested_command"] == "python main.py fit"
    assert info["lightning_cli"] == "main.py:19"


def test_torchrun_only_where_there_are_gpus(ck, tmp_path):
    repo = write_repo(tmp_path / "dist", {"train.py": DISTRIBUTED})
    assert ck("launch", "detect", repo, "--json").json["suggested_command"] == "python train.py"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\nprintf '0\\n1\\n'\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    info = ck("launch", "detect", repo, "--json", env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}).json
    assert info["gpus_here"] == 2
    assert info["suggested_command"] == "torchrun --standalone --nproc_per_node=2 train.py"


def test_start_says_when_the_repo_sets_the_wandb_project_itself(ck, tmp_path, wait_done):
    repo = write_repo(tmp_path / "nano", NANO_STYLE_LAYOUT)
    started = ck("launch", "start", repo, "--command", "python train.py --device=cpu", "--python", sys.executable,
                 "--wandb-project", "mine", "--wait", "0", "--json")
    assert started.rc == 0, started
    warnings = started.json["warnings"]
    assert any("--wandb-project mine is ignored" in w and "--wandb_project=mine" in w for w in warnings), warnings
    assert any("add --wandb_log=True" in w for w in warnings), warnings
    final = wait_done(started.json["run_id"], timeout=60)
    assert final["state"] == "succeeded", ck("launch", "logs", started.json["run_id"]).out
