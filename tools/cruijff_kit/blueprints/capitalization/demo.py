"""Demo-sized settings for the bundled capitalization experiment (tiny model, CPU, seconds).

The question the demo answers honestly: does LoRA fine-tuning teach a rule that holds for words
the run never saw? The data are the shipped words split into DISTINCT train / validation / test
words; the runs train on train and are evaluated on test (held out).

The model (tiny_model.make_tiny_model(copy=True)): one token per word in both forms, embeddings
with a shared case feature, and a base that answers with the user's word verbatim, so the
control scores ~0 and a run must learn "capitalise" from the train words. A run that learns
it as the shared case shift generalises to the test words.

The system prompt is set so the evaluation prompt equals the training prompt token for token
whatever the chat template does without one (Qwen2.5's inserts its default system prompt).

Measured (bench/demo_time.py on the shared 2-core box, load average ~9; exact match on the 106
held-out words; the numbers are deterministic): control 0.000; rank 4 / lr 3e-3 0.991; rank 8 /
lr 3e-3 0.981; lr 1e-3 runs 0.009 and 0.019 (too little learning in 52 steps). Whole demo 305 s
wall, 173 CPU-seconds including every job (about 90 s of CPU per core on an idle 2-core box).
"""
from __future__ import annotations

from cruijff_kit.blueprints.capitalization.generate import SHIPPED_WORDS

# make_tiny_model(**MODEL)
MODEL = {"seed": 0, "hidden": 64, "layers": 2, "heads": 4, "kv_heads": 4, "intermediate": 128,
         "vocab_size": 2048, "rope_theta": 10000.0, "copy": True}

# generate(out, **DATA): all 353 shipped words -> 212 train / 35 validation / 106 test, distinct
DATA = {"n": 353, "seed": 0, "splits": (0.6, 0.1, 0.3), "word_source": SHIPPED_WORDS, "repeat": 1}

SYSTEM_PROMPT = "Capitalize the word."

# setup_finetune.yaml values of the demo's reference run
TRAINING = {
    "lora_rank": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.0,
    "learning_rate": 3.0e-3,
    "batch_size": 8,
    "epochs": 2,
    "lr_warmup_steps": 5,
    "weight_decay": 0.0,
    "system_prompt": SYSTEM_PROMPT,
}

# A 2 x 2 grid around the reference run.
GRID = {"lora_rank": [4, 8], "learning_rate": [1.0e-3, 3.0e-3]}
EVAL_SPLIT = "test"
EVAL_MAX_TOKENS = 4
