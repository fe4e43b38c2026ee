"""ck's TRL + PEFT LoRA recipe: `python -m cruijff_kit.finetune.trl_train --config trl_config.yaml [key=value ...]`.

What it keeps from the torchtune path, so a run means the same whichever trainer ran it:
  * the data: json {"train": [...], "validation": [...]} or a directory of <split>.parquet, rows
    {"input", "output"}, the plan's system prompt;
  * the prompt: rendered with the run's prompt format (finetune/trainers.py: ck's torchtune format
    for torchtune's families, else the model's own template with its variables pinned), the prompt
    tokenized exactly as evaluation tokenizes it (no added special tokens: the template emits BOS),
    the answer after it; the loss on the answer tokens only (unless train_on_input);
  * the schedule: AdamW, cosine after linear warmup, gradient accumulation, seed, the last partial
    batch dropped; bf16 + gradient checkpointing on a GPU, fp32 on the CPU;
  * the outputs: <output_dir>/epoch_N/ (PEFT adapter, tokenizer with the chat template, ck_checkpoint.json),
    `Step N | loss:… lr:…` lines in <output_dir>/logs/log_<time>.txt (val_loss per epoch), the peak
    memory record, and <run>/logs/train_examples.jsonl (the first 8 tokenized training examples).
key=value arguments override top-level config keys (`ck run` halves batch_size and doubles
gradient_accumulation_steps on an OOM retry, and sets resume_from_checkpoint=True after a TIMEOUT:
training goes on from the trainer state saved with the last finished epoch). One key needs no
entry in the file: stop_after_epochs=K ends the job after epoch K-1 is saved (finetune/epoch_stop.py),
the schedule still the full run's; a resume then continues exactly as if it had never stopped
(the trainer state of .trl/checkpoint-*: adapter, optimizer, scheduler, RNG, and the epoch count).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from cruijff_kit.util.procs import exit_after, imports_without_gc


def load_config(path: Path, overrides: list[str]) -> dict:
    from cruijff_kit.finetune.epoch_stop import STOP_KEY, stop_after_epochs
    from cruijff_kit.state.yaml_input import read_mapping, yaml_scalar

    cfg = read_mapping(path)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or (key not in cfg and key != STOP_KEY):  # the stop is this job's, not the run's config
            raise SystemExit(f"trl_train: override {item!r} is not KEY=VALUE with a key of {path.name}")
        cfg[key] = yaml_scalar(raw)
    try:
        cfg[STOP_KEY] = stop_after_epochs(cfg.get(STOP_KEY))
    except ValueError as exc:
        raise SystemExit(f"trl_train: {exc}") from None
    return cfg


def read_split(cfg: dict, split: str) -> list[dict]:
    path = Path(cfg["dataset"])
    if cfg["dataset_format"] == "json":
        data = json.loads(path.read_text())
        return list(data.get(split) or [])
    import pyarrow.parquet as pq

    file = path / f"{split}.parquet"
    return pq.read_table(file).to_pylist() if file.is_file() else []


def messages(row: dict, system_prompt: str) -> list[dict]:
    out = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return out + [{"role": "user", "content": str(row["input"])}, {"role": "assistant", "content": str(row["output"])}]


def tokenize(row: dict, tok, system_prompt: str, train_on_input: bool) -> dict:
    """input_ids / labels of one example: the prompt as evaluation renders it, then the answer."""
    msgs = messages(row, system_prompt)
    prompt = tok.apply_chat_template(msgs[:-1], tokenize=False, add_generation_prompt=True)
    full = tok.apply_chat_template(msgs, tokenize=False)
    if not full.startswith(prompt):
        raise SystemExit("trl_train: the chat template does not render the prompt as a prefix of the "
                         "conversation; cannot tell the answer tokens apart")
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    # the sequence ends at the end-of-turn token, as torchtune's do: the newline templates write after
    # it is never generated (evaluation stops at the end-of-turn token) and is not trained on
    a_ids = tok(full[len(prompt):].rstrip("\n"), add_special_tokens=False)["input_ids"]
    ids = p_ids + a_ids
    labels = list(ids) if train_on_input else [-100] * len(p_ids) + a_ids
    return {"input_ids": ids, "labels": labels}


def stamp_epoch(epoch_dir: Path, base: Path, fmt, tok) -> None:
    """The epoch's tokenizer carries the template trained with; ck_checkpoint.json the base and format."""
    from cruijff_kit.finetune.prompt_format import CHECKPOINT_RECORD, tokenizer_config_with_template
    from cruijff_kit.util.fs import atomic_write_text

    tok.save_pretrained(str(epoch_dir))
    (epoch_dir / "chat_template.jinja").unlink(missing_ok=True)  # one template: tokenizer_config.json's
    atomic_write_text(epoch_dir / "tokenizer_config.json",
                      json.dumps(tokenizer_config_with_template(epoch_dir, fmt), indent=2, ensure_ascii=False) + "\n")
    record = {"base_model": str(base.resolve()), "adapter_only": True, "trainer": "trl",
              "prompt_format": fmt.name, "chat_template": fmt.chat_template,
              "chat_template_sha256": fmt.template_sha256}
    atomic_write_text(epoch_dir / CHECKPOINT_RECORD, json.dumps(record, indent=2) + "\n")


