"""Fixtures for `ck launch` tests: small real training repos in tmp dirs, and the real CLI.

Every test gets its own launch state dir (CK_LAUNCH_HOME) and wandb dir, offline wandb, no API
key, and OMP_NUM_THREADS=1 (the machine is shared). Runs are real detached processes.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CK = [sys.executable, "-c", "import sys; from cruijff_kit.cli import main; sys.exit(main())"]

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


@pytest.fixture(autouse=True)
def launch_env(tmp_path, monkeypatch):
    home = tmp_path / "launch-home"
    monkeypatch.setenv("CK_LAUNCH_HOME", str(home))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-dir"))
    monkeypatch.setenv("WANDB_SILENT", "false")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    (tmp_path / "wandb-dir").mkdir()
    return home


@pytest.fixture
def plain_repo(tmp_path) -> Path:
    return write_repo(tmp_path / "plain", {"train.py": PLAIN_LOOP, "requirements.txt": "torch\nnumpy>=1.26  # arrays\n"})


@pytest.fixture
def script_repo(tmp_path):
    """A repo holding one plain-Python script (no torch: fast) under train.py."""
    def make(body: str, name: str = "train.py") -> Path:
        return write_repo(tmp_path / f"repo-{time.monotonic_ns()}", {name: textwrap.dedent(body)})
    return make


class CkResult:
    def __init__(self, proc: subprocess.CompletedProcess) -> None:
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    @property
    def json(self):
        return json.loads(self.out)

    def __repr__(self) -> str:
        return f"rc={self.rc}\nstdout={self.out}\nstderr={self.err}"


@pytest.fixture
def ck():
    """Run the real `ck` CLI in a subprocess (its own exit code, stdout, stderr)."""
    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> CkResult:
        proc = subprocess.run([*CK, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})}, cwd=REPO_ROOT)
        return CkResult(proc)
    return run


@pytest.fixture
def wait_done(ck):
    def wait(run_id: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = ck("launch", "status", run_id, "--json").json
            if not status["alive"] and status["state"] != "starting":
                return status
            time.sleep(0.2)
        raise AssertionError(f"run {run_id} still alive after {timeout} s")
    return wait
