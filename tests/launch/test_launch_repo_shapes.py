"""Issue 22: repos of the shapes researchers bring, detected the way a person reads them (the README's
command first, a question at a monorepo root, a dispatching CLI's own subcommand and flags, tyro
flags and the wandb switch behind --track, uv's interpreter), then started, failed on purpose and
diagnosed for real."""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from .repo_shapes import CLEANRL, LIGHTNING_TEMPLATE, MONOREPO, RL_ZOO, UV_WORKSPACE
from .training_repos import write_repo
import pytest

pytestmark = pytest.mark.slow  # real training, evaluation or training processes: `make test`, not test-fast


def _start(ck, repo: Path, command: str, *extra: str, env: dict | None = None) -> str:
    result = ck("launch", "start", repo, "--command", command, "--python", sys.executable, "--wait", "0",
                "--json", *extra, env=env)
    assert result.rc in (0, 1), result
    return result.json["run_id"]


def test_monorepo_root_asks_which_project_then_the_projects_readme_command_runs(ck, tmp_path, wait_done):
    repo = write_repo(tmp_path / "mono", MONOREPO)
    root = ck("launch", "detect", repo, "--json")
    assert root.rc == 0, root
    info = root.json
    assert info["confidence"] == "ask" and info["suggested_command"] is None and info["entry_point"] is None
    assert [s["path"] for s in info["subprojects"]] == ["projects/cpu-lm", "projects/vision"]
    assert "which one should run?" in info["question"]
    cpu_lm = next(s for s in info["subprojects"] if s["path"] == "projects/cpu-lm")
    assert cpu_lm["readme_command"]["command"] == "python train.py --batch-size 64 --workers 8"
    text = ck("launch", "detect", repo)
    assert text.rc == 0 and "which one should run?" in text.out, text

    project = repo / "projects" / "cpu-lm"
    sub = ck("launch", "detect", project, "--json").json
    assert sub["suggested_command"] == "python train.py --batch-size 64 --workers 8"  # not evaluate.py's
    assert sub["confidence"] == "readme" and sub["entry_point"] == "train.py"
    assert sub["suggestion_notes"][0] == "the README's own command (README.md:7)"

    run_id = _start(ck, project, sub["suggested_command"])
    wait_done(run_id, timeout=60)
    report = ck("launch", "diagnose", run_id, "--json").json
    assert report["failure"] == "cpu_oom", report
    assert "DefaultCPUAllocator: can't allocate memory" in report["exception"]
    assert "--batch-size 32" in report["advice"] and "--workers 4" in report["advice"]
    assert "GPU out of memory" not in report["advice"]


def test_a_module_that_only_defines_functions_is_not_guessed_and_a_quick_empty_run_is_flagged(ck, tmp_path, wait_done):
    repo = write_repo(tmp_path / "lib", {"train.py": MONOREPO["utils/train.py"]})
    info = ck("launch", "detect", repo, "--json").json
    assert info["confidence"] == "ask" and "only defines functions" in info["question"]
    assert info["entry_points"][0]["defines_only"] is True
    run_id = _start(ck, repo, "python train.py")
    final = wait_done(run_id)
    assert final["exit_code"] == 0 and final["state"] == "succeeded"
    assert any("logged no step: did the entry point train?" in w for w in final["warnings"]), final
    report = ck("launch", "diagnose", run_id, "--json").json
    assert report["failure"] == "no_progress", report
    assert "logged no step: did the entry point train?" in report["advice"]


