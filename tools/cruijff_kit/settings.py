"""The one settings schema: every setting a plan can state, in one place.

Each `Setting` says how it is written in experiment_summary.md (its Configuration name, which
is also its runs-table column header), its setup_finetune.yaml key, its type, default, bounds,
short name in run directory names, and a line of help. From this table come:
  - the summary parser's Configuration keys and runs-table columns (experiment/parse.py),
  - the values of setup_finetune.yaml (scaffold/torchtune_worker.py) and their validation
    when read back (scaffold/setup_file.py), the defaults finetune.yaml is built with
    (finetune/config.py),
  - `ck design --vary` and the spec's `grid:` (experiment/design.py),
  - the settings reference skills/scaffold-torchtune/references/setup-fields.md
    (`python -m cruijff_kit.settings` prints it; a test keeps it in step).
Pure Python, no heavy imports.
"""
from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from .util.numbers import format_float

TRAINING, EVALUATION, OUTPUT, SETUP = "training", "evaluation", "output", "setup"
LORA_MODULES = ("q_proj", "k_proj", "v_proj", "output_proj")
SAFE_TEXT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./+-]*")  # text that needs no quotes in the summary
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")    # a name that may become a file name
MAX_TEXT = 10_000  # characters in one text setting (a system prompt is a paragraph, not a book)

PLAN_DEFAULT = object()  # Setting.setup_default: a setup file without the key means the plan's default


