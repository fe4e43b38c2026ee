"""One prompt format per run: the token sequence training builds is the one evaluation feeds.

Design choice: ck trains with torchtune's own chat formats (its tested tokenizers and loss masks)
and writes a Jinja chat template that reproduces that format into everything transformers /
inspect load (the fine-tuned checkpoint's tokenizer_config.json, and a tokenizer overlay
directory for the base-model control). The alternative, training with each model's own HF
template with its variables pinned, was rejected: Llama-3.x's template injects a date block
("Today Date: <today>" in 3.2, so the prompt would change every day unless pinned, and a pinned
date is still text the model was never asked to condition on), and Qwen2.5's injects a default
system prompt; both would need a second tokenizer implementation inside torchtune.

The one exception is Mistral v0.3, where torchtune 0.6.1's MistralChatTemplate is wrong for the
model (it writes "[INST]" as plain text; v0.3 has [INST]/[/INST] as control tokens 3 and 4, and
its own template puts the system prompt into the last user turn): there ck trains with the
model's own v0.3 format (cruijff_kit.finetune.tokenizers.mistral_v3_tokenizer) and the template
below is that format.

Every template emits the BOS token itself (as the hub templates do); the text it renders must
therefore be tokenized without added special tokens (inspect: tokenizer_call_args
add_special_tokens=false, set by cruijff_kit.evaluate).

Pure Python: imported by the CLI.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from cruijff_kit.errors import CkError

# torchtune Llama3Tokenizer.tokenize_messages: BOS, then per message
# <|start_header_id|>role<|end_header_id|>\n\n content.strip() <|eot_id|>; no system block unless
# the data has a system message; no date.
LLAMA3_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

# torchtune Qwen2_5Tokenizer.tokenize_messages: <|im_start|>role\n content <|im_end|>\n per message,
# content not stripped, no default system prompt.
CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# Mistral v0.3's own format (its hub template without the tool branches): the system prompt goes
# into the LAST user turn, "[INST]"/"[/INST]" are the control tokens 3/4.
MISTRAL_V3_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content'] %}{%- set loop_messages = messages[1:] %}"
    "{%- else %}{%- set loop_messages = messages %}{%- endif %}"
    "{{- bos_token }}"
    "{%- for message in loop_messages %}"
    "{%- if message['role'] == 'user' %}"
    "{%- if loop.last and system_message is defined %}"
    "{{- '[INST] ' + system_message + '\\n\\n' + message['content'] + '[/INST]' }}"
    "{%- else %}{{- '[INST] ' + message['content'] + '[/INST]' }}{%- endif %}"
    "{%- elif message['role'] == 'assistant' %}{{- ' ' + message['content'] | trim + eos_token }}"
    "{%- else %}{{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}"
    "{%- endif %}"
    "{%- endfor %}"
)


@dataclass(frozen=True)
class PromptFormat:
    name: str
    chat_template: str
    system_prompt_ok: bool = True
    # torchtune tokenizer component replacing the family's default (None: keep it)
    tokenizer_component: str | None = None

    @property
    def template_sha256(self) -> str:
        return hashlib.sha256(self.chat_template.encode()).hexdigest()


FORMATS: dict[str, PromptFormat] = {
    "llama3": PromptFormat("llama3", LLAMA3_TEMPLATE),
    "chatml": PromptFormat("chatml", CHATML_TEMPLATE),
    "mistral_v3": PromptFormat("mistral_v3", MISTRAL_V3_TEMPLATE,
                               tokenizer_component="cruijff_kit.finetune.tokenizers.mistral_v3_tokenizer"),
}

# Files a Hugging Face tokenizer may be loaded from (copied into a tokenizer overlay).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "merges.txt", "special_tokens_map.json",
                   "added_tokens.json")


def is_mistral_v3(model_dir: Path, vocab_size: int | None) -> bool:
    """v0.3 has a 32768 vocabulary with [INST] as control token 3 (v0.1/v0.2: 32000, [INST] is text)."""
    tc = model_dir / "tokenizer_config.json"
    if tc.is_file():
        try:
            added = json.loads(tc.read_text()).get("added_tokens_decoder") or {}
        except (OSError, ValueError):
            added = {}
        if added:
            return (added.get("3") or {}).get("content") == "[INST]"
    return vocab_size == 32768


def format_for(family: str, model_dir: Path, vocab_size: int | None) -> PromptFormat | None:
    """The prompt format of a model family (None: ck has no matching inference template)."""
    if family == "llama3":
        return FORMATS["llama3"]
    if family == "qwen2":
        return FORMATS["chatml"]
    if family == "mistral" and is_mistral_v3(model_dir, vocab_size):
        return FORMATS["mistral_v3"]
    return None


def check_system_prompt(fmt: PromptFormat | None, family: str, system_prompt: str, *, where=None) -> None:
    """Refuse, before anything is queued, a system prompt the training format cannot render."""
    if not system_prompt:
        return
    if fmt is None or not fmt.system_prompt_ok:
        raise CkError(
            f"a system prompt is set but the {family} prompt format ck trains with cannot render one "
            "(torchtune's MistralChatTemplate raises 'System prompts are not supported' at the first batch)",
            file=where, field="system_prompt",
            hint="remove the system prompt, or use a Mistral v0.3 / Llama-3 / Qwen2.5 checkpoint",
        )


def tokenizer_config_with_template(source_dir: Path, fmt: PromptFormat) -> dict:
    """source_dir's tokenizer_config.json with ck's chat template (and the format recorded)."""
    tc = source_dir / "tokenizer_config.json"
    cfg = {}
    if tc.is_file():
        try:
            cfg = json.loads(tc.read_text())
        except (OSError, ValueError) as e:
            raise CkError(f"cannot read JSON: {e}", file=tc) from e
    cfg["chat_template"] = fmt.chat_template
    cfg["ck_prompt_format"] = fmt.name
    return cfg


def write_tokenizer_overlay(source_dir: Path, out_dir: Path, fmt: PromptFormat) -> Path:
    """A directory transformers loads as a tokenizer: source_dir's tokenizer files (symlinked, the
    source is never modified) and a tokenizer_config.json carrying ck's chat template."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        src = source_dir / name
        if src.is_file() and not (out_dir / name).exists():
            (out_dir / name).symlink_to(src.resolve())
    (out_dir / "tokenizer_config.json").write_text(
        json.dumps(tokenizer_config_with_template(source_dir, fmt), indent=2, ensure_ascii=False) + "\n")
    return out_dir


