"""A tiny Qwen2.5-style Hugging Face checkpoint, made offline, optionally pre-trained to COPY.

The demo and the tests need a model that torchtune (FullModelHFCheckpointer + qwen2_5_tokenizer)
and transformers (Qwen2ForCausalLM + Qwen2Tokenizer) both load, without any hub access, and that
goes through the same prompt path as a real Qwen2.5-Instruct:
- byte-level BPE as Qwen's (vocab.json + merges.txt + tokenizer.json), trained here on a small
  corpus that includes the capitalization blueprint's words in both forms, so with a big enough
  vocab_size every shipped word is ONE token lower-case and Capitalized ("apple", "Apple"), as
  common words are in a real vocabulary;
- the 22 special tokens are Qwen2.5's, by name and order (ids after the BPE part, not 151643..:
  the embedding table stays small, so training on CPU takes seconds);
- tokenizer_config.json carries Qwen2.5-Instruct's real chat template, default system prompt
  included.

`copy=True` makes a BASE model that can generalise what it is fine-tuned on (see copy_weights):
- its embeddings have a case feature, as real LLMs' do: the row of "Apple" is the row of
  "apple" plus one shared "capitalised" vector plus noise (for every word pair of the vocabulary);
- it answers a chat turn by COPYING the user's word, whatever the system message. Nothing is
  capitalised: the base model scores 0 on the capitalization task, and fine-tuning on the train
  words has to learn the capitalisation; because the case feature is shared by all words, what
  LoRA learns on the train words also holds for held-out words.

Output: config.json generation_config.json model.safetensors tokenizer.json
tokenizer_config.json vocab.json merges.txt — byte-for-byte identical for the same arguments
(everything is seeded).

    python -m cruijff_kit.tiny_model OUT_DIR [--seed 0] [--hidden 64] [--vocab-size 512] [--copy] ...
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

# Qwen2's pre-tokenisation split (torchtune's Qwen2Tokenizer uses the same pattern), so that
# torchtune and transformers cut text into identical pieces.
_PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|"
    r"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Names and order as in the real Qwen2.5; torchtune's Qwen2_5Tokenizer looks several of them up
# by name (<|endoftext|>, <|im_start|>, <|im_end|>, <tool_call>, </tool_call>).
SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>",
    "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>",
    "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>",
    "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>",
)

QWEN_DEFAULT_SYSTEM_PROMPT = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

# Qwen2.5-Instruct's chat template (tokenizer_config.json of Qwen/Qwen2.5-*-Instruct), whitespace
# control as in the original: with no system message it inserts QWEN_DEFAULT_SYSTEM_PROMPT, which
# torchtune's Qwen2_5Tokenizer does not, so training and evaluation prompts differ unless the
# plan sets a system prompt (the demo does) or the evaluation side removes the default.
CHAT_TEMPLATE = (
    "{%- if tools %}\n"
    "    {{- '<|im_start|>system\\n' }}\n"
    "    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- messages[0]['content'] }}\n"
    "    {%- else %}\n"
    "        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n"
    "    {%- endif %}\n"
    "    {{- \"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
    "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n"
    "    {%- for tool in tools %}\n"
    "        {{- \"\\n\" }}\n"
    "        {{- tool | tojson }}\n"
    "    {%- endfor %}\n"
    "    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, "
    "\\\"arguments\\\": <args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n"
    "{%- else %}\n"
    "    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
    "    {%- else %}\n"
    "        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endif %}\n"
    "{%- for message in messages %}\n"
    "    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or "
    "(message.role == \"assistant\" and not message.tool_calls) %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n"
    "    {%- elif message.role == \"assistant\" %}\n"
    "        {{- '<|im_start|>' + message.role }}\n"
    "        {%- if message.content %}\n"
    "            {{- '\\n' + message.content }}\n"
    "        {%- endif %}\n"
    "        {%- for tool_call in message.tool_calls %}\n"
    "            {%- if tool_call.function is defined %}\n"
    "                {%- set tool_call = tool_call.function %}\n"
    "            {%- endif %}\n"
    "            {{- '\\n<tool_call>\\n{\"name\": \"' }}\n"
    "            {{- tool_call.name }}\n"
    "            {{- '\", \"arguments\": ' }}\n"
    "            {{- tool_call.arguments | tojson }}\n"
    "            {{- '}\\n</tool_call>' }}\n"
    "        {%- endfor %}\n"
    "        {{- '<|im_end|>\\n' }}\n"
    "    {%- elif message.role == \"tool\" %}\n"
    "        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != \"tool\") %}\n"
    "            {{- '<|im_start|>user' }}\n"
    "        {%- endif %}\n"
    "        {{- '\\n<tool_response>\\n' }}\n"
    "        {{- message.content }}\n"
    "        {{- '\\n</tool_response>' }}\n"
    "        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n"
    "            {{- '<|im_end|>\\n' }}\n"
    "        {%- endif %}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|im_start|>assistant\\n' }}\n"
    "{%- endif %}\n"
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
# vocab_size each becomes one token in both forms.
WORD_LIST = Path(__file__).resolve().parent / "blueprints" / "capitalization" / "words.txt"
_SPECIAL_ROOM = 32  # rows kept free for the special tokens (22 used)


def _words() -> list[str]:
    words = []
    if WORD_LIST.is_file():
        for line in WORD_LIST.read_text().splitlines():
            words += line.split("#", 1)[0].split()
    return words


def _corpus() -> list[str]:
    words = _words()
    # One item per word: the pre-tokenizer would glue a leading space onto words inside a sentence.
    return list(_CORPUS) * 4 + words + [w.capitalize() for w in words]


def _train_tokenizer(out_dir: Path, bpe_vocab_size: int):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

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
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    tok.save(str(out_dir / "tokenizer.json"))
    tok.model.save(str(out_dir))
    return tok


def case_pairs(tok) -> list[tuple[int, int]]:
    """(id of "word", id of "Word") for every shipped word that is one token in both forms."""
    pairs = []
    for w in _words():
        lo, up = tok.encode(w).ids, tok.encode(w.capitalize()).ids
        if len(lo) == 1 and len(up) == 1 and lo != up:
            pairs.append((lo[0], up[0]))
    return pairs


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


def _config(*, hidden: int, layers: int, heads: int, kv_heads: int, intermediate: int, vocab_size: int,
            endoftext: int, im_end: int, rope_theta: float = 1_000_000.0) -> dict:
    return {
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
        "rope_theta": float(rope_theta),
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
    }


def _random_weights(*, seed: int, hidden: int, layers: int, heads: int, kv_heads: int, intermediate: int,
                    vocab_size: int, embed_std: float) -> dict:
    import torch

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


# ---- the copy base model ------------------------------------------------------------------------

# Between the user's word and the answer: <|im_end|> "\n" <|im_start|> "assistant" "\n" (ChatML,
# the same in torchtune's tokenizer and the chat template).
_TURN_GAP = "<|im_end|>\n<|im_start|>assistant\n"


def _lag_attention_biases(head_dim: int, rope_theta: float, lag: int, scale: float):
    """(q bias, k bias) of one head whose RoPE score q.k peaks when the key is `lag` tokens back.

    With zero q/k weights the score depends only on the distance: sum_i cos(theta_i (d - lag)),
    largest at d = lag; `scale` makes the softmax pick that one position.
    """
    import torch

    inv_freq = 1.0 / (rope_theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    q = torch.cat([torch.cos(-lag * inv_freq), torch.sin(-lag * inv_freq)]) * scale
    k = torch.cat([torch.ones(head_dim // 2, dtype=torch.float64), torch.zeros(head_dim // 2, dtype=torch.float64)])
    return q.float(), k.float()


def copy_weights(weights: dict, config: dict, tok, *, seed: int, case_noise: float = 0.1) -> dict:
    """Make `weights` a base model that answers a chat turn with the user's word, verbatim.

    Built, not trained (training a copy circuit takes minutes on a CPU, this takes milliseconds):
    - embeddings with structure, as real LLMs have: every shipped word shares a "word" vector,
      and the row of "Word" is the row of "word" plus one shared case vector (plus noise) that
      points slightly away from the word vector, so copying "apple" prefers "apple" to "Apple";
    - layer 0's attention looks exactly len(_TURN_GAP's tokens) back (RoPE-only scores) and copies that
      token's embedding into the residual stream: at the answer's first position that is the
      user's word, at the next one it is <|im_end|>, so the answer is "word<|im_end|>" (for words
      of one token: with vocab_size 2048 every shipped word is one token in both forms);
    - the other layers and all MLPs add nothing (zero output projections) until fine-tuned.
    """
    import torch

    hidden, heads, kv_heads = config["hidden_size"], config["num_attention_heads"], config["num_key_value_heads"]
    if heads != kv_heads:
        raise ValueError("the copy model needs num_key_value_heads == num_attention_heads (values carry the full embedding)")
    head_dim = hidden // heads
    gen = torch.Generator().manual_seed(seed + 1)
    w = {k: v.clone() for k, v in weights.items()}
    vocab = config["vocab_size"]
    embed = torch.randn(vocab, hidden, generator=gen)
    word_vec = torch.randn(hidden, generator=gen) * 0.7
    case_vec = torch.randn(hidden, generator=gen) * 0.7 - 0.5 * word_vec
    for lo, up in case_pairs(tok):
        embed[lo] = embed[lo] + word_vec
        embed[up] = embed[lo] + case_vec + torch.randn(hidden, generator=gen) * case_noise
    w["model.embed_tokens.weight"] = embed
    lag = len(tok.encode(_TURN_GAP).ids)  # from the answer's first position back to the user's word
    q_bias, k_bias = _lag_attention_biases(head_dim, config["rope_theta"], lag, scale=100.0)
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "mlp.down_proj.weight"] = torch.zeros_like(w[p + "mlp.down_proj.weight"])
        if i == 0:
            w[p + "self_attn.q_proj.weight"] = torch.zeros_like(w[p + "self_attn.q_proj.weight"])
            w[p + "self_attn.k_proj.weight"] = torch.zeros_like(w[p + "self_attn.k_proj.weight"])
            w[p + "self_attn.q_proj.bias"] = q_bias.repeat(heads)
            w[p + "self_attn.k_proj.bias"] = k_bias.repeat(kv_heads)
            w[p + "self_attn.v_proj.weight"] = torch.eye(hidden)
            w[p + "self_attn.o_proj.weight"] = torch.eye(hidden) * 4.0
        else:
            w[p + "self_attn.o_proj.weight"] = torch.zeros_like(w[p + "self_attn.o_proj.weight"])
    return {k: v.contiguous() for k, v in w.items()}


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
    copy: bool = False,
    rope_theta: float = 1_000_000.0,
    case_noise: float = 0.1,
) -> Path:
    """Write the checkpoint to `out_dir` (created if needed) and return its path.

    `embed_std` is large on purpose: the embeddings are tied to the output head and frozen
    under LoRA, and with the usual 0.02 the logits of an untrained model stay so small that
    it can never become confident (the loss plateaus near ln(vocab)).
    """
    from safetensors.torch import save_file

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
            "add_bos_token": False,
            "add_prefix_space": False,
            "additional_special_tokens": ["<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                                          "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>",
                                          "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>",
                                          "<|video_pad|>"],
            "bos_token": None,
            "chat_template": CHAT_TEMPLATE,
            "clean_up_tokenization_spaces": False,
            "eos_token": "<|im_end|>",
            "errors": "replace",
            "model_max_length": 512,
            "pad_token": "<|endoftext|>",
            "split_special_tokens": False,
            "tokenizer_class": "Qwen2Tokenizer",
            "unk_token": None,
        },
    )
    config = _config(hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads, intermediate=intermediate,
                     vocab_size=vocab_size, endoftext=endoftext, im_end=im_end, rope_theta=rope_theta)
    _write_json(out / "config.json", config)
    _write_json(
        out / "generation_config.json",
        {"bos_token_id": endoftext, "eos_token_id": [im_end, endoftext], "pad_token_id": endoftext},
    )
    weights = _random_weights(
        seed=seed, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads,
        intermediate=intermediate, vocab_size=vocab_size, embed_std=embed_std,
    )
    if copy:
        weights = copy_weights(weights, config, tok, seed=seed, case_noise=case_noise)
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
    ap.add_argument("--rope-theta", type=float, default=1_000_000.0)
    ap.add_argument("--copy", action="store_true", help="a base model that copies the user's word (see copy_weights)")
    a = ap.parse_args(argv)
    out = make_tiny_model(
        a.out_dir, seed=a.seed, hidden=a.hidden, layers=a.layers, heads=a.heads, kv_heads=a.kv_heads,
        intermediate=a.intermediate, vocab_size=a.vocab_size, embed_std=a.embed_std,
        rope_theta=a.rope_theta, copy=a.copy,
    )
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
