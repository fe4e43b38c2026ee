"""Stand-ins for torchtune and inspect inside the job scripts `ck scaffold` writes for a search, so
the run side of a search (run/step_search.py) is exercised end to end in seconds.

`install(exp, ...)` swaps, in each scaffolded finetune.slurm and eval/*.slurm, only the command
that trains or evaluates (`python -m cruijff_kit.finetune.recipes...` / `python -m
cruijff_kit.evaluate.launch`) for this file run as a script; the #SBATCH header, the arguments the
scaffold wrote (config, --model-dir, the `--task` lines, $CK_INSPECT_ARGS) and the
*.resources.json records stay as they are. What the stand-ins write is what the real programs
write, so `ck run` reads it through its own code:

- finetune: honours $CK_TUNE_OVERRIDES as the recipe does (`stop_after_epochs=K`,
  `resume_from_checkpoint=True`): trains from the first missing epoch (0 unless resuming) up to K
  (or the config's epochs), writing each epoch_<n>/ as torchtune does (a real safetensors shard and
  model.safetensors.index.json) and DiskLogger lines `Step s | loss:x val_loss:v epoch:n` to
  <output_dir>/logs/log_<unix ts>.txt, with v = val_loss(lr, n). `--fail-at-epoch N` makes it exit 1
  with a traceback when it would train epoch N; `--no-val-loss` leaves val_loss out of its lines.
- eval: one real inspect-ai .eval log per task $CK_TASKS names (all when unset), written by
  inspect's write_eval_log with the metadata $CK_INSPECT_ARGS carries plus ck_task / ck_eval (as
  evaluate/launch.py tags them); accuracy = accuracy(lr, epoch) for the `<task>_validation` task
  (the one a TASK:METRIC search decides on), a constant for the others.

Every training and evaluation appends one JSON line to the marker file the installer names when it
ends, so tests see what really ran (the epochs trained, the overrides, the epoch that failed)."""
from __future__ import annotations

import json
import math
import os
import shlex
import sys
import time
from pathlib import Path

FINETUNE_CMD = "python -m cruijff_kit.finetune.recipes.lora_single_device --config finetune.yaml"
MANIFEST_CMD = "python -m cruijff_kit.finetune.manifest || true"
EVAL_CMD = "python -m cruijff_kit.evaluate.launch"
STEPS_PER_EPOCH = 2
OTHER_ACCURACY = 0.5  # the tasks on the test split: never what a search decides on


def val_loss(lr: float, epoch: int) -> float:
    """Validation loss after 0-based `epoch`: lowest for lr 1e-3, falling with every epoch."""
    return abs(math.log10(lr) + 3) + 1 / (epoch + 1)


def accuracy(lr: float, epoch: int) -> float:
    """Validation accuracy after 0-based `epoch`: highest for lr 1e-2 (not val_loss's favourite,
    so a search that read the wrong metric decides differently), rising with every epoch."""
    return max(0.0, 1 - abs(math.log10(lr) + 2) / 4 - 0.2 / (epoch + 1))


# ---- installing them into a scaffolded experiment ---------------------------------------------
def install(exp: Path, marker: Path, *, fail_at: dict[str, int] | None = None, no_val_loss: tuple[str, ...] = (),
            epoch_sleep: float = 0.0) -> None:
    """Swap the trainer and evaluator of every run of `exp` for these stand-ins. fail_at: run
    directory -> the epoch whose training fails; no_val_loss: run directories whose training logs
    no validation loss (exit 0, checkpoints complete)."""
    me = shlex.quote(str(Path(__file__).resolve()))
    m = shlex.quote(str(marker))
    for ft in sorted(exp.glob("*/finetune.slurm")):
        extra = f" --fail-at-epoch {fail_at[ft.parent.name]}" if ft.parent.name in (fail_at or {}) else ""
        extra += " --no-val-loss" if ft.parent.name in no_val_loss else ""
        text = ft.read_text()
        assert FINETUNE_CMD in text and MANIFEST_CMD in text, f"{ft}: the scaffold's command changed"
        text = text.replace(MANIFEST_CMD, "true  # stand-in: no manifest")
        text = text.replace(FINETUNE_CMD, f"python {me} finetune --marker {m} --sleep {epoch_sleep}{extra} "
                                          f"--config finetune.yaml")
        ft.write_text(text)
    for ev in sorted(exp.glob("*/eval/*.slurm")):
        text = ev.read_text()
        assert EVAL_CMD in text, f"{ev}: the scaffold's command changed"
        ev.write_text(text.replace(EVAL_CMD, f"python {me} eval --marker {m}"))


def marker_lines(marker: Path) -> list[dict]:
    return [json.loads(line) for line in marker.read_text().splitlines()] if marker.exists() else []


# ---- the stand-ins themselves (run by the job scripts) -----------------------------------------
def _record(marker: str, **row) -> None:
    with open(marker, "a", encoding="utf-8") as fh:  # one short append per job: no interleaving
        fh.write(json.dumps(row) + "\n")