@dataclass(frozen=True)
class Setting:
    key: str                     # setup_finetune.yaml key (also the name in code and spec grids)
    name: str                    # Configuration name / runs-table header in experiment_summary.md
    kind: str                    # int | float | bool | text | choice | modules | mapping | environment
    default: Any
    help: str
    group: str = TRAINING        # training | evaluation | output (plan settings) | setup (file only)
    short: str = ""              # part of a run directory name when the setting varies
    aliases: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None   # exclusive lower bound
    below: float | None = None   # exclusive upper bound
    choices: tuple[str, ...] = ()
    nullable: bool = False
    required: bool = False       # setup_finetune.yaml must carry it
    default_note: str = ""       # a default that is computed, said in words
    # what a setup_finetune.yaml that omits the key means, when that differs from the plan's
    # default (the scaffold always writes every key; a hand-written setup file may not)
    setup_default: Any = PLAN_DEFAULT
    plan_only: bool = False      # shapes the plan (which runs exist), never a run's own value or setup key

    @property
    def per_run(self) -> bool:
        """May be a column of the runs table (varied between runs)."""
        return self.group == TRAINING and not self.plan_only

    @property
    def column(self) -> str:
        """Runs-table header: the name in title case ("LoRA Rank", "Warmup Steps")."""
        return " ".join(w[:1].upper() + w[1:] for w in self.name.split())

    @property
    def in_plan(self) -> bool:
        return self.group != SETUP

    @property
    def in_setup(self) -> bool:
        return self.group in (TRAINING, SETUP) and not self.plan_only

    # --- values -------------------------------------------------------------------------

    def problem(self, value: Any) -> str | None:
        """Why a typed value (from YAML or parsed text) is not acceptable, or None."""
        if value is None:
            return None if self.nullable or not self.required else "must be set"
        k = self.kind
        if k == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                return f"expected a whole number, got {_short_repr(value)}"
            return self._bounds(value)
        if k == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"expected a number, got {_short_repr(value)}"
            if not math.isfinite(value):
                return f"must be a finite number, got {_short_repr(value)}"
            return self._bounds(value)
        if k == "bool":
            return None if isinstance(value, bool) else f"expected true or false, got {_short_repr(value)}"
        if k in ("text", "choice", "name"):
            if not isinstance(value, str):
                return f"expected text, got {_short_repr(value)}"
            if len(value) > MAX_TEXT:
                return f"is {len(value)} characters long (at most {MAX_TEXT})"
            if self.choices and value not in self.choices:
                return f"must be one of {', '.join(self.choices)}, got {_short_repr(value)}"
            if k == "name" and value and (not SAFE_NAME.fullmatch(value) or ".." in value or len(value) > 200):
                return f"unsafe name {_short_repr(value)} (letters, digits, '.', '_', '+', '-')"
            if self.required and not value.strip():
                return "must not be empty"
            return None
        if k == "modules":
            if not isinstance(value, (list, tuple)) or not value:
                return f"expected a non-empty list of {', '.join(LORA_MODULES)}, got {_short_repr(value)}"
            bad = [m for m in value if m not in LORA_MODULES]
            if bad:
                return f"unknown module(s) {', '.join(map(_short_repr, bad))} (known: {', '.join(LORA_MODULES)})"
            if len(set(value)) != len(value):
                return "lists a module twice"
            return None
        if k == "mapping":
            return None if isinstance(value, dict) else f"expected a mapping, got {_short_repr(value)}"
        if k == "environment":
            if not isinstance(value, dict) or value.get("kind") not in ("venv", "conda", "none"):
                return "expected {kind: venv, path: …} | {kind: conda, name: …} | {kind: none}"
            if value["kind"] == "venv" and not value.get("path"):
                return "a venv environment needs a path"
            if value["kind"] == "conda" and not value.get("name"):
                return "a conda environment needs a name"
            return None
        raise AssertionError(k)

    def _bounds(self, v: float) -> str | None:
        if self.minimum is not None and v < self.minimum:
            return f"must be >= {_num(self.minimum)}, got {v}"
        if self.above == 0 and not v > 0:
            return f"must be a positive number (> 0), got {v}"
        if self.above is not None and not v > self.above:
            return f"must be > {_num(self.above)}, got {v}"
        if self.maximum is not None and v > self.maximum:
            return f"must be <= {_num(self.maximum)}, got {v}"
        if self.below is not None and not v < self.below:
            return f"must be < {_num(self.below)}, got {v}"
        return None

    def parse_text(self, text: str) -> Any:
        """A summary cell or Configuration value -> typed value (ValueError says why)."""
        t = text.strip()
        if self.nullable and t.lower() in ("", "-", "none", "null", "n/a"):
            return None
        k = self.kind
        if k == "int":
            if not re.fullmatch(r"[+-]?\d{1,19}", t):
                raise ValueError(f"expected a whole number, got {_short_repr(t)}")
            value: Any = int(t)
        elif k == "float":
            try:
                value = float(t)
            except ValueError:
                raise ValueError(f"expected a number such as 1e-5, got {_short_repr(t)}") from None
        elif k == "bool":
            low = t.lower()
            if low in ("true", "yes", "on"):
                value = True
            elif low in ("false", "no", "off"):
                value = False
            else:
                raise ValueError(f"expected true or false, got {_short_repr(t)}")
        elif k == "modules":
            value = [m for m in re.split(r"[,\s]+", t) if m]
        else:
            value = parse_quoted(t)
        problem = self.problem(value)
        if problem:
            raise ValueError(problem)
        return value

    def format(self, value: Any) -> str:
        """Typed value -> summary text that parse_text reads back to the same value."""
        if value is None:
            return "-"
        if self.kind == "float":
            return format_float(float(value))
        if self.kind == "bool":
            return "true" if value else "false"
        if self.kind == "modules":
            return ", ".join(value)
        if self.kind in ("text", "choice", "name"):
            if SAFE_TEXT.fullmatch(value) and value.lower() not in ("none", "null", "n/a"):
                return value
            return json.dumps(value, ensure_ascii=False)
        return str(value)

    def directory_part(self, value: Any, index: int) -> str:
        """`rank8`, `lr1e-5`, `drop0.1`, …; text that is not a safe name becomes `<short><index>`."""
        if value is None:
            return f"{self.short}default"
        if self.kind == "bool":
            return f"{self.short}{'on' if value else 'off'}"
        if self.kind == "modules":
            return self.short + "+".join(m.replace("_proj", "") for m in value)
        text = self.format(value)
        if self.kind in ("text", "choice", "name") and not SAFE_TEXT.fullmatch(text):
            return f"{self.short}{index}"
        return f"{self.short}{text}"


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_quoted(text: str) -> str:
    """`"a \\"quoted\\" text"` (JSON) or plain text."""
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] == '"':
        try:
            value = json.loads(t)
        except json.JSONDecodeError:
            return t[1:-1]
        return value if isinstance(value, str) else t
    return t


