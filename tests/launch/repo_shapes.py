"""Repos of the shapes researchers bring (issue 22): a monorepo, a dispatching CLI (rl-baselines3-zoo),
tyro dataclass arguments (cleanrl), a uv workspace with a console script and MLflow, a Lightning +
Hydra template (HYDRA_SRC_LAYOUT in training_repos.py), each written into a tmp dir by the tests."""
from __future__ import annotations

from .training_repos import HYDRA_SRC_LAYOUT

# --------------------------------------------------------------------------- monorepo
# Two projects with their own dependency files; a shared utils/train.py that only defines functions
# (what detect used to suggest: it "succeeded" in 2 s having trained nothing).
MONOREPO = {
    "README.md": "# lab-monorepo\n\nShared code and our projects. See each project's README.\n",
    "utils/train.py": ("def train_one_epoch(model, data):\n    for batch in data:\n        model(batch)\n\n\n"
                       "def evaluate(model, data):\n    return 0.0\n"),
    "projects/cpu-lm/pyproject.toml": '[project]\nname = "cpu-lm"\nversion = "0.1"\ndependencies = ["torch"]\n',
    "projects/cpu-lm/README.md": ("# cpu-lm\n\n## Training\n\n```bash\npip install -e .\n"
                                  "python train.py --batch-size 64 --workers 8\n```\n\n## Evaluation\n\n"
                                  "```bash\npython evaluate.py --ckpt out/last.pt\n```\n"),
    "projects/cpu-lm/train.py": '''\
import argparse

import torch


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=10**15)
    args = p.parse_args()
    print("building the token buffer", flush=True)
    buffer = torch.empty(args.seq_len)  # far more than any host has: torch's CPU allocator refuses
    print(buffer.shape)


if __name__ == "__main__":
    main()
''',
    "projects/cpu-lm/evaluate.py": "import sys\n\nif __name__ == '__main__':\n    print(sys.argv)\n",
    "projects/vision/requirements.txt": "torch\ntorchvision\n",
    "projects/vision/main.py": "import argparse\n\nif __name__ == '__main__':\n    argparse.ArgumentParser().parse_args()\n",
}

# --------------------------------------------------------------------------- dispatching CLI (rl_zoo3's shape)
RL_ZOO = {
    "README.md": ("# RL Zoo\n\n## Installation\n\n```\npip install -e .\n```\n\n## Train an Agent\n\n"
                  "The hyperparameters for each environment are defined in `hyperparameters/algo_name.yml`.\n\n"
                  "```\npython train.py --algo ppo --env CartPole-v1\n```\n\n## Enjoy a Trained Agent\n\n"
                  "```\npython enjoy.py --algo ppo --env CartPole-v1 --folder logs/\n```\n"),
    "pyproject.toml": ('[project]\nname = "rl_zoo"\nversion = "0.1"\n\n[project.scripts]\n'
                       'rl_zoo = "rl_zoo.cli:main"\n'),
    "rl_zoo/__init__.py": "",
    "rl_zoo/cli.py": '''\
import sys

from rl_zoo.enjoy import enjoy
from rl_zoo.train import train


def main():
    script_name = sys.argv[1]
    del sys.argv[1]
    known_scripts = {"train": train, "enjoy": enjoy}
    if script_name not in known_scripts.keys():
        raise ValueError(f"The script {script_name} is unknown, please use one of {known_scripts.keys()}")
    known_scripts[script_name]()


if __name__ == "__main__":
    main()
''',
    "rl_zoo/train.py": '''\
import argparse


def train():
    parser = argparse.ArgumentParser()
    parser.add_argument("--algo", type=str, default="ppo", choices=["ppo", "a2c", "dqn"])
    parser.add_argument("--env", type=str, default="CartPole-v1")
    parser.add_argument("-n", "--n-timesteps", type=int, default=-1)
    parser.add_argument("--track", action="store_true", default=False)
    parser.add_argument("--wandb-project-name", type=str, default="sb3")
    args = parser.parse_args()
    if args.track:
        import wandb
        wandb.init(project=args.wandb_project_name)
    for step in range(3):
        print(f"step {step} reward {step * 1.5}")
''',
    "rl_zoo/enjoy.py": '''\
import argparse


def enjoy():
    parser = argparse.ArgumentParser()
    parser.add_argument("--algo", type=str, default="ppo")
    parser.add_argument("--env", type=str, default="CartPole-v1")
    parser.add_argument("-f", "--folder", type=str, default="rl-trained-agents")
    parser.add_argument("--no-render", action="store_true", default=False)
    parser.parse_args()
''',
    "train.py": "from rl_zoo.train import train\n\nif __name__ == \"__main__\":\n    train()\n",
    "enjoy.py": "from rl_zoo.enjoy import enjoy\n\nif __name__ == \"__main__\":\n    enjoy()\n",
}