def _write_checkpoint(path: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    path.mkdir(parents=True, exist_ok=True)
    shard = "model-00001-of-00001.safetensors"
    save_file({"lm_head.weight": np.ones((4, 2), dtype=np.float32),
               "model.norm.weight": np.ones((8,), dtype=np.float32)}, str(path / shard), metadata={"format": "pt"})
    (path / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": 64}, "weight_map": {"lm_head.weight": shard, "model.norm.weight": shard}}))


def finetune(argv: list[str]) -> int:
    import argparse

    import yaml

    ap = argparse.ArgumentParser()
    ap.add_argument("--marker", required=True)
    ap.add_argument("--sleep", type=float, default=0.0)
    ap.add_argument("--fail-at-epoch", type=int)
    ap.add_argument("--no-val-loss", action="store_true")
    ap.add_argument("--config", required=True)
    a, overrides = ap.parse_known_args(argv)
    cfg = yaml.safe_load(Path(a.config).read_text())
    over = dict(o.split("=", 1) for o in overrides)  # the recipe's key=value command-line overrides
    total = int(cfg["epochs"])
    stop = min(int(over.get("stop_after_epochs", total)), total)
    out = Path(cfg["output_dir"])
    lr = float(over.get("optimizer.lr", cfg["optimizer"]["lr"]))
    start = 0
    if over.get("resume_from_checkpoint") == "True":
        while (out / f"epoch_{start}" / "model.safetensors.index.json").is_file():
            start += 1
        if start == 0:
            print("RuntimeError: resume_from_checkpoint=True but no checkpoint in " + str(out), file=sys.stderr)
            return 1
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"log_{int(time.time())}.txt"
    trained = []
    for n in range(start, stop):
        if n == a.fail_at_epoch:
            _record(a.marker, kind="finetune", run=Path.cwd().name, overrides=over, epochs=trained, failed_at=n)
            print("Traceback (most recent call last):\nRuntimeError: stand-in training failure", file=sys.stderr)
            return 1
        time.sleep(a.sleep)
        step = (n + 1) * STEPS_PER_EPOCH
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"Step {step - 1} | loss:{1.5 / (n + 1):.4f} lr:{lr}\n")
            validation = "" if a.no_val_loss else f" val_loss:{val_loss(lr, n)!r}"
            fh.write(f"Step {step} | loss:{1.4 / (n + 1):.4f}{validation} epoch:{n}\n")
        _write_checkpoint(out / f"epoch_{n}")
        trained.append(n)
    _record(a.marker, kind="finetune", run=Path.cwd().name, overrides=over, epochs=trained)
    return 0


def _inspect_metadata(inspect_args: list[str]) -> dict[str, str]:
    """The `--metadata k="v"` pairs (word-split from $CK_INSPECT_ARGS); inspect reads each value as YAML."""
    import yaml

    meta = {}
    for i, arg in enumerate(inspect_args[:-1]):
        if arg == "--metadata":
            key, _, raw = inspect_args[i + 1].partition("=")
            meta[key] = str(yaml.safe_load(raw))
    return meta


def evaluate(argv: list[str]) -> int:
    import argparse
    import datetime as dt

    import yaml
    from inspect_ai.log import (EvalConfig, EvalDataset, EvalLog, EvalMetric, EvalResults, EvalScore, EvalSpec,
                                write_eval_log)

    split = argv.index("--")
    ap = argparse.ArgumentParser()
    ap.add_argument("--marker", required=True)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--prompt-format")
    ap.add_argument("--task", nargs=3, action="append", default=[])
    a = ap.parse_args(argv[:split])
    inspect_args = argv[split + 1:]
    log_dir = Path(inspect_args[inspect_args.index("--log-dir") + 1])
    meta = _inspect_metadata(inspect_args)
    env = os.environ.get("CK_TASKS")
    wanted = None if env is None else dict(item.split("=", 1) for item in env.split())
    model_dir = Path(a.model_dir)
    epoch = int(model_dir.name.split("_")[1])
    cfg = yaml.safe_load((Path.cwd().parent / "finetune.yaml").read_text())  # the run this eval belongs to
    lr = float(cfg["optimizer"]["lr"])
    done = []
    for name, _spec, _args in a.task:
        if wanted is not None and name not in wanted:
            continue
        value = accuracy(lr, epoch) if name.endswith("_validation") else OTHER_ACCURACY
        tags = {**meta, "ck_task": name, **({"ck_eval": wanted[name]} if wanted else {})}
        created = dt.datetime.now(dt.timezone.utc)
        spec = EvalSpec(created=created.isoformat(), task=name, dataset=EvalDataset(), model=f"ck-hf/{model_dir}",
                        config=EvalConfig(), metadata=tags)
        results = EvalResults(total_samples=4, completed_samples=4, scores=[EvalScore(
            name="match", scorer="match", metrics={"accuracy": EvalMetric(name="accuracy", value=value)})])
        log_dir.mkdir(parents=True, exist_ok=True)
        path = log_dir / f"{created.strftime('%Y-%m-%dT%H-%M-%S')}_{name}_{os.getpid()}.eval"
        write_eval_log(EvalLog(eval=spec, status="success", results=results), str(path))
        done.append(name)
    _record(a.marker, kind="eval", job=meta.get("ck_job"), run=Path.cwd().parent.name, epoch=epoch, tasks=done)
    return 0


if __name__ == "__main__":
    sys.exit({"finetune": finetune, "eval": evaluate}[sys.argv[1]](sys.argv[2:]))