S = Setting
SETTINGS: tuple[Setting, ...] = (
    # --- training: one value per run; each may be a runs-table column ---
    S("lora_rank", "LoRA rank", "int", None, "LoRA rank (fine-tuned runs need one)", short="rank",
      aliases=("rank",), minimum=1, maximum=4096),
    S("lora_alpha", "LoRA alpha", "float", None, "LoRA scaling numerator (alpha / rank scales the update)",
      short="alpha", aliases=("alpha",), above=0, maximum=1e5, default_note="2 x LoRA rank"),
    S("lora_dropout", "LoRA dropout", "float", 0.0, "dropout on the LoRA path", short="drop",
      aliases=("dropout",), minimum=0, below=1),
    S("lora_attn_modules", "LoRA attention modules", "modules", ["q_proj", "v_proj", "output_proj"],
      "attention projections that get LoRA adapters (q_proj, k_proj, v_proj, output_proj)", short="attn",
      aliases=("lora modules", "attention modules")),
    S("apply_lora_to_mlp", "LoRA on MLP", "bool", True, "also adapt the MLP layers", short="mlp",
      aliases=("apply lora to mlp",)),
    S("apply_lora_to_output", "LoRA on output", "bool", False,
      "also adapt the output projection (ignored for models with tied embeddings)", short="outproj",
      aliases=("apply lora to output",)),
    S("learning_rate", "Learning rate", "float", 5e-5, "AdamW learning rate (peak, after warmup)", short="lr",
      aliases=("lr",), above=0, maximum=10),
    S("batch_size", "Batch size", "int", 4, "examples per step per device", short="bs", aliases=("bs",),
      minimum=1, maximum=65536),
    S("gradient_accumulation_steps", "Gradient accumulation steps", "int", 1,
      "steps whose gradients add up before one optimizer step", short="ga",
      aliases=("gradient accumulation", "grad accum"), minimum=1, maximum=65536),
    S("lr_warmup_steps", "Warmup steps", "int", 100, "linear learning-rate warmup (cosine decay after)",
      short="warmup", aliases=("lr warmup steps", "warmup"), minimum=0, maximum=10_000_000),
    S("weight_decay", "Weight decay", "float", 0.01, "AdamW weight decay", short="wd", minimum=0, maximum=10),
    S("epochs", "Epochs", "int", 1, "passes over the training split; checkpoints epoch_0 … epoch_{N-1}",
      short="ep", minimum=1, maximum=1000),
    S("max_steps_per_epoch", "Max steps per epoch", "int", None, "stop each epoch after this many steps",
      short="steps", aliases=("max steps",), minimum=1, maximum=1_000_000_000, nullable=True,
      default_note="no limit"),
    S("seed", "Seed", "int", 1234, "random seed (data order, LoRA initialisation)", short="seed",
      minimum=0, maximum=2**32 - 1),
    S("seeds", "Seeds", "int", 1, "training seeds per configuration: each configuration runs once per seed "
      "(Seed, Seed+1, …; the Seed column names each) and the analysis treats them as replicates",
      aliases=("replicates",), minimum=1, maximum=100, plan_only=True),
    S("train_on_input", "Train on input", "bool", False, "also compute the loss on the prompt tokens",
      short="toi"),
    S("system_prompt", "System prompt", "text", "", "system message of every training example "
      "(and of evaluation unless the evaluation sets its own)", short="prompt"),
    S("enable_validation", "Validation during training", "bool", False,
      "validation loss during training", short="val", aliases=("validation",)),
    S("validation_every_n_steps", "Validation every N steps", "int", None,
      "with validation during training: also every N optimizer steps (unset: at each epoch end only)",
      short="valevery", aliases=("validation every",), minimum=1, maximum=1_000_000_000, nullable=True,
      default_note="epoch ends only"),
    S("save_merged_weights", "Save merged weights", "bool", False,
      "epoch checkpoints hold full merged weights (false: the LoRA adapter only, MBs instead of a model "
      "copy per epoch; evaluation merges it in node-local scratch)", short="merged",
      aliases=("merged weights",)),
    S("num_gpus", "GPUs", "int", 1, "GPUs per node; 0 = CPU", short="gpus", aliases=("gpu", "num gpus"),
      minimum=0, maximum=64, setup_default=0),  # a setup file without it trains on CPU
    S("num_nodes", "Nodes", "int", 1, "nodes; > 1 = multi-node (srun)", short="nodes", aliases=("num nodes",),
      minimum=1, maximum=1024),
    S("num_cpu_ranks", "CPU ranks", "int", 1, "ranks per node when GPUs is 0 (gloo, one srun task each)",
      short="cpuranks", minimum=1, maximum=1024),
    S("trainer", "Model preparation", "choice", None,
      "trainer of the run: torchtune (its model families) or trl (TRL + PEFT: any causal LM transformers loads)",
      short="trainer", aliases=("trainer", "preparation", "model preparation tool"), choices=("torchtune", "trl"),
      nullable=True, default_note="chosen from the model's config.json: torchtune where it has a builder, else trl"),
    S("logger", "Logger", "choice", None, "metric logger: disk (always) or wandb (offline unless logged in)",
      short="logger", choices=("disk", "wandb"), nullable=True, setup_default="disk",
      default_note="wandb when claude.local.md names a project, else disk"),
    # --- evaluation: the defaults of every task (a task in the evaluation plan may override some) ---
    S("eval_split", "Split", "name", "test", "dataset split the evaluation reads (held-out data)",
      group=EVALUATION, aliases=("evaluation split", "eval split")),
    S("eval_max_tokens", "Max tokens", "int", 32, "longest generated answer", group=EVALUATION,
      aliases=("eval max tokens", "evaluation max tokens"), minimum=1, maximum=1_000_000),
    S("eval_temperature", "Temperature", "float", None, "sampling temperature (unset: greedy decoding)",
      group=EVALUATION, aliases=("eval temperature", "evaluation temperature"), minimum=0, maximum=10,
      nullable=True, default_note="greedy decoding"),
    S("eval_scorer", "Scorer", "text", None, "scorer of the task (the task script defines it)",
      group=EVALUATION, aliases=("eval scorer", "evaluation scorer"), nullable=True,
      default_note="the task script's own"),
    S("eval_system_prompt", "Evaluation system prompt", "text", None,
      "system prompt at evaluation (unset: the training system prompt)", group=EVALUATION,
      aliases=("eval system prompt",), nullable=True, default_note="the training system prompt"),
    # --- output ---
    S("output_dir_base", "Checkpoint directory", "text", None,
      "where checkpoints go: <dir>/<experiment>/<run>/epoch_N (unset: claude.local.md's output_dir_base, "
      "else inside the run directory)", group=OUTPUT, aliases=("output dir base", "output directory"),
      nullable=True, default_note="claude.local.md, else <run>/checkpoints"),
    # --- setup_finetune.yaml only: identity, paths, environment (filled by the scaffold) ---
    S("experiment_name", "", "text", None, "experiment (summary title)", group=SETUP, required=True,
      setup_default=""),
    S("run_name", "", "name", None, "run directory name", group=SETUP, required=True),
    S("my_wandb_project", "", "text", None, "W&B project (claude.local.md)", group=SETUP, nullable=True,
      setup_default=None),
    S("my_wandb_run_name", "", "text", None, "W&B run name", group=SETUP, nullable=True, setup_default=None),
    S("model_name", "", "text", None, "model name from Resources", group=SETUP, required=True,
      setup_default=None),
    S("model_checkpoint", "", "text", None, "local Hugging Face checkpoint directory", group=SETUP,
      required=True),
    S("dataset", "", "text", None, "training data: .json file or directory of .parquet splits", group=SETUP,
      required=True),
    S("dataset_format", "", "choice", "json", "json or parquet (from the dataset path)", group=SETUP,
      choices=("json", "parquet"), required=True),
    S("output_dir", "", "text", None, "checkpoints: output_dir/epoch_N/", group=SETUP, required=True),
    S("extra_overrides", "", "mapping", {}, "torchtune `dotted.key: value` overrides of finetune.yaml",
      group=SETUP, setup_default={}),
    S("environment", "", "environment", None, "{kind: venv, path}, {kind: conda, name} or {kind: none}",
      group=SETUP, required=True),
    S("slurm", "", "mapping", {}, "job_name, account, partition, qos, constraint, time, mem, cpus, gpus, nodes, "
      "modules, output (claude.local.md)", group=SETUP, required=True),
)
del S

BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}
PLAN_SETTINGS = tuple(s for s in SETTINGS if s.in_plan)
RUN_SETTINGS = tuple(s for s in SETTINGS if s.per_run)
SETUP_SETTINGS = tuple(s for s in SETTINGS if s.in_setup)
assert len(BY_KEY) == len(SETTINGS)
assert len({s.short for s in RUN_SETTINGS}) == len(RUN_SETTINGS)
# what a trainer cannot run without: a setup_finetune.yaml lacking one is refused, never defaulted
SETUP_REQUIRED = ("run_name", "model_checkpoint", "dataset", "dataset_format", "lora_rank", "lora_alpha",
                  "learning_rate", "batch_size", "epochs", "output_dir", "seed")


def setup_file_defaults() -> dict[str, Any]:
    """Every other key a trainer reads, with what its absence from a setup file means."""
    out = {s.key: (resolve(s.key) if s.setup_default is PLAN_DEFAULT else s.setup_default)
           for s in RUN_SETTINGS if s.key not in SETUP_REQUIRED}
    out.update({s.key: s.setup_default for s in SETUP_SETTINGS
                if not s.per_run and s.setup_default is not PLAN_DEFAULT})
    return out


SEEDS = "seeds"  # the plan's replicate count (design.py makes the runs, analyze/ averages over them)


