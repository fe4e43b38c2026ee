"""readme.py: the commands a README gives, as a person reads them (fences, prompts, reST blocks,
continued lines, launchers), resolved to what they run; setup and evaluation lines are not training."""
from __future__ import annotations

from cruijff_kit.launch.readme import commands

from .training_repos import write_repo


def test_markdown_prompts_launchers_and_continuations(tmp_path):
    repo = write_repo(tmp_path / "r", {
        "README.md": (
            "# Proj\n\nInstall:\n\n```bash\n$ pip install -r requirements.txt\n$ python setup.py develop\n```\n\n"
            "## Evaluate\n\n```\npython eval.py --ckpt x.pt\n```\n\n"
            "## Multi-GPU training\n\n```shell\nCUDA_VISIBLE_DEVICES=0,1 torchrun --nproc_per_node=2 \\\n"
            "    tools/train.py --cfg configs/a.yaml  # two GPUs\n```\n\n"
            "    $ accelerate launch --num_processes 2 tools/train.py --cfg configs/b.yaml\n"),
        "eval.py": "", "tools/train.py": "",
    })
    found = commands(repo)
    assert [c["command"] for c in found] == [
        "CUDA_VISIBLE_DEVICES=0,1 torchrun --nproc_per_node=2 tools/train.py --cfg configs/a.yaml",
        "accelerate launch --num_processes 2 tools/train.py --cfg configs/b.yaml",
        "python eval.py --ckpt x.pt",
    ]
    first = found[0]
    assert first["script"] == "tools/train.py" and first["runner"] == "torchrun" and first["line"] == 19
    assert first["training"] is True and found[-1]["training"] is False


def test_rst_literal_blocks_python_m_and_console_scripts(tmp_path):
    repo = write_repo(tmp_path / "r", {
        "README.rst": ("Proj\n====\n\nUsage\n-----\n\nTrain a model::\n\n    python -m proj.train --epochs 3\n\n"
                       "Or with the installed command::\n\n    proj-fit --epochs 3\n\nThat is all.\n"),
        "proj/__init__.py": "", "proj/train.py": "", "proj/cli.py": "",
    })
    found = commands(repo, {"proj-fit": "proj/cli.py"})
    assert [(c["command"], c["script"]) for c in found] == [
        ("python -m proj.train --epochs 3", "proj/train.py"), ("proj-fit --epochs 3", "proj/cli.py")]
    assert found[0]["module"] == "proj.train" and found[1]["console_script"] == "proj-fit"


def test_commands_that_run_nothing_in_the_repo_are_ignored(tmp_path):
    repo = write_repo(tmp_path / "r", {"README.md": "```\npython missing.py\npython -c 'print(1)'\ngit clone x\n```\n"})
    assert commands(repo) == []
