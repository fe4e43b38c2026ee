"""Every name ck gives a file or directory on disk, once. See CLAUDE.md "On-disk contract".

    EXP/experiment_summary.md            SUMMARY
    EXP/.ck/ledger.json, .ck/lock        CK_DIR, LEDGER, LOCK
    EXP/.ck/experiment.json              IDENTITY
    <output_dir>/.ck-experiment.json     OUTPUT_CLAIM
    EXP/<run>/setup_finetune.yaml        SETUP
    EXP/<run>/finetune.yaml|.slurm       FINETUNE_CONFIG, FINETUNE_SCRIPT
    <script dir>/<stem>.resources.json   resources_path(script): the job's Resources, beside its script
    EXP/<run>/eval/…, eval/logs/         EVAL_DIR, EVAL_LOGS
    <output_dir>/epoch_<N>/              epoch_dir(output_dir, N), EPOCH_GLOB
"""
from __future__ import annotations

import re
from pathlib import Path

SUMMARY = "experiment_summary.md"
CK_DIR = ".ck"
LEDGER = "ledger.json"
LOCK = "lock"
IDENTITY = "experiment.json"
OUTPUT_CLAIM = ".ck-experiment.json"
SETUP = "setup_finetune.yaml"
FINETUNE_CONFIG = "finetune.yaml"
FINETUNE_SCRIPT = "finetune.slurm"
RESOURCES_SUFFIX = ".resources.json"
EVAL_DIR = "eval"
EVAL_LOGS = "logs"
ANALYSIS_DIR = "analysis"
EPOCH_GLOB = "epoch_*"
EPOCH_DIR = re.compile(r"^epoch_(\d+)$")


def ck_dir(exp: Path) -> Path:
    return Path(exp) / CK_DIR


def ledger_path(exp: Path) -> Path:
    return ck_dir(exp) / LEDGER


def summary_path(exp: Path) -> Path:
    return Path(exp) / SUMMARY


def setup_path(run_dir: Path) -> Path:
    return Path(run_dir) / SETUP


def resources_path(script: Path) -> Path:
    """Where a job script's resources are stored: finetune.slurm -> finetune.resources.json."""
    script = Path(script)
    return script.with_name(script.stem + RESOURCES_SUFFIX)


def epoch_dir(output_dir: Path, epoch: int) -> Path:
    return Path(output_dir) / f"epoch_{epoch}"


def epoch_dirs(output_dir: Path) -> list[tuple[int, Path]]:
    """(epoch, path) of every epoch_<N> directory under output_dir, in epoch order."""
    found = []
    for p in Path(output_dir).glob(EPOCH_GLOB):
        m = EPOCH_DIR.match(p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    return sorted(found)
