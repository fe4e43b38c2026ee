"""Small training repos the launch tests write into tmp dirs (sources kept here, not on disk)."""
from __future__ import annotations

from pathlib import Path

PLAIN_LOOP = '''\
"""A plain PyTorch loop on CPU."""
import argparse

import torch
from torch import nn


def get_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=16, help="examples per step")
    parser.add_argument("--data", required=True)
    return parser.parse_args()


def main():
    args = get_args()
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    x = torch.randn(64, 4)
    y = x.sum(dim=1, keepdim=True)
    for epoch in range(args.epochs):
        model.train()
        for i in range(0, 64, args.batch_size):
            loss = ((model(x[i:i + args.batch_size]) - y[i:i + args.batch_size]) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            val_loss = ((model(x) - y) ** 2).mean().item()
        print(f"epoch {epoch} loss {loss.item():.4f} val_loss {val_loss:.4f}")


if __name__ == "__main__":
    main()
'''

HF_TRAINER = '''\
from dataclasses import dataclass, field

from transformers import AutoModelForCausalLM, HfArgumentParser, Trainer, TrainingArguments


@dataclass
class ModelArguments:
    model_name: str = field(default="gpt2")
    max_len: int = 128


def main():
    (margs,) = HfArgumentParser((ModelArguments,)).parse_args_into_dataclasses()
    model = AutoModelForCausalLM.from_pretrained(margs.model_name)
    args = TrainingArguments(
        output_dir="out",
        num_train_epochs=1,
        per_device_train_batch_size=8
    )
    Trainer(model=model, args=args).train()


if __name__ == "__main__":
    main()
'''

LIGHTNING = '''\
import lightning as L
import torch


class LitModel(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())


if __name__ == "__main__":
    trainer = L.Trainer(max_epochs=3, accelerator="cpu")
    trainer.fit(LitModel())
'''

DISTRIBUTED = '''\
import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP


def main():
    dist.init_process_group("gloo")
    model = DDP(nn.Linear(4, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step in range(10):
        loss = model(torch.randn(8, 4)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
'''


