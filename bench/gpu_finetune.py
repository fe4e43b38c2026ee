"""GPU fine-tuning throughput: ck's generated finetune.yaml vs torchtune's stock
`llama3_2/1B_lora_single_device` config, on a real-shaped Llama-3.2-1B-Instruct (random init, built
offline by tests/families/checkpoints.py), same data, same steps, one run each.

Prints tokens/s, peak active memory (GiB), MFU (6 * params * tokens/s over the GPU's dense bf16
peak; LoRA's frozen base makes the true FLOPs ~2/3 of that, so read MFU as a ratio between the two
configs) and ck/stock ratios. Needs one CUDA GPU; never part of the tests.

    python bench/gpu_finetune.py [--steps 40] [--batch-size 4] [--peak-tflops 989]  (H100/H200 SXM bf16 dense)
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "families"))

REAL_1B = {"hidden": 2048, "layers": 16, "heads": 32, "kv_heads": 8, "inter": 8192}
PARAMS_1B = 1.236e9


def _dataset(path: Path, rows: int = 2000) -> Path:
    words = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november".split()
    data = [{"input": " ".join(words[(i + j) % len(words)] for j in range(200)), "output": words[i % len(words)]}
            for i in range(rows)]
    path.write_text(json.dumps({"train": data, "validation": data[:10], "test": data[:10]}))
    return path


def _metrics(log_dir: Path) -> tuple[float, float]:
    """(median tokens/s after warm-up, max peak_memory_active) from torchtune's DiskLogger file."""
    text = "\n".join(p.read_text() for p in log_dir.glob("log_*.txt"))
    tps = [float(x) for x in re.findall(r"tokens_per_second_per_gpu:([0-9.eE+-]+)", text)]
    mem = [float(x) for x in re.findall(r"peak_memory_active:([0-9.eE+-]+)", text)]
    if not tps:
        raise SystemExit(f"no tokens_per_second_per_gpu in {log_dir}")
    tps = sorted(tps[len(tps) // 4:])  # drop warm-up steps
    return tps[len(tps) // 2], max(mem or [float("nan")])


def _run(cmd: list[str], cwd: Path) -> None:
    r = subprocess.run(cmd, cwd=cwd, env=os.environ.copy(), capture_output=True, text=True)
    if r.returncode:
        print(r.stdout[-3000:], r.stderr[-5000:], file=sys.stderr)
        raise SystemExit(f"failed: {' '.join(cmd)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    a = ap.parse_args()

    import torch

    from checkpoints import make_llama32_1b_instruct
    from cruijff_kit.finetune.config import render_finetune_yaml

    if not torch.cuda.is_available():
        print("no CUDA GPU: this benchmark needs one")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = make_llama32_1b_instruct(tmp / "Llama-3.2-1B-Instruct", dtype=torch.bfloat16, **REAL_1B)
        data = _dataset(tmp / "data.json")

        ck_dir = tmp / "ck"
        ck_dir.mkdir()
        setup = {"run_name": "bench", "model_checkpoint": str(model), "dataset": str(data), "dataset_format": "json",
                 "lora_rank": 64, "lora_alpha": 128, "learning_rate": 3e-4, "batch_size": a.batch_size,
                 "epochs": 1, "max_steps_per_epoch": a.steps, "num_gpus": 1, "seed": 0, "lr_warmup_steps": 10,
                 "output_dir": str(ck_dir / "out")}
        (ck_dir / "finetune.yaml").write_text(render_finetune_yaml(setup))
        _run([sys.executable, "-m", "cruijff_kit.finetune.recipes.lora_single_device", "--config", "finetune.yaml",
              "log_peak_memory_stats=True"], ck_dir)

        stock_dir = tmp / "stock"
        stock_dir.mkdir()
        _run([str(Path(sys.executable).parent / "tune"), "run", "lora_finetune_single_device", "--config",
              "llama3_2/1B_lora_single_device", f"output_dir={stock_dir / 'out'}",
              f"checkpointer.checkpoint_dir={model}", f"tokenizer.path={model / 'original' / 'tokenizer.model'}",
              "dataset._component_=torchtune.datasets.instruct_dataset", "dataset.source=json",
              f"dataset.data_files={data}", "dataset.field=train", "~dataset.packed", "dataset.split=train",
              f"batch_size={a.batch_size}", "epochs=1", f"max_steps_per_epoch={a.steps}",
              "metric_logger._component_=torchtune.training.metric_logging.DiskLogger",
              f"metric_logger.log_dir={stock_dir / 'out' / 'logs'}", "log_peak_memory_stats=True"], stock_dir)

        rows = {}
        for name, logs in (("ck", ck_dir / "out" / "logs"), ("stock", stock_dir / "out" / "logs")):
            tps, mem = _metrics(logs)
            rows[name] = (tps, mem, 6 * PARAMS_1B * tps / (a.peak_tflops * 1e12))
    print(f"{'config':8} {'tokens/s':>10} {'peak GiB':>9} {'MFU':>6}")
    for name, (tps, mem, mfu) in rows.items():
        print(f"{name:8} {tps:10.0f} {mem:9.2f} {mfu:6.1%}")
    (ck_tps, ck_mem, _), (st_tps, st_mem, _) = rows["ck"], rows["stock"]
    print(f"ratio ck/stock: tokens/s {ck_tps / st_tps:.2f}, peak memory {ck_mem / st_mem:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
