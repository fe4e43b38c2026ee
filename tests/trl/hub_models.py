"""Format-faithful, shrunk Qwen3-0.6B and Gemma-3-1B(-it) checkpoints, built locally (no hub).

Faithful where the prompt and the loading code look: config.json keys and values of the hub repos
(Qwen/Qwen3-0.6B: Qwen3ForCausalLM, tied embeddings, head_dim 128 != hidden/heads, vocab 151936,
bos 151643 / eos 151645; google/gemma-3-1b-it: Gemma3ForCausalLM, model_type gemma3_text,
head_dim 256, query_pre_attn_scalar, sliding_window 512, vocab 262144, bos 2, eos [1, 106]), the
special-token ids (Qwen: <|im_start|> 151644, <|im_end|> 151645, <think> 151667, </think> 151668;
Gemma: <pad> 0, <eos> 1, <bos> 2, <start_of_turn> 105, <end_of_turn> 106), tokenizer_config.json
fields, and the chat templates (hub/*.jinja: Qwen3's thinking-mode template, Gemma 3's that folds a
system prompt into the first user turn). Shrunk: 2 layers, tiny hidden sizes (head_dim kept as its
own key). The templates were taken from copies of the hub files vendored in public repositories
(looked up, not written from memory); the config values from the same kind of copies.
"""
from __future__ import annotations

import json
from pathlib import Path

from tests.families.checkpoints import (CORPUS, QWEN25_SPECIALS, QWEN_TEXT_LIKE, qwen_bpe_tokenizer, 
                                        qwen_tokenizer_config)

HUB = Path(__file__).parent / "hub"
QWEN3_SPECIALS = QWEN25_SPECIALS + ("<tool_response>", "</tool_response>", "<think>", "</think>")
QWEN3_VOCAB = 151936
GEMMA3_VOCAB = 262144


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def _save_random_weights(out: Path, config: dict, seed: int) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    cfg = AutoConfig.from_pretrained(str(out))
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    model.save_pretrained(str(out / "_w"))
    for f in (out / "_w").iterdir():
        if f.suffix == ".safetensors" or f.name.endswith(".index.json"):
            f.rename(out / f.name)
    for f in (out / "_w").iterdir():
        f.unlink()
    (out / "_w").rmdir()
    _write_json(out / "config.json", config)  # the hub's file, not transformers' rewrite


def make_qwen3_06b(out: Path, *, hidden: int = 32, layers: int = 2, heads: int = 4, kv_heads: int = 2,
                   head_dim: int = 16, inter: int = 64, seed: int = 11) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    text_like = QWEN_TEXT_LIKE + ("<think", "</think")
    tok = qwen_bpe_tokenizer(out, QWEN3_SPECIALS, text_like)
    assert tok.token_to_id("<|im_end|>") == 151645 and tok.token_to_id("<think>") == 151667
    assert tok.token_to_id("</think>") == 151668
    tok.save(str(out / "tokenizer.json"))
    _write_json(out / "tokenizer_config.json",
                qwen_tokenizer_config(QWEN3_SPECIALS, (HUB / "qwen3_chat_template.jinja").read_text(), text_like))
    config = {
        "architectures": ["Qwen3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": head_dim, "hidden_act": "silu",
        "hidden_size": hidden, "initializer_range": 0.02, "intermediate_size": inter,
        "max_position_embeddings": 40960, "max_window_layers": layers, "model_type": "qwen3",
        "num_attention_heads": heads, "num_hidden_layers": layers, "num_key_value_heads": kv_heads,
        "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 1000000, "sliding_window": None,
        "tie_word_embeddings": True, "torch_dtype": "bfloat16", "transformers_version": "4.51.0",
        "use_cache": True, "use_sliding_window": False, "vocab_size": QWEN3_VOCAB,
    }
    _write_json(out / "config.json", config)
    _write_json(out / "generation_config.json", {
        "bos_token_id": 151643, "do_sample": True, "eos_token_id": [151645, 151643], "pad_token_id": 151643,
        "temperature": 0.6, "top_k": 20, "top_p": 0.95, "transformers_version": "4.51.0"})
    _save_random_weights(out, config, seed)
    return out


GEMMA_CONTROL = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "[@BOS@]") + tuple(
    f"<unused{i}>" for i in range(99)) + ("<start_of_turn>", "<end_of_turn>")


