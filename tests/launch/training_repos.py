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
