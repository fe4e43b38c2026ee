"""The canonical sweep experiment the scaffold tests start from, and a snapshot of a tree."""
from pathlib import Path

CANON = (Path(__file__).parents[1] / "experiment" / "canonical.md").read_text()
GROWN_ROWS = "\n".join(
    f"| Llama-3.2-1B-Instruct_rank{r}_lr{lr} | Llama-3.2-1B-Instruct | {r} | {lr} | 4 | Fine-tuned | ~10s |"
    for r in (8, 16, 32, 64) for lr in ("1e-5", "5e-5"))
TASK = 'from inspect_ai import task\n\n@task\ndef capitalization(data_path: str, split: str = "test"):\n    ...\n'

def make_experiment(root: Path) -> Path:
    exp = root / "cap_sweep"
    (exp / "tasks" / "capitalization").mkdir(parents=True)
    (exp / "tasks" / "capitalization" / "inspect_task.py").write_text(TASK)
    text = CANON.replace("/scratch/me/cap_4L_lora_lr_sweep", str(exp)).replace(
        "| Llama-3.2-1B-Instruct_rank8_lr1e-5 | Llama-3.2-1B-Instruct | 8 | 1e-5 | 4 | Fine-tuned | ~10s |", GROWN_ROWS)
    (exp / "experiment_summary.md").write_text(text)
    return exp

def snapshot(root: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
