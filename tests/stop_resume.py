"""What the torchtune and TRL stop/resume tests share: the generated finetune.slurm run under bash
with `ck run`'s overrides, the logged values, and the epoch-by-epoch weight comparison."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Callable

from cruijff_kit.run.recovery import ENV_VAR, format_overrides
from cruijff_kit.state.loss_logs import log_files, read_log_values


def run_job(run_dir: Path, overrides: dict[str, str] | None = None, *, timeout: int) -> None:
    """The generated finetune.slurm under bash, the overrides passed as `ck run` passes them."""
    env = {**os.environ, ENV_VAR: format_overrides(overrides or {})}
    proc = subprocess.run(["bash", "finetune.slurm"], cwd=run_dir, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]


def logged(out: Path) -> dict[int, dict[str, float]]:
    """Every logged value per step, throughput aside (wall-clock)."""
    return {step: {k: v for k, v in values.items() if k != "tokens_per_second_per_gpu"}
            for step, values in read_log_values(out).items()}


def trained_steps(out: Path) -> list[int]:
    """The step of every train-loss line over the run's log files, repeats kept: a job that started
    again instead of resuming logs its steps a second time."""
    return sorted(int(line.split("|")[0].split()[1]) for f in log_files(out)
                  for line in f.read_text().splitlines() if line.startswith("Step ") and " loss:" in line)


def safetensors_of(epoch_dir: Path) -> dict:
    """'<file>:<tensor>' -> tensor, over the epoch directory's .safetensors files."""
    from safetensors.torch import load_file

    found = {}
    for f in sorted(epoch_dir.glob("*.safetensors")):
        found.update({f"{f.name}:{k}": v for k, v in load_file(str(f)).items()})
    return found


def assert_same_epochs(a: Path, b: Path, epochs: int, tensors: Callable[[Path], dict],
                       prefixes: tuple[str, ...]) -> None:
    """Every epoch's tensors of a and b are equal (torch.equal), and a has a file named with each prefix."""
    import torch

    for epoch in range(epochs):
        ta, tb = tensors(a / f"epoch_{epoch}"), tensors(b / f"epoch_{epoch}")
        assert all(any(k.startswith(p) for k in ta) for p in prefixes), sorted(ta)[:5]
        assert ta.keys() == tb.keys()
        differ = [k for k in ta if not torch.equal(ta[k], tb[k])]
        assert not differ, f"epoch_{epoch}: {len(differ)} tensors differ, e.g. {differ[:3]}"