# --------------------------------------------------------------------------- tyro dataclass arguments (cleanrl's shape)
_CLEANRL_SCRIPT = '''\
import os
import time
from dataclasses import dataclass

import tyro


@dataclass
class Args:
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """the name of this experiment"""
    seed: int = 1
    track: bool = False
    """if toggled, this experiment will be tracked with Weights and Biases"""
    wandb_project_name: str = "cleanRL"
    env_id: str = "CartPole-v1"
    total_timesteps: int = 500000
    learning_rate: float = 2.5e-4


if __name__ == "__main__":
    args = tyro.cli(Args)
    run_name = f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"
    if args.track:
        import wandb

        wandb.init(project=args.wandb_project_name, name=run_name)
    for step in range(3):
        print(f"global_step={step}, episodic_return={step}")
'''
CLEANRL = {
    "README.md": ("# CleanRL\n\n## Get started\n\n```bash\npoetry install\n"
                  "poetry run python cleanrl/ppo.py \\\n    --seed 1 \\\n    --env-id CartPole-v0 \\\n"
                  "    --total-timesteps 50000\n```\n"),
    "pyproject.toml": '[tool.poetry]\nname = "cleanrl"\nversion = "0.1"\n',
    "cleanrl/c51.py": _CLEANRL_SCRIPT,
    "cleanrl/ppo.py": _CLEANRL_SCRIPT,
}

# --------------------------------------------------------------------------- uv workspace, console script, MLflow
UV_WORKSPACE = {
    "pyproject.toml": ('[project]\nname = "ws"\nversion = "0.1"\n\n[tool.uv.workspace]\nmembers = ["packages/*"]\n'),
    "uv.lock": "version = 1\n",
    "README.md": ("# ws\n\n```bash\nuv sync\nmlflow server --port 5000 &\nuv run train-model --epochs 2\n```\n"),
    "packages/trainer/pyproject.toml": ('[project]\nname = "trainer"\nversion = "0.1"\n\n[project.scripts]\n'
                                        'train-model = "trainer.cli:main"\n'),
    "packages/trainer/src/trainer/__init__.py": "",
    "packages/trainer/src/trainer/cli.py": '''\
import argparse
import os
import urllib.request


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=1)
    args = p.parse_args()
    uri = os.environ.get("MLFLOW_TRACKING_URI", "http://localhost:5000")
    url = f"{uri}/api/2.0/mlflow/experiments/get-by-name?experiment_name=demo"
    try:  # what mlflow's REST client does before the first epoch
        urllib.request.urlopen(url, timeout=5)
    except OSError as e:
        raise RuntimeError(f"API request to {url} failed with exception {e}") from None
    for epoch in range(args.epochs):
        print(f"epoch {epoch} loss 0.5")


if __name__ == "__main__":
    main()
''',
    "packages/plots/pyproject.toml": '[project]\nname = "plots"\nversion = "0.1"\n',
    "packages/plots/plots.py": "def plot(x):\n    return x\n",
}

LIGHTNING_TEMPLATE = {
    **HYDRA_SRC_LAYOUT,
    "README.md": ("# Lightning-Hydra-Template\n\n## How to run\n\n```bash\npip install -r requirements.txt\n"
                  "```\n\nTrain model with default configuration\n\n```bash\n# train on CPU\n"
                  "python src/train.py trainer=cpu\n\n# train on GPU\npython src/train.py trainer=gpu\n```\n"),
    "requirements.txt": "lightning\nhydra-core\n",
}
