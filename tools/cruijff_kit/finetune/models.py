"""Model registry: a Hugging Face checkpoint directory -> the torchtune components that train it.

Choice: when the directory has a config.json, it is the truth (dims, rope, tied embeddings),
whatever the model is called, so the tiny demo model, a well-known model and a fine-tuned
derivative take the same code path through torchtune's *generic* LoRA builders
(`lora_qwen2`, `lora_llama3`, `lora_llama3_1`, `lora_llama3_2`, `lora_llama2`, `lora_mistral`).
Only when config.json is missing (e.g. scaffolding on a login node that cannot see the weights)
does a well-known name map to torchtune's *named* builder (`lora_llama3_2_1b`, ...).

Pure Python (json + pathlib): the CLI imports this at start-up.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cruijff_kit.errors import CkError
from cruijff_kit.finetune.prompt_format import PromptFormat, format_for, is_mistral_v3

SUPPORTED_ARCHITECTURES = ("qwen2", "llama", "mistral")

# Canonical vocabularies: a checkpoint with another size has its own special-token ids, so the
# tokenizer must read them from tokenizer.json instead of torchtune's built-in table.
_LLAMA3_VOCAB = 128256

_CHECKPOINTER = "torchtune.training.FullModelHFCheckpointer"


@dataclass(frozen=True)
class ModelSpec:
    """What finetune.yaml needs about one model. Dicts are torchtune components (`_component_` + args)."""

    name: str
    family: str  # qwen2 | llama3 | llama2 | mistral
    model_dir: str
    model: dict[str, Any]  # builder + architecture args; LoRA args are added from the experiment
    tokenizer: dict[str, Any]  # builder + paths; max_seq_len is set by the config renderer
    checkpointer: dict[str, Any]
    tied_embeddings: bool
    source: str  # "config.json" or "named builder"
    notes: tuple[str, ...] = field(default=())
    # the one prompt format training and evaluation share (None: ck has no inference template for it)
    prompt_format: PromptFormat | None = None

    @property
    def lora_on_output_allowed(self) -> bool:
        # With tied embeddings the output projection IS the embedding table: no separate LoRA.
        return not self.tied_embeddings


@dataclass(frozen=True)
class _Known:
    builder: str
    family: str
    tied: bool
    files: tuple[str, ...]
    model_type: str
    # builder arguments when the named builder does not fit (Mistral v0.3: torchtune's
    # lora_mistral_7b has v0.1's 32000-token vocabulary)
    args: tuple[tuple[str, Any], ...] = ()
    mistral_v3: bool = False


# mistralai/Mistral-7B-(Instruct-)v0.3 config.json, as the generic lora_mistral builder's arguments
_MISTRAL_V3_ARGS = (("vocab_size", 32768), ("num_layers", 32), ("num_heads", 32), ("num_kv_heads", 8),
                    ("embed_dim", 4096), ("intermediate_dim", 14336), ("max_seq_len", 32768),
                    ("attn_dropout", 0.0), ("norm_eps", 1e-5), ("rope_base", 1_000_000))


def _shards(n: int) -> tuple[str, ...]:
    return tuple(f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1))


# Well-known names (lower-case, as in the Hugging Face repo name) -> torchtune named builders.
_KNOWN: dict[str, _Known] = {
    "llama-3.2-1b-instruct": _Known("torchtune.models.llama3_2.lora_llama3_2_1b", "llama3", True, ("model.safetensors",), "LLAMA3_2"),
    "llama-3.2-1b": _Known("torchtune.models.llama3_2.lora_llama3_2_1b", "llama3", True, ("model.safetensors",), "LLAMA3_2"),
    "llama-3.2-3b-instruct": _Known("torchtune.models.llama3_2.lora_llama3_2_3b", "llama3", True, _shards(2), "LLAMA3_2"),
    "llama-3.2-3b": _Known("torchtune.models.llama3_2.lora_llama3_2_3b", "llama3", True, _shards(2), "LLAMA3_2"),
    "llama-3.1-8b-instruct": _Known("torchtune.models.llama3_1.lora_llama3_1_8b", "llama3", False, _shards(4), "LLAMA3"),
    "llama-3.1-8b": _Known("torchtune.models.llama3_1.lora_llama3_1_8b", "llama3", False, _shards(4), "LLAMA3"),
    "llama-3.1-70b-instruct": _Known("torchtune.models.llama3_1.lora_llama3_1_70b", "llama3", False, _shards(30), "LLAMA3"),
    "llama-3.1-70b": _Known("torchtune.models.llama3_1.lora_llama3_1_70b", "llama3", False, _shards(30), "LLAMA3"),
    # torchtune's lora_llama3_3_70b is lora_llama3_1_70b (same architecture and tokenizer)
    "llama-3.3-70b-instruct": _Known("torchtune.models.llama3_3.lora_llama3_3_70b", "llama3", False, _shards(30), "LLAMA3"),
    "meta-llama-3-8b-instruct": _Known("torchtune.models.llama3.lora_llama3_8b", "llama3", False, _shards(4), "LLAMA3"),
    "meta-llama-3-8b": _Known("torchtune.models.llama3.lora_llama3_8b", "llama3", False, _shards(4), "LLAMA3"),
    "qwen2.5-0.5b-instruct": _Known("torchtune.models.qwen2_5.lora_qwen2_5_0_5b", "qwen2", True, ("model.safetensors",), "QWEN2"),
    "qwen2.5-0.5b": _Known("torchtune.models.qwen2_5.lora_qwen2_5_0_5b", "qwen2", True, ("model.safetensors",), "QWEN2"),
    "qwen2.5-1.5b-instruct": _Known("torchtune.models.qwen2_5.lora_qwen2_5_1_5b_instruct", "qwen2", True, ("model.safetensors",), "QWEN2"),
    "qwen2.5-1.5b": _Known("torchtune.models.qwen2_5.lora_qwen2_5_1_5b_base", "qwen2", True, ("model.safetensors",), "QWEN2"),
    "qwen2.5-3b-instruct": _Known("torchtune.models.qwen2_5.lora_qwen2_5_3b", "qwen2", True, _shards(2), "QWEN2"),
    "qwen2.5-3b": _Known("torchtune.models.qwen2_5.lora_qwen2_5_3b", "qwen2", True, _shards(2), "QWEN2"),
    "qwen2.5-7b-instruct": _Known("torchtune.models.qwen2_5.lora_qwen2_5_7b_instruct", "qwen2", False, _shards(4), "QWEN2"),
    "qwen2.5-7b": _Known("torchtune.models.qwen2_5.lora_qwen2_5_7b_base", "qwen2", False, _shards(4), "QWEN2"),
    "qwen2.5-14b-instruct": _Known("torchtune.models.qwen2_5.lora_qwen2_5_14b_instruct", "qwen2", False, _shards(8), "QWEN2"),
    "qwen2.5-32b-instruct": _Known("torchtune.models.qwen2_5.lora_qwen2_5_32b_instruct", "qwen2", False, _shards(17), "QWEN2"),
    "mistral-7b-instruct-v0.3": _Known("torchtune.models.mistral.lora_mistral", "mistral", False, _shards(3), "MISTRAL",
                                       _MISTRAL_V3_ARGS, mistral_v3=True),
    "mistral-7b-v0.3": _Known("torchtune.models.mistral.lora_mistral", "mistral", False, _shards(3), "MISTRAL",
                              _MISTRAL_V3_ARGS, mistral_v3=True),
    "mistral-7b-instruct-v0.2": _Known("torchtune.models.mistral.lora_mistral_7b", "mistral", False, _shards(3), "MISTRAL"),
    "mistral-7b-v0.1": _Known("torchtune.models.mistral.lora_mistral_7b", "mistral", False, _shards(2), "MISTRAL"),
}


def known_model_names() -> list[str]:
    return sorted(_KNOWN)


def resolve_model(model_path: str, name: str | None = None) -> ModelSpec:
    """The torchtune model/tokenizer/checkpointer for the checkpoint at `model_path`.

    `name` (default: the directory's name) is only used when there is no config.json.
    Raises CkError for an unsupported architecture, a missing directory of an unknown model,
    or a directory without weights.
    """
    model_dir = Path(model_path)
    name = name or model_dir.name
    config_file = model_dir / "config.json"
    if config_file.is_file():
        return _from_config(model_dir, name, _read_json(config_file))
    known = _KNOWN.get(name.lower())
    if known is None:
        raise CkError(
            f"no config.json in {model_dir} and {name!r} is not a well-known model",
            file=model_dir,
            field="model_checkpoint",
            hint="point at a Hugging Face checkpoint directory (with config.json), or use one of: "
            + ", ".join(known_model_names()),
        )
    return _from_named(model_dir, name, known)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CkError(f"cannot read JSON: {e}", file=path) from e


def _from_named(model_dir: Path, name: str, known: _Known) -> ModelSpec:
    files = _checkpoint_files(model_dir) if model_dir.is_dir() else list(known.files)
    tokenizer = _check_tokenizer_files(
        _tokenizer(known.family, model_dir, custom_vocab=False, mistral_v3=known.mistral_v3), model_dir)
    vocab = dict(known.args).get("vocab_size")
    return ModelSpec(
        name=name,
        family=known.family,
        model_dir=str(model_dir),
        model={"_component_": known.builder, **dict(known.args)},
        tokenizer=tokenizer,
        checkpointer=_checkpointer(model_dir, files, known.model_type),
        tied_embeddings=known.tied,
        source="named builder",
        notes=(f"{model_dir}/config.json not found: using torchtune's {known.builder}",),
        prompt_format=format_for(known.family, model_dir, 32768 if known.mistral_v3 else vocab),
    )


def _from_config(model_dir: Path, name: str, cfg: dict) -> ModelSpec:
    arch = str(cfg.get("model_type", "")).lower()
    where = model_dir / "config.json"
    if arch not in SUPPORTED_ARCHITECTURES:
        raise CkError(
            f"unsupported architecture {arch or '(no model_type)'!r}",
            file=where,
            field="model_type",
            hint="supported architectures: " + ", ".join(SUPPORTED_ARCHITECTURES),
        )
    dims = _dims(cfg, where)
    tied = bool(cfg.get("tie_word_embeddings", False))
    files = _checkpoint_files(model_dir)
    notes: list[str] = []

    if arch == "qwen2":
        family, model_type = "qwen2", "QWEN2"
        model = {
            "_component_": "torchtune.models.qwen2.lora_qwen2",
            **dims,
            "rope_base": float(cfg.get("rope_theta", 1_000_000.0)),
            "tie_word_embeddings": tied,
        }
    elif arch == "mistral":
        family, model_type = "mistral", "MISTRAL"
        if tied:
            raise CkError("tied embeddings are not supported for mistral by torchtune", file=where, field="tie_word_embeddings")
        model = {"_component_": "torchtune.models.mistral.lora_mistral", **dims, "rope_base": _int_if_whole(cfg.get("rope_theta", 10_000))}
        if cfg.get("sliding_window"):
            notes.append("torchtune's mistral has no sliding-window attention; full attention is used")
    else:
        family, model_type, model = _llama(model_dir, cfg, dims, tied, where)

    mistral_v3 = family == "mistral" and is_mistral_v3(model_dir, int(cfg["vocab_size"]))
    return ModelSpec(
        name=name,
        family=family,
        model_dir=str(model_dir),
        model=model,
        tokenizer=_check_tokenizer_files(
            _tokenizer(family, model_dir, custom_vocab=_custom_vocab(family, cfg), mistral_v3=mistral_v3), model_dir),
        checkpointer=_checkpointer(model_dir, files, model_type),
        tied_embeddings=tied,
        source="config.json",
        notes=tuple(notes),
        prompt_format=format_for(family, model_dir, int(cfg["vocab_size"])),
    )


def _llama(model_dir: Path, cfg: dict, dims: dict, tied: bool, where: Path) -> tuple[str, str, dict]:
    if not _is_tiktoken(_llama_tokenizer_file(model_dir)):
        if tied or cfg.get("rope_scaling"):
            raise CkError("a Llama-2 style checkpoint with tied embeddings or rope scaling is not supported", file=where)
        return "llama2", "LLAMA2", {"_component_": "torchtune.models.llama2.lora_llama2", **dims}

    rope_base = _int_if_whole(cfg.get("rope_theta", 500_000))
    scaling = cfg.get("rope_scaling") or {}
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind not in (None, "llama3"):
        raise CkError(f"rope_scaling type {kind!r} is not supported (only 'llama3')", file=where, field="rope_scaling")
    # torchtune's Llama3ScaledRoPE is the identity for factor 1, so tied models without scaling
    # can still use lora_llama3_2 (the only llama builder with tied embeddings).
    factor = _int_if_whole(scaling.get("factor", 1)) if kind else 1
    if tied:
        builder, extra, model_type = "torchtune.models.llama3_2.lora_llama3_2", {"scale_factor": factor, "tie_word_embeddings": True}, "LLAMA3_2"
    elif kind:
        builder, extra, model_type = "torchtune.models.llama3_1.lora_llama3_1", {"scale_factor": factor}, "LLAMA3"
    else:
        builder, extra, model_type = "torchtune.models.llama3.lora_llama3", {}, "LLAMA3"
    return "llama3", model_type, {"_component_": builder, **dims, "rope_base": rope_base, **extra}


def _dims(cfg: dict, where: Path) -> dict[str, Any]:
    required = ("vocab_size", "num_hidden_layers", "num_attention_heads", "hidden_size", "intermediate_size")
    missing = [k for k in required if k not in cfg]
    if missing:
        raise CkError("config.json lacks " + ", ".join(missing), file=where, field=missing[0])
    heads = int(cfg["num_attention_heads"])
    hidden = int(cfg["hidden_size"])
    head_dim = cfg.get("head_dim")
    if head_dim is not None and int(head_dim) * heads != hidden:
        # torchtune's generic builders derive head_dim = embed_dim // num_heads.
        raise CkError(
            f"head_dim {head_dim} x {heads} heads != hidden_size {hidden}; torchtune's builders cannot express it",
            file=where,
            field="head_dim",
        )
    return {
        "vocab_size": int(cfg["vocab_size"]),
        "num_layers": int(cfg["num_hidden_layers"]),
        "num_heads": heads,
        "num_kv_heads": int(cfg.get("num_key_value_heads") or heads),
        "embed_dim": hidden,
        "intermediate_dim": int(cfg["intermediate_size"]),
        "max_seq_len": int(cfg.get("max_position_embeddings", 4096)),
        "attn_dropout": float(cfg.get("attention_dropout", 0.0)),
        "norm_eps": float(cfg.get("rms_norm_eps", 1e-5)),
    }


def _int_if_whole(x: Any) -> Any:
    return int(x) if isinstance(x, (int, float)) and float(x).is_integer() else x


def _custom_vocab(family: str, cfg: dict) -> bool:
    if family == "llama3":
        return int(cfg["vocab_size"]) != _LLAMA3_VOCAB
    return family == "qwen2"  # qwen's tokenizer.json always lists its specials: reading them is exact


def _llama_tokenizer_file(model_dir: Path) -> Path:
    original = model_dir / "original" / "tokenizer.model"
    return original if original.is_file() else model_dir / "tokenizer.model"


def _is_tiktoken(path: Path) -> bool:
    """Llama 3 ships a tiktoken BPE file (text: `base64 rank` lines); Llama 2 a sentencepiece protobuf."""
    if not path.is_file():
        return True  # Llama 3 is what people fine-tune today; the tokenizer check below will name the file
    head = path.read_bytes()[:256]
    try:
        first = head.decode("ascii").splitlines()[0].split()
    except (UnicodeDecodeError, IndexError):
        return False
    return len(first) == 2 and first[1].isdigit()


def _tokenizer(family: str, model_dir: Path, *, custom_vocab: bool, mistral_v3: bool = False) -> dict[str, Any]:
    d = model_dir
    if family == "qwen2":
        tj = d / "tokenizer.json"
        # Qwen2.5 added tool-call tokens; torchtune's Qwen2_5Tokenizer requires them by name.
        qwen25 = not tj.is_file() or "<tool_call>" in tj.read_text(errors="replace")
        tok = {
            "_component_": "torchtune.models.qwen2_5.qwen2_5_tokenizer" if qwen25 else "torchtune.models.qwen2.qwen2_tokenizer",
            "path": str(d / "vocab.json"),
            "merges_file": str(d / "merges.txt"),
        }
        if custom_vocab and tj.is_file():
            tok["special_tokens_path"] = str(tj)
        return tok
    if family == "llama3":
        if not (d / "original" / "tokenizer.model").is_file() and ((d / "tokenizer.json").is_file() or not d.is_dir()):
            # a download without original/ (or a directory this machine cannot see: every hub
            # layout has tokenizer.json, not every one has original/): the same ids from tokenizer.json
            return {"_component_": "cruijff_kit.finetune.tokenizers.llama3_hf_tokenizer", "path": str(d / "tokenizer.json")}
        tok = {"_component_": "torchtune.models.llama3.llama3_tokenizer", "path": str(_llama_tokenizer_file(d))}
        if custom_vocab and (d / "tokenizer.json").is_file():
            tok["special_tokens_path"] = str(d / "tokenizer.json")
        return tok
    if family == "llama2":
        return {"_component_": "torchtune.models.llama2.llama2_tokenizer", "path": str(d / "tokenizer.model")}
    if mistral_v3:
        return {"_component_": "cruijff_kit.finetune.tokenizers.mistral_v3_tokenizer", "path": str(d / "tokenizer.model")}
    return {"_component_": "torchtune.models.mistral.mistral_tokenizer", "path": str(d / "tokenizer.model")}


def _check_tokenizer_files(tokenizer: dict[str, Any], model_dir: Path) -> dict[str, Any]:
    """The files the tokenizer component will open must exist (checked where the directory is
    visible; otherwise the job would die on FileNotFoundError after queueing and loading)."""
    if model_dir.is_dir():
        for key in ("path", "merges_file", "special_tokens_path"):
            if key in tokenizer and not Path(tokenizer[key]).is_file():
                raise CkError(f"the tokenizer file {Path(tokenizer[key]).name} is missing", file=tokenizer[key],
                              field="model_checkpoint",
                              hint="download the model's tokenizer files into this directory")
    return tokenizer


def layout_problems(model_dir: str | Path, name: str | None = None) -> list[str]:
    """What would stop ck from training and evaluating this checkpoint (for `ck doctor`)."""
    try:
        spec = resolve_model(str(model_dir), name)
    except CkError as e:
        return [str(e)]
    if spec.prompt_format is None:
        return [f"ck has no chat template reproducing the {spec.family} training format"]
    return []


def _checkpoint_files(model_dir: Path) -> list[str]:
    if not model_dir.is_dir():
        raise CkError("model directory does not exist", file=model_dir, field="model_checkpoint")
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = model_dir / index_name
        if index.is_file():
            weight_map = _read_json(index).get("weight_map") or {}
            if not weight_map:
                raise CkError("index has no weight_map", file=index, field="weight_map")
            return sorted(set(weight_map.values()))
    # adapter_* files sit beside the merged weights in torchtune's epoch_N/ outputs.
    files = sorted(p.name for p in model_dir.glob("*.safetensors") if not p.name.startswith("adapter"))
    if not files:
        files = sorted(p.name for p in model_dir.glob("pytorch_model*.bin"))
    if not files:
        raise CkError(
            "no model weights (*.safetensors or pytorch_model*.bin)",
            file=model_dir,
            field="model_checkpoint",
            hint="download the full Hugging Face checkpoint into this directory",
        )
    return files


def _checkpointer(model_dir: Path, files: list[str], model_type: str) -> dict[str, Any]:
    return {
        "_component_": _CHECKPOINTER,
        "checkpoint_dir": str(model_dir),
        "checkpoint_files": list(files),
        "model_type": model_type,
    }