def write_repo(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


# --------------------------------------------------------------------------- real layouts
# Shaped like ashleve/lightning-hydra-template: src/ package, Hydra configs one level up,
# console scripts in setup.py, a module whose __main__ block only builds an object.
HYDRA_SRC_LAYOUT = {
    "setup.py": (
        "from setuptools import find_packages, setup\n\n"
        "setup(\n    name=\"src\",\n    install_requires=[\"lightning\", \"hydra-core\"],\n"
        "    packages=find_packages(),\n    entry_points={\n        \"console_scripts\": [\n"
        "            \"train_command = src.train:main\",\n            \"eval_command = src.eval:main\",\n"
        "        ]\n    },\n)\n"),
    "src/__init__.py": "",
    "src/train.py": '''\
import hydra
import lightning as L
from lightning import LightningModule, Trainer
from omegaconf import DictConfig


def train(cfg: DictConfig):
    model: LightningModule = hydra.utils.instantiate(cfg.model)
    trainer: Trainer = hydra.utils.instantiate(cfg.trainer, logger=hydra.utils.instantiate(cfg.get("logger")))
    trainer.fit(model=model)


@hydra.main(version_base="1.3", config_path="../configs", config_name="train.yaml")
def main(cfg: DictConfig) -> None:
    train(cfg)


if __name__ == "__main__":
    main()
''',
    "src/eval.py": '''\
import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="../configs", config_name="eval.yaml")
def main(cfg: DictConfig) -> None:
    print(cfg)


if __name__ == "__main__":
    main()
''',
    "src/models/__init__.py": "",
    "src/models/mnist_module.py": '''\
import torch
from lightning import LightningModule


class MNISTLitModule(LightningModule):
    def __init__(self, lr: float = 1e-3):
        super().__init__()
        self.net = torch.nn.Linear(784, 10)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.cross_entropy(self.net(x.flatten(1)), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


if __name__ == "__main__":
    _ = MNISTLitModule()
''',
    "configs/__init__.py": "",
    "configs/train.yaml": ("# @package _global_\ndefaults:\n  - _self_\n  - model: mnist\n  - logger: null\n"
                           "  - trainer: default\n\ntask_name: \"train\"\n"),
    "configs/eval.yaml": "defaults:\n  - _self_\n  - model: mnist\n",
    "configs/model/mnist.yaml": "_target_: src.models.mnist_module.MNISTLitModule\nlr: 0.001\n",
    "configs/trainer/default.yaml": "_target_: lightning.pytorch.trainer.Trainer\nmax_epochs: 10\naccelerator: gpu\n",
    "configs/trainer/cpu.yaml": "defaults:\n  - default\n\naccelerator: cpu\ndevices: 1\n",
    "configs/trainer/gpu.yaml": "defaults:\n  - default\n\naccelerator: gpu\ndevices: 1\n",
    "configs/logger/csv.yaml": "csv:\n  _target_: lightning.pytorch.loggers.csv_logs.CSVLogger\n  save_dir: out\n",
    "configs/logger/wandb.yaml": ("wandb:\n  _target_: lightning.pytorch.loggers.wandb.WandbLogger\n"
                                  "  save_dir: out\n  offline: False\n  project: \"my-template\"\n  log_model: False\n"),
}

# An installable package in src/ whose training starts from a [project.scripts] entry, no __main__ guard.
CONSOLE_SCRIPT_LAYOUT = {
    "pyproject.toml": ('[project]\nname = "tinytrain"\nversion = "0.1"\ndependencies = ["torch"]\n\n'
                       '[project.scripts]\ntinytrain-fit = "tinytrain.cli:main"\n'),
    "src/tinytrain/__init__.py": "",
    "src/tinytrain/cli.py": '''\
import argparse

import torch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(args.steps):
        loss = model(torch.ones(4, 2)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
''',
    "scripts/plot_results.py": "import sys\n\nif __name__ == '__main__':\n    print(sys.argv)\n",
}

# nanoGPT's shape: module globals overridden by `exec(open('configurator.py').read())` with
# `--key=value` words; wandb imported only when wandb_log is on; gradient accumulation over
# micro-steps with the loss divided before backward; DDP only when RANK is set.
CONFIGURATOR = '''\
import sys
from ast import literal_eval

for arg in sys.argv[1:]:
    assert arg.startswith("--") and "=" in arg, f"use --key=value, not {arg!r}"
    key, val = arg[2:].split("=", 1)
    if key not in globals():
        raise ValueError(f"Unknown config key: {key}")
    try:
        attempt = literal_eval(val)
    except (SyntaxError, ValueError):
        attempt = val
    assert type(attempt) == type(globals()[key]), f"{key}: {type(attempt)} != {type(globals()[key])}"
    globals()[key] = attempt
'''
NANO_STYLE_TRAIN = '''\
import os

import torch
from torch.distributed import init_process_group

from model import TinyLM

out_dir = "out"
wandb_log = False  # disabled by default
wandb_project = "owt"
gradient_accumulation_steps = 2 * 2
batch_size = 4
learning_rate = 6e-4
max_iters = 3
device = "cuda"
backend = "nccl"
config_keys = [k for k, v in globals().items() if not k.startswith("_") and isinstance(v, (int, float, bool, str))]
exec(open("configurator.py").read())
config = {k: globals()[k] for k in config_keys}

ddp = int(os.environ.get("RANK", -1)) != -1
if ddp:
    init_process_group(backend=backend)
torch.manual_seed(0)
model = TinyLM().to(device)
optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
if wandb_log:
    import wandb
    wandb.init(project=wandb_project, config=config)
for iter_num in range(max_iters):
    for micro_step in range(gradient_accumulation_steps):
        x = torch.randn(batch_size, 8, device=device)
        loss = model(x)
        loss = loss / gradient_accumulation_steps
        loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    print(f"iter {iter_num}: loss {loss.item() * gradient_accumulation_steps:.4f}", flush=True)
'''
NANO_STYLE_MODEL = '''\
import torch


class TinyLM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(8, 1)

    def forward(self, x):
        return self.proj(x).pow(2).mean()

    @classmethod
    def from_pretrained(cls, name):
        from transformers import GPT2LMHeadModel  # only for init_from=gpt2*
        return GPT2LMHeadModel.from_pretrained(name)
'''
NANO_STYLE_LAYOUT = {"train.py": NANO_STYLE_TRAIN, "model.py": NANO_STYLE_MODEL, "configurator.py": CONFIGURATOR}

LIGHTNING_CLI = '''\
import lightning as L
import torch
from lightning.pytorch.cli import LightningCLI


class Model(L.LightningModule):
    def __init__(self, lr: float = 0.01):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def cli_main():
    LightningCLI(Model)


if __name__ == "__main__":
    cli_main()
'''
