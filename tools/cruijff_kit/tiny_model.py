"""A tiny, randomly initialised Qwen2.5-style Hugging Face checkpoint, made offline.

The demo and the tests need a model that torchtune (FullModelHFCheckpointer + qwen2_5_tokenizer)
and transformers (Qwen2ForCausalLM + Qwen2Tokenizer) both load, without any hub access.
Qwen2.5 is the easiest family for that: its tokenizer is plain byte-level BPE (vocab.json +
merges.txt) and torchtune accepts `special_tokens_path=tokenizer.json`, so the special tokens can
have small ids and the embedding table stays a few hundred rows.

Output: config.json generation_config.json model.safetensors tokenizer.json
tokenizer_config.json vocab.json merges.txt — byte-for-byte identical for the same arguments.

    python -m cruijff_kit.tiny_model OUT_DIR [--seed 0] [--hidden 64] [--layers 2] ...
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

# Qwen2's pre-tokenisation split (torchtune's Qwen2Tokenizer uses the same pattern), so that
# torchtune and transformers cut text into identical pieces.
_PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|"
    r"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Names and order as in the real Qwen2.5; torchtune's Qwen2_5Tokenizer looks several of them up
# by name (<|endoftext|>, <|im_start|>, <|im_end|>, <tool_call>, </tool_call>).
_SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>",
    "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>",
    "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>",
    "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>",
)

# ChatML WITHOUT Qwen's default system prompt: torchtune's Qwen2_5Tokenizer adds none, so this
# keeps the prompt transformers builds at eval time a token-exact prefix of the training sequence.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# Enough text for a few hundred BPE merges; the demo task's words are common English words.
_CORPUS = (
    "user\n", "assistant\n", "system\n",
    "the quick brown fox jumps over the lazy dog",
    "apple banana cherry orange grape lemon melon peach pear plum",
    "house garden river mountain forest ocean island desert valley city",
    "Apple Banana Cherry Orange Grape Lemon Melon Peach Pear Plum",
    "House Garden River Mountain Forest Ocean Island Desert Valley City",
    "capitalize the word capitalise input output answer question",
)

# The capitalization blueprint's shipped words, lower-case and Capitalized: with a big enough
# vocab_size each becomes one token in both forms, which a tiny model can learn to map in seconds.
_WORD_LIST = Path(__file__).resolve().parent / "blueprints" / "capitalization" / "words.txt"
_SPECIAL_ROOM = 32  # rows kept free for the special tokens (22 used)


def _corpus() -> list[str]:
    words = []
    if _WORD_LIST.is_file():
        for line in _WORD_LIST.read_text().splitlines():
            words += line.split("#", 1)[0].split()
    # One item per word: the pre-tokenizer would glue a leading space onto words inside a sentence.
    return list(_CORPUS) * 4 + words + [w.capitalize() for w in words]


def _train_tokenizer(out_dir: Path, bpe_vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(
        vocab_size=bpe_vocab_size,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte has a token: nothing is OOV
        special_tokens=[],
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    # Specials after the BPE part, as in real Qwen: torchtune reads them from tokenizer.json's
    # added_tokens, while vocab.json/merges.txt hold only the BPE part.
    tok.add_special_tokens(list(_SPECIAL_TOKENS))
    tok.save(str(out_dir / "tokenizer.json"))
    tok.model.save(str(out_dir))
    return tok


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


def _random_weights(
    *, seed: int, hidden: int, layers: int, heads: int, kv_heads: int, intermediate: int,
    vocab_size: int, embed_std: float,
) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)

    def normal(*shape: int, std: float = 0.02) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * std).contiguous()

    head_dim = hidden // heads
    # HF Qwen2 key names; no lm_head.weight because the head is tied to embed_tokens.
    weights = {
        "model.embed_tokens.weight": normal(vocab_size, hidden, std=embed_std),
        "model.norm.weight": torch.ones(hidden),
    }
    for i in range(layers):
        p = f"model.layers.{i}."
        weights.update(
            {
                p + "self_attn.q_proj.weight": normal(heads * head_dim, hidden),
                p + "self_attn.q_proj.bias": torch.zeros(heads * head_dim),
                p + "self_attn.k_proj.weight": normal(kv_heads * head_dim, hidden),
                p + "self_attn.k_proj.bias": torch.zeros(kv_heads * head_dim),
                p + "self_attn.v_proj.weight": normal(kv_heads * head_dim, hidden),
                p + "self_attn.v_proj.bias": torch.zeros(kv_heads * head_dim),
                p + "self_attn.o_proj.weight": normal(hidden, heads * head_dim),
                p + "mlp.gate_proj.weight": normal(intermediate, hidden),
                p + "mlp.up_proj.weight": normal(intermediate, hidden),
                p + "mlp.down_proj.weight": normal(hidden, intermediate),
                p + "input_layernorm.weight": torch.ones(hidden),
                p + "post_attention_layernorm.weight": torch.ones(hidden),
            }
        )
    return weights


def make_tiny_model(
    out_dir: str | Path,
    *,
    seed: int = 0,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int = 256,
    vocab_size: int = 512,
    embed_std: float = 0.3,
) -> Path:
    """Write the checkpoint to `out_dir` (created if needed) and return its path.

    `embed_std` is large on purpose: the embeddings are tied to the output head and frozen
    under LoRA, and with the usual 0.02 the logits stay so small that the model can never
    become confident (the loss plateaus near ln(vocab)).
    """
    if hidden % heads or heads % kv_heads:
        raise ValueError(f"hidden ({hidden}) must divide by heads ({heads}), heads by kv_heads ({kv_heads})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    tok = _train_tokenizer(out, vocab_size - _SPECIAL_ROOM)
    n_tokens = tok.get_vocab_size(with_added_tokens=True)
    if n_tokens > vocab_size:
        raise ValueError(f"vocab_size {vocab_size} is smaller than the tokenizer ({n_tokens} tokens)")
    endoftext, im_end = tok.token_to_id("<|endoftext|>"), tok.token_to_id("<|im_end|>")

    _write_json(
        out / "tokenizer_config.json",
        {
            "tokenizer_class": "Qwen2Tokenizer",
            "bos_token": None,
            "eos_token": "<|im_end|>",
            "pad_token": "<|endoftext|>",
            "unk_token": None,
            "add_prefix_space": False,
            "errors": "replace",
            "clean_up_tokenization_spaces": False,
            "split_special_tokens": False,
            "model_max_length": 512,
            "chat_template": CHAT_TEMPLATE,
        },
    )
    _write_json(
        out / "config.json",
        {
            "architectures": ["Qwen2ForCausalLM"],
            "model_type": "qwen2",
            "vocab_size": vocab_size,
            "hidden_size": hidden,
            "intermediate_size": intermediate,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "num_key_value_heads": kv_heads,
            "head_dim": hidden // heads,
            "hidden_act": "silu",
            "max_position_embeddings": 512,
            "max_window_layers": layers,
            "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0,
            "rope_scaling": None,
            "attention_dropout": 0.0,
            "initializer_range": 0.02,
            "tie_word_embeddings": True,
            "use_cache": True,
            "use_sliding_window": False,
            "sliding_window": None,
            "bos_token_id": endoftext,
            "eos_token_id": im_end,
            "torch_dtype": "float32",
        },
    )
    _write_json(
        out / "generation_config.json",
        {"bos_token_id": endoftext, "eos_token_id": [im_end, endoftext], "pad_token_id": endoftext},
    )
    weights = _random_weights(
        seed=seed, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads,
        intermediate=intermediate, vocab_size=vocab_size, embed_std=embed_std,
    )
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cruijff_kit.tiny_model", description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--intermediate", type=int, default=256)
    ap.add_argument("--vocab-size", type=int, default=512)
    ap.add_argument("--embed-std", type=float, default=0.3)
    a = ap.parse_args(argv)
    out = make_tiny_model(
        a.out_dir, seed=a.seed, hidden=a.hidden, layers=a.layers, heads=a.heads, kv_heads=a.kv_heads,
        intermediate=a.intermediate, vocab_size=a.vocab_size, embed_std=a.embed_std,
    )
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