def norm(text: str) -> str:
    """Header / key normal form: case, dots, underscores, hyphens and spacing do not matter."""
    return re.sub(r"\s+", " ", re.sub(r"[._-]", " ", text.strip().lower())).strip()


def _index(settings) -> dict[str, Setting]:
    out: dict[str, Setting] = {}
    for s in settings:
        for n in (s.key, s.name, *s.aliases):
            out.setdefault(norm(n), s)
    return out


# non-evaluation names win where both groups use one ("System prompt" is the training one)
_PLAN_INDEX = {**_index([s for s in PLAN_SETTINGS if s.group == EVALUATION]),
               **_index([s for s in PLAN_SETTINGS if s.group != EVALUATION])}
# inside "### Evaluation" the short names win: "System prompt" there is the evaluation's
_EVAL_INDEX = _index([s for s in PLAN_SETTINGS if s.group == EVALUATION]) | {"system prompt": BY_KEY["eval_system_prompt"]}
_RUN_INDEX = _index(RUN_SETTINGS)


def lookup(name: str, *, subsection: str = "") -> Setting | None:
    """The plan setting a Configuration key names (name, alias or setup key), or None."""
    n = norm(name)
    if norm(subsection).startswith("eval"):
        hit = _EVAL_INDEX.get(n)
        if hit:
            return hit
    return _PLAN_INDEX.get(n)


def lookup_column(header: str) -> Setting | None:
    return _RUN_INDEX.get(norm(header))


def suggest(name: str, candidates=None) -> str | None:
    """The nearest valid name, for 'did you mean'."""
    pool = list(candidates) if candidates is not None else [s.name for s in PLAN_SETTINGS]
    by_norm = {norm(c): c for c in pool}
    hit = difflib.get_close_matches(norm(name), list(by_norm), n=1, cutoff=0.6)
    return by_norm[hit[0]] if hit else None


def setup_key_suggestion(key: str) -> str | None:
    hit = difflib.get_close_matches(str(key), [s.key for s in SETUP_SETTINGS], n=1, cutoff=0.6)
    return hit[0] if hit else None


def resolve(key: str, *layers: dict) -> Any:
    """First layer that has the key (run values, then experiment values), else the default."""
    for layer in layers:
        if key in layer and layer[key] is not None:
            return layer[key]
    s = BY_KEY[key]
    if key == "lora_alpha":
        rank = resolve("lora_rank", *layers)
        return float(2 * rank) if rank is not None else None
    default = s.default
    return list(default) if isinstance(default, list) else dict(default) if isinstance(default, dict) else default


def reference_markdown() -> str:
    """skills/scaffold-torchtune/references/setup-fields.md (generated; see tests/experiment)."""
    from .templating import render

    rows = []
    for s in SETTINGS:
        if s.default_note:
            default = s.default_note
        elif s.required and s.default is None:
            default = "required"
        elif s.default is None:
            default = "-"
        else:
            default = s.format(s.default) if s.in_plan else json.dumps(s.default)
        rows.append({"s": s, "default": default, "bounds": bounds_text(s)})
    return render("setup_fields.md.j2", rows=rows, groups=(TRAINING, EVALUATION, OUTPUT, SETUP))


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else format_float(float(v))


def bounds_text(s: Setting) -> str:
    parts = []
    for op, v in ((">=", s.minimum), (">", s.above), ("<=", s.maximum), ("<", s.below)):
        if v is not None:
            parts.append(f"{op} {_num(v)}")
    if s.choices:
        parts.append(" / ".join(s.choices))
    if s.kind == "modules":
        parts.append(", ".join(LORA_MODULES))
    return ", ".join(parts)


if __name__ == "__main__":
    print(reference_markdown(), end="")