def main(argv: list[str] | None = None, *, job: bool = False) -> int:
    """job: this is the training job's own process (python -m / torchrun), not a caller's import."""
    ap = argparse.ArgumentParser(prog="python -m cruijff_kit.finetune.trl_train")
    ap.add_argument("--config", required=True)
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    a = ap.parse_args(sys.argv[1:] if argv is None else argv)
    config_path = Path(a.config).resolve()
    cfg = load_config(config_path, a.overrides)
    return train(cfg, run_dir=config_path.parent, job=job)


def train(cfg: dict, run_dir: Path, *, job: bool = False) -> int:
    with imports_without_gc(active=job):  # the job's libraries, loaded with the collector off (util/procs.py)
        import torch
        from datasets import Dataset
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback, set_seed
        from trl import SFTConfig, SFTTrainer

    from cruijff_kit.finetune import train_examples
    from cruijff_kit.finetune.epoch_stop import STOP_KEY, stops_after
    from cruijff_kit.finetune.peft_compat import peft_without_old_torchao
    from cruijff_kit.finetune.recipes._torchtune import record_peak_memory
    from cruijff_kit.finetune.trainers import prompt_format_of

    peft_without_old_torchao()
    base = Path(cfg["model_checkpoint"])
    out = Path(cfg["output_dir"])
    (out / "logs").mkdir(parents=True, exist_ok=True)
    set_seed(int(cfg["seed"]))
    fmt = prompt_format_of(base)
    tok = AutoTokenizer.from_pretrained(str(base))
    tok.chat_template = fmt.chat_template
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    sp, toi = cfg["system_prompt"], bool(cfg["train_on_input"])
    rank0 = int(os.environ.get("RANK", "0")) == 0  # torchrun's; one writer of every file
    train_rows = [tokenize(r, tok, sp, toi) for r in read_split(cfg, "train")]
    if rank0:
        train_examples.write(run_dir / cfg["examples_file"], ((e["input_ids"], e["labels"]) for e in train_rows),
                             lambda ids: tok.decode(ids, skip_special_tokens=False))
    val_rows = [tokenize(r, tok, sp, toi) for r in read_split(cfg, "validation")] if cfg["enable_validation"] else []

    gpu = cfg["device"] == "cuda"
    dtype = torch.bfloat16 if cfg["dtype"] == "bf16" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=dtype)
    model = get_peft_model(model, LoraConfig(
        r=int(cfg["lora_rank"]), lora_alpha=float(cfg["lora_alpha"]), lora_dropout=float(cfg["lora_dropout"]),
        target_modules=list(cfg["lora_target_modules"]), bias="none", task_type="CAUSAL_LM"))

    if cfg.get("logger") == "wandb" and cfg.get("wandb_project"):
        os.environ.setdefault("WANDB_PROJECT", str(cfg["wandb_project"]))  # where the wandb reporter logs
    every = cfg.get("validation_every_n_steps")
    args = SFTConfig(
        output_dir=str(out / ".trl"), num_train_epochs=int(cfg["epochs"]),
        per_device_train_batch_size=int(cfg["batch_size"]), per_device_eval_batch_size=int(cfg["batch_size"]),
        gradient_accumulation_steps=int(cfg["gradient_accumulation_steps"]),
        learning_rate=float(cfg["learning_rate"]), lr_scheduler_type="cosine",
        warmup_steps=int(cfg["lr_warmup_steps"]), weight_decay=float(cfg["weight_decay"]),
        seed=int(cfg["seed"]), data_seed=int(cfg["seed"]), bf16=gpu and cfg["dtype"] == "bf16",
        use_cpu=not gpu, gradient_checkpointing=bool(cfg["gradient_checkpointing"]),
        gradient_checkpointing_kwargs={"use_reentrant": False} if cfg["gradient_checkpointing"] else None,
        dataloader_drop_last=True, logging_strategy="steps", logging_steps=1,
        # the trainer state of the last finished epoch, for resume_from_checkpoint (a TIMEOUT retry)
        save_strategy="epoch", save_total_limit=1,
        eval_strategy=("steps" if every else "epoch") if val_rows else "no",
        eval_steps=int(every) if (every and val_rows) else None,
        report_to=["wandb"] if cfg.get("logger") == "wandb" else [], run_name=cfg.get("wandb_run_name"),
        max_length=None, packing=False,  # the examples come tokenized, labels set: no truncation, no packing
        include_num_input_tokens_seen=True, remove_unused_columns=False, disable_tqdm=True,
        ddp_find_unused_parameters=False,
    )
    log_file = out / "logs" / f"log_{int(time.time())}.txt"
    state = {"epoch": 0, "epochs_trained": 0, "epoch_step": 0, "t0": time.monotonic(), "tokens0": 0, "saved": []}
    max_per_epoch = cfg.get("max_steps_per_epoch")

    class CkCallback(TrainerCallback):
        """torchtune-style log lines, epoch checkpoints, max steps per epoch."""

        def _write(self, step: int, values: dict[str, Any]) -> None:
            if not rank0:
                return
            with log_file.open("a") as fh:
                fh.write(f"Step {step} | " + " ".join(f"{k}:{v}" for k, v in values.items()) + " \n")

        def on_train_begin(self, args_, st, control, **kw):
            state["epoch"] = state["epochs_trained"]  # epochs already done (a resumed run), as the trainer counts

        def on_step_end(self, args_, st, control, **kw):
            state["epoch_step"] += 1
            state["after_epoch"] = False
            if max_per_epoch and state["epoch_step"] >= int(max_per_epoch):
                control.should_epoch_stop = True

        def on_log(self, args_, st, control, logs=None, **kw):
            logs = logs or {}
            if "loss" in logs:
                elapsed = max(time.monotonic() - state["t0"], 1e-9)
                tps = (st.num_input_tokens_seen - state["tokens0"]) / elapsed
                state["t0"], state["tokens0"] = time.monotonic(), st.num_input_tokens_seen
                self._write(st.global_step, {"loss": float(logs["loss"]), "lr": float(logs.get("learning_rate", 0.0)),
                                             "tokens_per_second_per_gpu": round(tps, 1)})
            if "eval_loss" in logs:
                # an evaluation right after an epoch's end belongs to that epoch
                epoch = state["epoch"] - 1 if state.get("after_epoch") else state["epoch"]
                self._write(st.global_step, {"val_loss": float(logs["eval_loss"]), "epoch": epoch})

        def on_epoch_end(self, args_, st, control, **kw):
            if st.is_world_process_zero:
                epoch_dir = out / f"epoch_{state['epoch']}"
                model.save_pretrained(str(epoch_dir))
                stamp_epoch(epoch_dir, base, fmt, tok)
                record_peak_memory(out, state["epoch"])
            if val_rows:
                control.should_evaluate = True  # validation loss at every epoch end
            state["saved"].append(state["epoch"])
            if stops_after(state["epoch"], cfg.get(STOP_KEY), int(cfg["epochs"])):
                # the trainer still evaluates and saves its state (.trl/checkpoint-*) for this epoch
                # (_maybe_log_save_evaluate runs after on_epoch_end), then leaves its epoch loop
                control.should_training_stop = True
            state["epoch"] += 1
            state["epoch_step"] = 0
            state["after_epoch"] = True

    # the schedule spans the steps that will run, as torchtune's does: with Max steps per epoch, the
    # epochs end early (should_epoch_stop) and the cosine must decay over those steps, not full epochs
    world = int(os.environ.get("WORLD_SIZE", "1"))
    per_epoch = max(len(train_rows) // (int(cfg["batch_size"]) * world) // int(cfg["gradient_accumulation_steps"]), 1)
    if max_per_epoch:
        per_epoch = min(per_epoch, int(max_per_epoch))
    total_steps = per_epoch * int(cfg["epochs"])

    class CkSFTTrainer(SFTTrainer):
        def create_scheduler(self, num_training_steps, optimizer=None):
            return super().create_scheduler(total_steps, optimizer)

        def _init_training_state(self, max_steps, num_update_steps_per_epoch, *rest):
            # On a resume the trainer counts finished epochs as global_step // (its full epoch's
            # steps); with Max steps per epoch our epochs are shorter (should_epoch_stop), so it would
            # count too few and skip batches of the wrong epoch. Count by the epochs that really ran.
            epochs, steps = super()._init_training_state(max_steps, num_update_steps_per_epoch, *rest)
            if max_per_epoch and per_epoch < num_update_steps_per_epoch:
                done = self.state.global_step
                epochs = done // per_epoch
                steps = 0 if self.args.ignore_data_skip else (done % per_epoch) * self.args.gradient_accumulation_steps
            state["epochs_trained"] = epochs
            return epochs, steps

    trainer = CkSFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(train_rows),
                         eval_dataset=Dataset.from_list(val_rows) if val_rows else None,
                         processing_class=tok, callbacks=[CkCallback()])
    resume = bool(cfg.get("resume_from_checkpoint")) and any((out / ".trl").glob("checkpoint-*"))
    trainer.train(resume_from_checkpoint=True if resume else None)
    if cfg.get("save_merged_weights") and rank0:  # merged HF weights beside each epoch's adapter
        from cruijff_kit.finetune.peft_merge import merge_into

        from cruijff_kit.state.artifacts import checkpoint_complete, has_weights

        for n in range(state["epoch"]):  # the epochs done so far: a stopped job saved only some
            d = out / f"epoch_{n}"
            if n in state["saved"] or not (has_weights(d) and checkpoint_complete(d)):  # not merged by a job that stopped
                merge_into(d, base, d)
    return 0


if __name__ == "__main__":
    exit_after(lambda: main(job=True))