def test_dispatching_cli_readme_command_and_flags_of_the_script_that_trains(ck, tmp_path, wait_done):
    repo = write_repo(tmp_path / "zoo", RL_ZOO)
    info = ck("launch", "detect", repo, "--json").json
    assert info["suggested_command"] == "python train.py --algo ppo --env CartPole-v1"
    assert info["entry_point"] == "train.py" and info["confidence"] == "readme"
    flags = {f["flags"][-1]: f for f in info["args"]}
    assert {"--algo", "--env", "--n-timesteps", "--track"} <= set(flags) and "--folder" not in flags
    assert all(f["where"].startswith("rl_zoo/train.py:") for f in info["args"])
    assert info["wandb"]["enabled_by_default"] is False and info["wandb"]["enable"] == "--track"
    assert info["wandb"]["project_switch"] == "--wandb-project-name P"

    cli = ck("launch", "detect", repo, "--entry", "rl_zoo/cli.py", "--json").json
    assert [d["name"] for d in cli["subcommands"]] == ["train", "enjoy"] and cli["subcommand"] == "train"
    assert cli["suggested_command"] == "python rl_zoo/cli.py train"
    assert "--folder" not in {f["flags"][-1] for f in cli["args"]}  # enjoy's flags are not train's
    assert "--algo" in {f["flags"][-1] for f in cli["args"]}

    # (argparse itself accepts an abbreviation such as --n-timestep; a real typo is refused)
    run_id = _start(ck, repo, "python train.py --algo ppo --env CartPole-v1 --n-timesteeps 100")
    wait_done(run_id)
    report = ck("launch", "diagnose", run_id, "--json").json
    assert report["failure"] == "bad_args" and report["exit_code"] == 2, report
    assert report["exception"] == "train.py: error: unrecognized arguments: --n-timesteeps 100"
    assert "did you mean --n-timesteps?" in report["advice"]