CHECKPOINT_RECORD = "ck_checkpoint.json"


def stamp_checkpoint(checkpoint_dir: Path, base_dir: Path, *, adapter_only: bool) -> PromptFormat | None:
    """Make a ck-written epoch directory carry its training format.

    tokenizer_config.json (torchtune copies the base model's, with the base model's template) gets
    ck's chat template, so transformers / inspect / a deployment load the checkpoint as trained;
    ck_checkpoint.json records the base model's path and the format, so an adapter-only epoch can
    be merged later with both restored.
    """
    from cruijff_kit.finetune.models import resolve_model
    from cruijff_kit.util.fs import atomic_write_text

    fmt = resolve_model(str(base_dir)).prompt_format
    if fmt is not None:
        atomic_write_text(checkpoint_dir / "tokenizer_config.json",
                          json.dumps(tokenizer_config_with_template(checkpoint_dir, fmt), indent=2,
                                     ensure_ascii=False) + "\n")
    record = {"base_model": str(Path(base_dir).resolve()), "adapter_only": adapter_only,
              "prompt_format": fmt.name if fmt else None,
              "chat_template": fmt.chat_template if fmt else None,
              "chat_template_sha256": fmt.template_sha256 if fmt else None}
    atomic_write_text(checkpoint_dir / CHECKPOINT_RECORD, json.dumps(record, indent=2) + "\n")
    return fmt


def read_checkpoint_record(checkpoint_dir: Path) -> dict | None:
    path = Path(checkpoint_dir) / CHECKPOINT_RECORD
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CkError(f"cannot read JSON: {e}", file=path) from e
