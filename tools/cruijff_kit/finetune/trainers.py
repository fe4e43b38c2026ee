"""Which trainer prepares a run's model: torchtune (its builders) or TRL + PEFT (what transformers loads).

The choice follows the model's own config.json: `model_type` with a torchtune 0.6.1 builder
(finetune/models.py) -> torchtune, so nothing an existing plan does changes; a family only TRL
can train (Qwen3, Gemma 3 text) -> trl. The plan may force or vary it (setting `trainer`,
"Model preparation"). An architecture neither trainer covers is refused with what is supported.

TRL families carry what the recipe needs per family: the HF names of the LoRA target modules and
the chat-template variables ck pins (Qwen3's thinking mode off), so training and evaluation render
one prompt. Families torchtune also has keep ck's torchtune prompt format under TRL (identical
token ids across trainers: finetune/prompt_format.py).

Pure Python (json + pathlib): the CLI imports this at start-up.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cruijff_kit.errors import CkError
from cruijff_kit.finetune.models import SUPPORTED_ARCHITECTURES, known_model_names

TORCHTUNE, TRL = "torchtune", "trl"
TRAINERS = (TORCHTUNE, TRL)

# ck's LoRA module names (settings.LORA_MODULES, torchtune's) -> the HF projection names
HF_ATTENTION = {"q_proj": "q_proj", "k_proj": "k_proj", "v_proj": "v_proj", "output_proj": "o_proj"}
HF_MLP = ("gate_proj", "up_proj", "down_proj")

# the marker every pinned template starts with (the eval provider checks it is the one it was given)
PIN_MARKER = "{#- ck: the model's own chat template, variables pinned:"


@dataclass(frozen=True)
class TrlFamily:
    model_type: str
    architectures: tuple[str, ...]
    pins: tuple[tuple[str, str], ...] = ()   # jinja variable -> pinned value (jinja literal)
    system_prompt: str = "system turn"       # how the family's template renders a system prompt
    # None: the family's own template, pinned; else ck's torchtune format of that name (same ids as torchtune)
    ck_format: bool = False


TRL_FAMILIES: dict[str, TrlFamily] = {
    "qwen3": TrlFamily("qwen3", ("Qwen3ForCausalLM",), pins=(("enable_thinking", "false"),)),
    "gemma3_text": TrlFamily("gemma3_text", ("Gemma3ForCausalLM",),
                             system_prompt="folded into the first user turn"),
    # torchtune's families, trained by TRL in ck's torchtune prompt format
    "qwen2": TrlFamily("qwen2", ("Qwen2ForCausalLM",), ck_format=True),
    "llama": TrlFamily("llama", ("LlamaForCausalLM",), ck_format=True),
    "mistral": TrlFamily("mistral", ("MistralForCausalLM",), ck_format=True),
}


def read_config(model_dir: str | Path) -> dict | None:
    """config.json of a checkpoint directory, or None when there is none (a login node may not see it)."""
    path = Path(model_dir).expanduser() / "config.json"
    if not path.is_file():
        return None
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CkError(f"cannot read JSON: {e}", file=path) from e
    if not isinstance(cfg, dict):
        raise CkError("config.json is not a JSON object", file=path)
    return cfg


def model_type(model_dir: str | Path) -> str | None:
    cfg = read_config(model_dir)
    return None if cfg is None else str(cfg.get("model_type", "")).lower()


def supported_text() -> str:
    return (f"torchtune: {', '.join(SUPPORTED_ARCHITECTURES)}; "
            f"trl: {', '.join(sorted(TRL_FAMILIES))}")


def trainers_for(model_dir: str | Path, name: str | None = None) -> tuple[str, ...]:
    """The trainers that can train this checkpoint (torchtune first: it is the default where it can)."""
    cfg = read_config(model_dir)
    if cfg is None:
        # no config.json here: a well-known name is torchtune's (named builder); anything else is
        # decided where the weights are (the scaffold refuses then, as before)
        return (TORCHTUNE,) if (name or Path(model_dir).name).lower() in known_model_names() else (TORCHTUNE, TRL)
    mt = str(cfg.get("model_type", "")).lower()
    if not mt:  # a config.json without model_type: torchtune's resolver says what is missing, as before
        return (TORCHTUNE,)
    archs = cfg.get("architectures") or []
    out = []
    if mt in SUPPORTED_ARCHITECTURES:
        out.append(TORCHTUNE)
    fam = TRL_FAMILIES.get(mt)
    if fam is not None and (not archs or any(a in fam.architectures for a in archs)):
        out.append(TRL)
    return tuple(out)


def default_trainer(model_dir: str | Path, name: str | None = None, *, where=None, line=None) -> str:
    """The trainer ck picks for a checkpoint; CkError when neither can train it."""
    able = trainers_for(model_dir, name)
    if not able:
        raise CkError(_unsupported(model_dir), file=where or Path(model_dir) / "config.json", line=line,
                      field="model_type", hint="supported: " + supported_text())
    return able[0]


def check_trainer(trainer: str, model_dir: str | Path, name: str | None = None, *, where=None, line=None,
                  fld: str = "Model preparation") -> None:
    """Refuse a trainer that cannot train this checkpoint (named in the plan, or forced)."""
    able = trainers_for(model_dir, name)
    if trainer in able:
        return
    if not able:
        raise CkError(_unsupported(model_dir), file=where or Path(model_dir) / "config.json", line=line,
                      field="model_type", hint="supported: " + supported_text())
    mt = model_type(model_dir) or "?"
    raise CkError(f"{trainer} cannot train {Path(model_dir).name} (architecture {mt!r})", file=where, line=line,
                  field=fld, hint=f"use {' or '.join(able)} (supported: {supported_text()})")


def _unsupported(model_dir) -> str:
    cfg = read_config(model_dir) or {}
    mt = str(cfg.get("model_type", "")) or "(no model_type)"
    archs = ", ".join(map(str, cfg.get("architectures") or [])) or "no architectures"
    return f"unsupported architecture {mt!r} ({archs}): neither torchtune nor trl can train it"


def trainer_of(exp, run) -> str:
    """The trainer of a fine-tuned run: its own value, the plan's Configuration, a single tool named in
    the plan's Tools section, else the model's default."""
    value = exp.value("trainer", run)
    if value:
        return value
    tools = [t.strip() for t in str(exp.tools.preparation).split(",") if t.strip()]
    if len(tools) == 1 and tools[0] in TRAINERS and tools[0] != TORCHTUNE:
        return tools[0]
    return default_trainer(exp.model_path(run.model), run.model)


def lora_target_modules(attn: list[str], mlp: bool, output: bool, tied: bool) -> list[str]:
    """ck's LoRA settings as PEFT target_modules (HF names)."""
    out = [HF_ATTENTION[m] for m in attn]
    if mlp:
        out += list(HF_MLP)
    if output and not tied:
        out.append("lm_head")
    return out