def test_tyro_flags_wandb_behind_track_and_a_missing_tyro_diagnosed(ck, tmp_path, wait_done):
    repo = write_repo(tmp_path / "cleanrl", CLEANRL)
    info = ck("launch", "detect", repo, "--json").json
    assert info["entry_point"] == "cleanrl/ppo.py"  # the README's, not c51.py alphabetically
    assert info["suggested_command"] == ("poetry run python cleanrl/ppo.py --seed 1 --env-id CartPole-v0 "
                                         "--total-timesteps 50000")
    flags = {f["flags"][-1]: f for f in info["args"]}
    assert flags["--learning-rate"]["default"] == 2.5e-4 and flags["--env-id"]["where"] == "cleanrl/ppo.py:16"
    assert flags["--track"]["action"] == "store_true"
    assert info["wandb"]["used"] is True and info["wandb"]["enabled_by_default"] is False
    assert info["wandb"]["enable"] == "--track"
    assert info["wandb"]["project"]["value"] == "cleanRL"
    assert info["wandb"]["project_switch"] == "--wandb-project-name P"

    started = ck("launch", "start", repo, "--command", "python cleanrl/ppo.py --seed 1", "--python", sys.executable,
                 "--wandb-project", "myproj", "--wait", "0", "--json").json  # this interpreter has no tyro
    assert "wandb is off by default in this repo: add --track to the command to log" in started["warnings"]
    assert any("add --wandb-project-name myproj to the command instead" in w for w in started["warnings"])
    run_id = started["run_id"]
    wait_done(run_id)
    report = ck("launch", "diagnose", run_id, "--json").json
    assert report["failure"] == "dependency", report
    assert report["exception"] == "ModuleNotFoundError: No module named 'tyro'"
    assert "-m pip install tyro" in report["advice"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_uv_workspace_console_script_interpreter_and_a_refused_mlflow(ck, tmp_path, wait_done):
    from cruijff_kit.launch import env as envmod

    repo = write_repo(tmp_path / "ws", UV_WORKSPACE)
    info = ck("launch", "detect", repo, "--json").json
    assert info["suggested_command"] == "uv run train-model --epochs 2"
    assert info["entry_point"] == "packages/trainer/src/trainer/cli.py"
    assert {s["name"]: s["member"] for s in info["console_scripts"]} == {"train-model": "packages/trainer"}
    # uv's interpreter: the workspace root's venv, also for a member
    member = repo / "packages" / "trainer"
    assert envmod._project_interpreter("uv", member) == str(repo.resolve() / ".venv" / "bin" / "python")
    venv = repo / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    os.symlink(sys.executable, venv / "bin" / "python")
    run = envmod.runner(member, None, None)
    assert run["kind"] == "venv" and run["python"] == str(venv / "bin" / "python")
    assert "uv workspace" in run["source"]

    port = _free_port()
    run_id = _start(ck, repo, "python packages/trainer/src/trainer/cli.py --epochs 2",
                    env={"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"})
    wait_done(run_id)
    report = ck("launch", "diagnose", run_id, "--json").json
    assert report["failure"] == "service_unreachable", report
    assert f"127.0.0.1:{port} (MLflow tracking server)" in report["advice"]
    assert "MLFLOW_TRACKING_URI=file:./mlruns" in report["advice"] and "HF_HUB_OFFLINE" not in report["advice"]


def test_lightning_template_readme_command_and_its_missing_hydra(ck, tmp_path, wait_done):
    repo = write_repo(tmp_path / "tmpl", LIGHTNING_TEMPLATE)
    info = ck("launch", "detect", repo, "--json").json
    assert info["suggested_command"] == "python src/train.py trainer=cpu"
    assert info["entry_point"] == "src/train.py" and info["framework"] == "lightning"
    assert info["readme_commands"][1]["command"] == "python src/train.py trainer=gpu"
    run_id = _start(ck, repo, info["suggested_command"])
    wait_done(run_id)
    report = ck("launch", "diagnose", run_id, "--json").json
    assert report["failure"] == "dependency", report
    assert "No module named 'hydra'" in report["exception"]
    assert "-m pip install hydra-core" in report["advice"]  # the distribution, not the import name


def test_transformers_api_drift_names_the_installed_version(ck, tmp_path, wait_done):
    """Real transformers (5.x here) rejects evaluation_strategy: the symbol, the installed version, the pin."""
    import importlib.metadata

    repo = write_repo(tmp_path / "hf", {"train.py": (
        "from transformers import TrainingArguments\n\n"
        "args = TrainingArguments(output_dir='out', evaluation_strategy='epoch')\n")})
    run_id = _start(ck, repo, "python train.py", env={"HF_HUB_OFFLINE": "1"})
    wait_done(run_id, timeout=120)
    report = ck("launch", "diagnose", run_id, "--json").json
    assert report["failure"] == "api_drift", report
    version = importlib.metadata.version("transformers")
    assert f"the installed transformers {version}" in report["advice"]
    assert "transformers<4.46" in report["advice"] and "eval_strategy" in report["advice"]


CLICK_GROUP = '''\
import click


@click.group()
@click.option("--seed", type=int, default=0)
def cli(seed):
    pass


@cli.command()
@click.option("--epochs", type=int, default=3)
@click.option("--wandb", is_flag=True)
def train(epochs, wandb):
    if wandb:
        import wandb as wb
        wb.init(project="p")


@cli.command()
@click.option("--ckpt", required=True)
def evaluate(ckpt):
    pass


if __name__ == "__main__":
    cli()
'''

TYPER_APP = '''\
import typer

app = typer.Typer()


@app.command()
def fit(data: str = typer.Argument(...), learning_rate: float = 1e-3, use_wandb: bool = False):
    pass


@app.command()
def predict(model: str = typer.Option("m.pt", "--model", "-m")):
    pass


if __name__ == "__main__":
    app()
'''


def test_click_and_typer_subcommands_with_their_own_flags(ck, tmp_path):
    repo = write_repo(tmp_path / "clk", {"main.py": CLICK_GROUP})
    info = ck("launch", "detect", repo, "--json").json
    assert [d["name"] for d in info["subcommands"]] == ["train", "evaluate"] and info["subcommand"] == "train"
    assert info["suggested_command"] == "python main.py train"
    flags = {f["flags"][0]: f for f in info["args"]}
    assert set(flags) == {"--seed", "--epochs", "--wandb"}  # evaluate's --ckpt belongs to evaluate
    assert flags["--epochs"]["where"] == "main.py:11" and flags["--wandb"]["action"] == "store_true"
    assert info["wandb"]["enabled_by_default"] is False and info["wandb"]["enable"] == "--wandb"

    repo = write_repo(tmp_path / "typ", {"train.py": TYPER_APP})
    info = ck("launch", "detect", repo, "--json").json
    assert info["subcommand"] == "fit" and info["suggested_command"] == "python train.py fit DATA"
    flags = {f["flags"][0]: f for f in info["args"]}
    assert flags["--learning-rate"]["default"] == 1e-3 and flags["--use-wandb"]["action"] == "store_true"
    assert "--model" not in flags


def test_a_project_at_the_root_with_example_projects_is_not_a_monorepo(ck, tmp_path):
    from .training_repos import PLAIN_LOOP

    repo = write_repo(tmp_path / "proj", {
        "train.py": PLAIN_LOOP, "requirements.txt": "torch\n",
        "examples/a/requirements.txt": "torch\n", "examples/a/run.py": "print(1)\n",
        "examples/b/requirements.txt": "torch\n", "examples/b/run.py": "print(2)\n"})
    info = ck("launch", "detect", repo, "--json").json
    assert info["entry_point"] == "train.py" and info["question"] is None
    assert [s["path"] for s in info["subprojects"]] == ["examples/a", "examples/b"]
