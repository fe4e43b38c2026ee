"""Demo-sized settings for the bundled capitalization experiment (tiny model, CPU, seconds).

Why these: the tiny model's tokenizer is trained on words.txt in both forms ("apple", "Apple"),
so with vocab_size 2048 every shipped word is ONE token either way and the task becomes a
20-entry lookup a ~1M-parameter model can learn under LoRA. Random words split into many
byte-pieces need copying through attention, which these models do not learn in a demo's time.
The base model scores 0 (it has never seen the chat format).

Measured on the shared 2-core box (other jobs running), OMP_NUM_THREADS=1, torchtune 0.6.1,
our single-device recipe, greedy exact match on the 20 training words (base model: 0.00):
  MODEL + DATA + TRAINING below (4 epochs x 75 steps)   train 24 s wall (incl. ~6 s start-up)  0.30
  same, learning_rate 1e-2                              train 14 s                            0.05
  same model, 60 epochs x 5 steps (no repeat), lr 5e-3  train 37 s (60 checkpoints written)   0.45
  hidden 64 / 2 layers, or 10 words, or lr 2e-2         10-14 s                               0.00-0.10
Evaluate the demo on split="train": the model memorises, it does not generalise to test words.
"""
from __future__ import annotations

from cruijff_kit.blueprints.capitalization.generate import SHIPPED_WORDS

# make_tiny_model(**MODEL)
MODEL = {"seed": 0, "hidden": 128, "layers": 4, "heads": 4, "kv_heads": 2, "intermediate": 512,
         "vocab_size": 2048, "embed_std": 0.3}

# generate(out, **DATA): 25 words -> 20 train / 2 validation / 3 test; train rows x15 = 300 rows
DATA = {"n": 25, "seed": 0, "splits": (0.8, 0.1, 0.1), "word_source": SHIPPED_WORDS, "repeat": 15}

# setup_finetune.yaml values of the demo's reference run: 300 rows / batch 4 = 75 steps per epoch
TRAINING = {
    "lora_rank": 32,
    "lora_alpha": 64,
    "lora_dropout": 0.0,
    "learning_rate": 5.0e-3,
    "batch_size": 4,
    "epochs": 4,
    "lr_warmup_steps": 20,
    "weight_decay": 0.0,
}

# A 2 x 2 grid around the reference run. Measured: (32, 5e-3) 0.30 and (32, 1e-2) 0.05;
# the rank-16 runs are not measured yet.
GRID = {"lora_rank": [16, 32], "learning_rate": [5.0e-3, 1.0e-2]}
EVAL_SPLIT = "train"