def make_gemma3_1b_it(out: Path, *, hidden: int = 32, layers: int = 2, heads: int = 4, kv_heads: int = 1,
                      head_dim: int = 16, inter: int = 64, seed: int = 12) -> Path:
    """Gemma 3's sentencepiece-style vocabulary (▁ for spaces, byte fallback) with its control ids."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors

    out.mkdir(parents=True, exist_ok=True)
    assert GEMMA_CONTROL.index("<start_of_turn>") == 105 and GEMMA_CONTROL.index("<end_of_turn>") == 106
    pieces = list(GEMMA_CONTROL) + [f"<0x{b:02X}>" for b in range(256)]
    text = CORPUS.replace(" ", "▁")
    chars = sorted(set(text) | set("▁\nABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.,:;!?'\"-"))
    pieces += [c for c in chars if c not in pieces]
    # fillers (supplementary-plane characters) up to the real vocabulary size
    fill = (chr(c) for c in range(0x20000, 0x80000))
    pieces += [c for _, c in zip(range(GEMMA3_VOCAB - len(pieces)), fill)]
    assert len(pieces) == GEMMA3_VOCAB
    vocab = {p: i for i, p in enumerate(pieces)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in GEMMA_CONTROL[:6]]
                           + [AddedToken(s, special=True, normalized=False) for s in GEMMA_CONTROL[105:107]])
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", pair="<bos> $A $B",
                                                       special_tokens=[("<bos>", 2)])
    assert tok.token_to_id("<end_of_turn>") == 106
    tok.save(str(out / "tokenizer.json"))
    added = {str(i): {"content": GEMMA_CONTROL[i], "lstrip": False, "normalized": False, "rstrip": False,
                      "single_word": False, "special": True} for i in (*range(6), 105, 106)}
    _write_json(out / "tokenizer_config.json", {
        "add_bos_token": True, "add_eos_token": False, "added_tokens_decoder": added,
        "boi_token": "<start_of_image>", "bos_token": "<bos>",
        "chat_template": (HUB / "gemma3_chat_template.jinja").read_text(),
        "clean_up_tokenization_spaces": False, "eoi_token": "<end_of_image>", "eos_token": "<eos>",
        "image_token": "<image_soft_token>", "model_max_length": 1000000000000000019884624838656,
        "pad_token": "<pad>", "sp_model_kwargs": None, "spaces_between_special_tokens": False,
        "tokenizer_class": "GemmaTokenizer", "unk_token": "<unk>", "use_default_system_prompt": False,
    })
    _write_json(out / "special_tokens_map.json", {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>",
                                                  "unk_token": "<unk>"})
    config = {
        "architectures": ["Gemma3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "attn_logit_softcapping": None, "bos_token_id": 2, "cache_implementation": "hybrid",
        "eos_token_id": [1, 106], "final_logit_softcapping": None, "head_dim": head_dim,
        "hidden_activation": "gelu_pytorch_tanh", "hidden_size": hidden, "initializer_range": 0.02,
        "intermediate_size": inter, "max_position_embeddings": 32768, "model_type": "gemma3_text",
        "num_attention_heads": heads, "num_hidden_layers": layers, "num_key_value_heads": kv_heads,
        "pad_token_id": 0, "query_pre_attn_scalar": head_dim, "rms_norm_eps": 1e-06,
        "rope_local_base_freq": 10000, "rope_scaling": None, "rope_theta": 1000000, "sliding_window": 512,
        "sliding_window_pattern": 6, "torch_dtype": "bfloat16", "transformers_version": "4.50.0.dev0",
        "use_cache": True, "vocab_size": GEMMA3_VOCAB,
    }
    _write_json(out / "config.json", config)
    _write_json(out / "generation_config.json", {"bos_token_id": 2, "cache_implementation": "hybrid",
                                                 "eos_token_id": [1, 106], "pad_token_id": 0, "top_k": 64,
                                                 "top_p": 0.95, "transformers_version": "4.50.0.dev0"})
    _save_random_weights(out, config, seed)
    return out
