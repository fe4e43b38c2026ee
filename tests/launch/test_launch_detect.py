"""`ck launch detect`: entry points, dependency files, framework (from the AST), flags."""
from __future__ import annotations

from .training_repos import DISTRIBUTED, HF_TRAINER, LIGHTNING, PLAIN_LOOP, write_repo


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
    assert info["suggested_command"].startswith("torchrun --nproc_per_node=NUM_GPUS run.py")


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