def pinned_template(template: str, fam: TrlFamily) -> str:
    """The family's own chat template with its variables pinned: a top-level `set` shadows whatever
    a caller passes (Qwen3's enable_thinking), so every renderer gets one prompt."""
    pins = "".join(f"{{%- set {k} = {v} %}}" for k, v in fam.pins)
    said = ", ".join(f"{k}={v}" for k, v in fam.pins) or "none"
    return f"{PIN_MARKER} {said} #}}" + pins + template


def own_template(model_dir: str | Path) -> str | None:
    """The chat template a checkpoint ships: tokenizer_config.json's, else chat_template.jinja."""
    d = Path(model_dir)
    tc = d / "tokenizer_config.json"
    if tc.is_file():
        try:
            t = json.loads(tc.read_text()).get("chat_template")
        except (OSError, ValueError) as e:
            raise CkError(f"cannot read JSON: {e}", file=tc) from e
        if isinstance(t, str) and t:
            return t
    jinja = d / "chat_template.jinja"
    return jinja.read_text() if jinja.is_file() else None


def prompt_format_of(model_dir: str | Path, name: str | None = None):
    """The one prompt format a model is trained and evaluated in, whichever trainer: ck's torchtune
    format for torchtune's families (token-identical across trainers), else the model's own chat
    template with the family's variables pinned (format name "pinned")."""
    from cruijff_kit.finetune.models import resolve_model
    from cruijff_kit.finetune.prompt_format import PromptFormat

    mt = model_type(model_dir)
    if mt is None or mt in SUPPORTED_ARCHITECTURES:
        fmt = resolve_model(str(model_dir), name).prompt_format
        if fmt is None:
            raise CkError(f"ck has no chat template reproducing the training format of {Path(model_dir).name}",
                          file=model_dir, field="model_checkpoint")
        return fmt
    fam = TRL_FAMILIES.get(mt)
    template = own_template(model_dir) if fam else None
    if fam is None or template is None:
        raise CkError(f"no chat template for {Path(model_dir).name} ({mt!r})" if fam else _unsupported(model_dir),
                      file=Path(model_dir) / "tokenizer_config.json", field="chat_template",
                      hint="a checkpoint ck trains with TRL must ship its chat template")
    return PromptFormat(PINNED, pinned_template(template, fam))


PINNED = "pinned"


def layout_problems(model_dir: str | Path, name: str | None = None) -> list[str]:
    """What would stop ck from training and evaluating this checkpoint with its trainer (`ck doctor`)."""
    from cruijff_kit.finetune import models

    mt = model_type(model_dir)
    if mt is None or mt in SUPPORTED_ARCHITECTURES or not mt:
        return models.layout_problems(model_dir, name)
    try:
        prompt_format_of(model_dir, name)
    except CkError as e:
        return [str(e)]
    return []
