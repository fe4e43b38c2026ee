"""Shrunk, format-faithful copies of real Hugging Face checkpoints, built offline.

Each builder writes what the hub repository holds (config.json keys and architecture class,
generation_config.json, tokenizer files in the real formats, tokenizer_config.json with the real
chat template, special-token ids, sharded safetensors + index for the 7B/8B layouts) with the
real vocabulary size, but only a couple of tiny random layers. The tokenizers are real BPE /
sentencepiece models whose first pieces are trained on a small corpus and whose remaining
entries are fillers, so ids of special tokens and the vocabulary size are the real ones.

Sources of the values (hub repos' own files, as mirrored in public code): config.json and
generation_config.json of meta-llama/Llama-3.2-1B-Instruct, meta-llama/Llama-3.1-8B-Instruct,
Qwen/Qwen2.5-0.5B-Instruct, Qwen/Qwen2.5-7B-Instruct, mistralai/Mistral-7B-Instruct-v0.3; the
Llama-3 special-token table from torchtune.models.llama3._tokenizer; the chat templates from the
repos' tokenizer_config.json (Mistral's is the "v3" template that llama.cpp's test-chat-template
records for the Mistral v0.3 / Large 2407 family).
"""
from __future__ import annotations

import base64
import json
import re
from collections import Counter
from pathlib import Path

import torch
from safetensors.torch import save_file

from tests.families.names import FAMILIES

# ----------------------------------------------------------------------------- chat templates

LLAMA31_CHAT_TEMPLATE = (
    "{{- bos_token }}\n{%- if custom_tools is defined %}\n    {%- set tools = custom_tools %}\n{%- endif %}\n"
    "{%- if not tools_in_user_message is defined %}\n    {%- set tools_in_user_message = true %}\n{%- endif %}\n"
    "{%- if not date_string is defined %}\n    {%- set date_string = \"26 Jul 2024\" %}\n{%- endif %}\n"
    "{%- if not tools is defined %}\n    {%- set tools = none %}\n{%- endif %}\n\n"
    "{#- This block extracts the system message, so we can slot it into the right place. #}\n"
    "{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]['content']|trim %}\n"
    "    {%- set messages = messages[1:] %}\n{%- else %}\n    {%- set system_message = \"\" %}\n{%- endif %}\n\n"
    "{#- System message + builtin tools #}\n{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n"
    "{%- if builtin_tools is defined or tools is not none %}\n    {{- \"Environment: ipython\\n\" }}\n{%- endif %}\n"
    "{%- if builtin_tools is defined %}\n    {{- \"Tools: \" + builtin_tools | reject('equalto', 'code_interpreter') | join(\", \") + \"\\n\\n\"}}\n{%- endif %}\n"
    "{{- \"Cutting Knowledge Date: December 2023\\n\" }}\n{{- \"Today Date: \" + date_string + \"\\n\\n\" }}\n"
    "{%- if tools is not none and not tools_in_user_message %}\n"
    "    {{- \"You have access to the following functions. To call a function, please respond with JSON for a function call.\" }}\n"
    "    {{- 'Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.' }}\n"
    "    {{- \"Do not use variables.\\n\\n\" }}\n    {%- for t in tools %}\n        {{- t | tojson(indent=4) }}\n"
    "        {{- \"\\n\\n\" }}\n    {%- endfor %}\n{%- endif %}\n{{- system_message }}\n{{- \"<|eot_id|>\" }}\n\n"
    "{%- for message in messages %}\n"
    "    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}\n"
    "        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}\n"
    "    {%- endif %}\n{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n{%- endif %}\n"
)
# Llama 3.2 differs in the date: strftime_now("%d %b %Y") when the renderer provides it (transformers does).
LLAMA32_CHAT_TEMPLATE = LLAMA31_CHAT_TEMPLATE.replace(
    "{%- if not date_string is defined %}\n    {%- set date_string = \"26 Jul 2024\" %}\n{%- endif %}\n",
    "{%- if not date_string is defined %}\n    {%- if strftime_now is defined %}\n"
    "        {%- set date_string = strftime_now(\"%d %b %Y\") %}\n    {%- else %}\n"
    "        {%- set date_string = \"26 Jul 2024\" %}\n    {%- endif %}\n{%- endif %}\n",
)

QWEN25_CHAT_TEMPLATE = (
    "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- messages[0]['content'] }}\n    {%- else %}\n"
    "        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n    {%- endif %}\n"
    "    {{- \"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
    "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n"
    "    {%- for tool in tools %}\n        {{- \"\\n\" }}\n        {{- tool | tojson }}\n    {%- endfor %}\n"
    "    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": "
    "<args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n{%- else %}\n"
    "    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n    {%- else %}\n"
    "        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n"
    "    {%- endif %}\n{%- endif %}\n"
    "{%- for message in messages %}\n"
    "    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or "
    "(message.role == \"assistant\" and not message.tool_calls) %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n"
    "    {%- elif message.role == \"assistant\" %}\n        {{- '<|im_start|>' + message.role }}\n"
    "        {%- if message.content %}\n            {{- '\\n' + message.content }}\n        {%- endif %}\n"
    "        {%- for tool_call in message.tool_calls %}\n            {%- if tool_call.function is defined %}\n"
    "                {%- set tool_call = tool_call.function %}\n            {%- endif %}\n"
    "            {{- '\\n<tool_call>\\n{\"name\": \"' }}\n            {{- tool_call.name }}\n"
    "            {{- '\", \"arguments\": ' }}\n            {{- tool_call.arguments | tojson }}\n"
    "            {{- '}\\n</tool_call>' }}\n        {%- endfor %}\n        {{- '<|im_end|>\\n' }}\n"
    "    {%- elif message.role == \"tool\" %}\n"
    "        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != \"tool\") %}\n"
    "            {{- '<|im_start|>user' }}\n        {%- endif %}\n        {{- '\\n<tool_response>\\n' }}\n"
    "        {{- message.content }}\n        {{- '\\n</tool_response>' }}\n"
    "        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n            {{- '<|im_end|>\\n' }}\n"
    "        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n"
)

MISTRAL_V3_CHAT_TEMPLATE = (
    "{%- if messages[0][\"role\"] == \"system\" %}\n    {%- set system_message = messages[0][\"content\"] %}\n"
    "    {%- set loop_messages = messages[1:] %}\n{%- else %}\n    {%- set loop_messages = messages %}\n{%- endif %}\n"
    "{%- if not tools is defined %}\n    {%- set tools = none %}\n{%- endif %}\n"
    "{%- set user_messages = loop_messages | selectattr(\"role\", \"equalto\", \"user\") | list %}\n\n"
    "{#- This block checks for alternating user/assistant messages, skipping tool calling messages #}\n"
    "{%- set ns = namespace() %}\n{%- set ns.index = 0 %}\n{%- for message in loop_messages %}\n"
    "    {%- if not (message.role == \"tool\" or message.role == \"tool_results\" or "
    "(message.tool_calls is defined and message.tool_calls is not none)) %}\n"
    "        {%- if (message[\"role\"] == \"user\") != (ns.index % 2 == 0) %}\n"
    "            {{- raise_exception(\"After the optional system message, conversation roles must alternate "
    "user/assistant/user/assistant/...\") }}\n        {%- endif %}\n        {%- set ns.index = ns.index + 1 %}\n"
    "    {%- endif %}\n{%- endfor %}\n\n{{- bos_token }}\n{%- for message in loop_messages %}\n"
    "    {%- if message[\"role\"] == \"user\" %}\n"
    "        {%- if tools is not none and (message == user_messages[-1]) %}\n"
    "            {{- \"[AVAILABLE_TOOLS] [\" }}\n            {%- for tool in tools %}\n"
    "                {%- set tool = tool.function %}\n                {{- '{\"type\": \"function\", \"function\": {' }}\n"
    "                {%- for key, val in tool.items() if key != \"return\" %}\n                    {%- if val is string %}\n"
    "                        {{- '\"' + key + '\": \"' + val + '\"' }}\n                    {%- else %}\n"
    "                        {{- '\"' + key + '\": ' + val|tojson }}\n                    {%- endif %}\n"
    "                    {%- if not loop.last %}\n                        {{- \", \" }}\n                    {%- endif %}\n"
    "                {%- endfor %}\n                {{- \"}}\" }}\n                {%- if not loop.last %}\n"
    "                    {{- \", \" }}\n                {%- else %}\n                    {{- \"]\" }}\n"
    "                {%- endif %}\n            {%- endfor %}\n            {{- \"[/AVAILABLE_TOOLS]\" }}\n"
    "            {%- endif %}\n        {%- if loop.last and system_message is defined %}\n"
    "            {{- \"[INST] \" + system_message + \"\\n\\n\" + message[\"content\"] + \"[/INST]\" }}\n"
    "        {%- else %}\n            {{- \"[INST] \" + message[\"content\"] + \"[/INST]\" }}\n        {%- endif %}\n"
    "    {%- elif message.tool_calls is defined and message.tool_calls is not none %}\n"
    "        {{- \"[TOOL_CALLS] [\" }}\n        {%- for tool_call in message.tool_calls %}\n"
    "            {%- set out = tool_call.function|tojson %}\n            {{- out[:-1] }}\n"
    "            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}\n"
    "                {{- raise_exception(\"Tool call IDs should be alphanumeric strings with length 9!\") }}\n"
    "            {%- endif %}\n            {{- ', \"id\": \"' + tool_call.id + '\"}' }}\n"
    "            {%- if not loop.last %}\n                {{- \", \" }}\n            {%- else %}\n"
    "                {{- \"]\" + eos_token }}\n            {%- endif %}\n        {%- endfor %}\n"
    "    {%- elif message[\"role\"] == \"assistant\" %}\n        {{- \" \" + message[\"content\"]|trim + eos_token}}\n"
    "    {%- elif message[\"role\"] == \"tool_results\" or message[\"role\"] == \"tool\" %}\n"
    "        {%- if message.content is defined and message.content.content is defined %}\n"
    "            {%- set content = message.content.content %}\n        {%- else %}\n"
    "            {%- set content = message.content %}\n        {%- endif %}\n"
    "        {{- '[TOOL_RESULTS] {\"content\": ' + content|string + \", \" }}\n"
    "        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}\n"
    "            {{- raise_exception(\"Tool call IDs should be alphanumeric strings with length 9!\") }}\n"
    "        {%- endif %}\n        {{- '\"call_id\": \"' + message.tool_call_id + '\"}[/TOOL_RESULTS]' }}\n"
    "    {%- else %}\n        {{- raise_exception(\"Only user and assistant roles are supported, with the exception "
    "of an initial optional system message!\") }}\n    {%- endif %}\n{%- endfor %}\n"
)

# ----------------------------------------------------------------------------- byte-level BPE

CORPUS = (
    "the quick brown fox jumps over the lazy dog. Capitalize the word. Answer with one word. "
    "apple banana cherry orange grape lemon melon peach pear plum house garden river mountain "
    "forest ocean island desert valley city Apple Banana Cherry Orange Grape Lemon Melon Peach Pear "
    "Plum House Garden River Mountain Forest Ocean Island Desert Valley City You are a helpful "
    "assistant. system user assistant input output question answer 0 1 2 3 4 5 6 7 8 9 \n\n"
)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character map (the order of the first 256 ids of Llama-3 and Qwen2)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


_WORDS = re.compile(r" ?[A-Za-z]+| ?[0-9]| ?[^\sA-Za-z0-9]+|\s+")


def learn_merges(words: Counter, rounds: int) -> list:
    """Greedy BPE training: `rounds` times, merge the most frequent adjacent pair of symbols (ties:
    the larger pair) in every word. `words` maps a tuple of symbols (bytes or str) to its count.
    Returns the merged symbols in the order they were learned."""
    merges = []
    for _ in range(rounds):
        pairs: Counter = Counter()
        for w, n in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        (a, b), _count = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        merged = a + b
        merges.append(merged)
        new_words: Counter = Counter()
        for w, n in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(merged)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new_words[tuple(out)] += n
        words = new_words
    return merges


def bpe_tokens(total: int, merges_from_corpus: int = 300) -> list[bytes]:
    """`total` byte strings in rank order: the 256 bytes, merges learned on CORPUS, then fillers.

    Every multi-byte token is the concatenation of two earlier tokens, so tiktoken (rank-based)
    and merges-based BPE (tokenizers, torchtune's Qwen2) agree on any text. Fillers are built only
    from non-ASCII bytes, so they never change how English text is split.
    """
    tokens = [bytes([b]) for b in bytes_to_unicode()]
    seen = set(tokens)
    words = Counter(tuple(bytes([c]) for c in w.encode()) for w in _WORDS.findall(CORPUS))
    for merged in learn_merges(words, merges_from_corpus):
        if merged not in seen:
            tokens.append(merged)
            seen.add(merged)
    high = range(0x80, 0x100)
    fillers = (bytes([x, y]) for x in high for y in high)
    triples = (bytes([x, y, z]) for x in high for y in high for z in high)
    for tok in (*fillers, *triples):
        if len(tokens) >= total:
            break
        if tok not in seen:
            tokens.append(tok)
            seen.add(tok)
    assert len(tokens) == total
    return tokens


def bpe_merges(tokens: list[bytes]) -> list[tuple[bytes, bytes]]:
    """Every split of each token into two lower-ranked tokens, in rank order (as transformers'
    TikTokenConverter derives the merges of Llama-3's tokenizer.json from its tiktoken file)."""
    rank = {t: i for i, t in enumerate(tokens)}
    merges = []
    for tok in tokens:
        if len(tok) == 1:
            continue
        splits = [(tok[:i], tok[i:]) for i in range(1, len(tok)) if tok[:i] in rank and tok[i:] in rank]
        merges += sorted(splits, key=lambda s: (rank[s[0]], rank[s[1]]))
    return merges


def _uni(b: bytes, table: dict[int, str]) -> str:
    return "".join(table[x] for x in b)


# ----------------------------------------------------------------------------- weights


def _llama_like_weights(*, vocab: int, hidden: int, layers: int, heads: int, kv_heads: int, inter: int,
                        tied: bool, bias: bool, seed: int, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    hd = hidden // heads

    def normal(*shape: int, std: float = 0.02) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * std).to(dtype).contiguous()

    w = {"model.embed_tokens.weight": normal(vocab, hidden, std=0.3), "model.norm.weight": torch.ones(hidden)}
    if not tied:
        w["lm_head.weight"] = normal(vocab, hidden, std=0.3)
    for i in range(layers):
        p = f"model.layers.{i}."
        w.update({
            p + "self_attn.q_proj.weight": normal(heads * hd, hidden),
            p + "self_attn.k_proj.weight": normal(kv_heads * hd, hidden),
            p + "self_attn.v_proj.weight": normal(kv_heads * hd, hidden),
            p + "self_attn.o_proj.weight": normal(hidden, heads * hd),
            p + "mlp.gate_proj.weight": normal(inter, hidden),
            p + "mlp.up_proj.weight": normal(inter, hidden),
            p + "mlp.down_proj.weight": normal(hidden, inter),
            p + "input_layernorm.weight": torch.ones(hidden),
            p + "post_attention_layernorm.weight": torch.ones(hidden),
        })
        if bias:
            w[p + "self_attn.q_proj.bias"] = torch.zeros(heads * hd)
            w[p + "self_attn.k_proj.bias"] = torch.zeros(kv_heads * hd)
            w[p + "self_attn.v_proj.bias"] = torch.zeros(kv_heads * hd)
    return w


def _save_weights(out: Path, weights: dict[str, torch.Tensor], shards: int) -> None:
    if shards == 1:
        save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
        return
    names = sorted(weights)
    # spread the tensors over the shards as the hub repos do: embeddings first, lm_head last
    per = -(-len(names) // shards)
    weight_map, total = {}, 0
    for s in range(shards):
        part = {k: weights[k] for k in names[s * per:(s + 1) * per]}
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        save_file(part, str(out / fname), metadata={"format": "pt"})
        for k, t in part.items():
            weight_map[k] = fname
            total += t.numel() * t.element_size()
    _write_json(out / "model.safetensors.index.json", {"metadata": {"total_size": total}, "weight_map": weight_map})


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


# ----------------------------------------------------------------------------- Llama 3.x

LLAMA3_BASE_VOCAB = 128000
LLAMA3_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"  # noqa: E501


# The hub tokenizer's names (torchtune's own table renames some reserved ids; the ids in use agree).
LLAMA3_SPECIAL_TOKENS = {
    "<|begin_of_text|>": 128000, "<|end_of_text|>": 128001, "<|reserved_special_token_0|>": 128002,
    "<|reserved_special_token_1|>": 128003, "<|finetune_right_pad_id|>": 128004,
    "<|reserved_special_token_2|>": 128005, "<|start_header_id|>": 128006, "<|end_header_id|>": 128007,
    "<|eom_id|>": 128008, "<|eot_id|>": 128009, "<|python_tag|>": 128010,
    **{f"<|reserved_special_token_{3 + i}|>": 128011 + i for i in range(245)},
}


def _llama3_tokenizer_files(out: Path, chat_template: str, *, with_original: bool) -> None:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors

    tokens = bpe_tokens(LLAMA3_BASE_VOCAB)
    table = bytes_to_unicode()
    if with_original:
        (out / "original").mkdir(parents=True, exist_ok=True)
        (out / "original" / "tokenizer.model").write_text(
            "".join(f"{base64.b64encode(t).decode()} {i}\n" for i, t in enumerate(tokens)))
    vocab = {_uni(t, table): i for i, t in enumerate(tokens)}
    merges = [(_uni(a, table), _uni(b, table)) for a, b in bpe_merges(tokens)]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    specials = sorted(LLAMA3_SPECIAL_TOKENS.items(), key=lambda kv: kv[1])
    assert [i for _, i in specials] == list(range(128000, 128256))
    tok.add_special_tokens([AddedToken(name, special=True, normalized=False) for name, _ in specials])
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", 128000)]),
    ])
    assert tok.token_to_id("<|eot_id|>") == 128009 and tok.get_vocab_size() == 128256
    tok.save(str(out / "tokenizer.json"))
    added = {str(i): {"content": name, "lstrip": False, "normalized": False, "rstrip": False,
                      "single_word": False, "special": True} for name, i in specials}
    _write_json(out / "tokenizer_config.json", {
        "added_tokens_decoder": added,
        "bos_token": "<|begin_of_text|>",
        "chat_template": chat_template,
        "clean_up_tokenization_spaces": True,
        "eos_token": "<|eot_id|>",
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 131072,
        "tokenizer_class": "PreTrainedTokenizerFast",
    })
    _write_json(out / "special_tokens_map.json", {
        "bos_token": {"content": "<|begin_of_text|>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
        "eos_token": {"content": "<|eot_id|>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
    })


def make_llama32_1b_instruct(out: Path, *, with_original: bool = True, hidden: int = 32, layers: int = 2,
                             heads: int = 4, kv_heads: int = 2, inter: int = 64, seed: int = 0,
                             dtype: torch.dtype = torch.float32) -> Path:
    """Shrunk by default; with hidden=2048, layers=16, heads=32, kv_heads=8, inter=8192 the real shape."""
    out.mkdir(parents=True, exist_ok=True)
    _llama3_tokenizer_files(out, LLAMA32_CHAT_TEMPLATE, with_original=with_original)
    _write_json(out / "config.json", {
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "head_dim": hidden // heads,
        "hidden_act": "silu", "hidden_size": hidden, "initializer_range": 0.02, "intermediate_size": inter,
        "max_position_embeddings": 131072, "mlp_bias": False, "model_type": "llama",
        "num_attention_heads": heads, "num_hidden_layers": layers, "num_key_value_heads": kv_heads,
        "pretraining_tp": 1, "rms_norm_eps": 1e-05,
        "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
        "transformers_version": "4.45.0.dev0", "use_cache": True, "vocab_size": 128256,
    })
    _write_json(out / "generation_config.json", {
        "bos_token_id": 128000, "do_sample": True, "eos_token_id": [128001, 128008, 128009],
        "temperature": 0.6, "top_p": 0.9, "transformers_version": "4.45.0.dev0",
    })
    _save_weights(out, _llama_like_weights(vocab=128256, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads,
                                           inter=inter, tied=True, bias=False, seed=seed, dtype=dtype), 1)
    return out


def make_llama31_8b_instruct(out: Path, *, with_original: bool = True, hidden: int = 32, layers: int = 2,
                             heads: int = 4, kv_heads: int = 2, inter: int = 64, seed: int = 1) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    _llama3_tokenizer_files(out, LLAMA31_CHAT_TEMPLATE, with_original=with_original)
    _write_json(out / "config.json", {
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
        "hidden_size": hidden, "initializer_range": 0.02, "intermediate_size": inter,
        "max_position_embeddings": 131072, "mlp_bias": False, "model_type": "llama",
        "num_attention_heads": heads, "num_hidden_layers": layers, "num_key_value_heads": kv_heads,
        "pretraining_tp": 1, "rms_norm_eps": 1e-05,
        "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "transformers_version": "4.43.0.dev0", "use_cache": True, "vocab_size": 128256,
    })
    _write_json(out / "generation_config.json", {
        "bos_token_id": 128000, "do_sample": True, "eos_token_id": [128001, 128008, 128009],
        "temperature": 0.6, "top_p": 0.9, "transformers_version": "4.42.3",
    })
    _save_weights(out, _llama_like_weights(vocab=128256, hidden=hidden, layers=layers, heads=heads,
                                           kv_heads=kv_heads, inter=inter, tied=False, bias=False, seed=seed), 4)
    return out


# ----------------------------------------------------------------------------- Qwen2.5

QWEN2_BASE_VOCAB = 151643
QWEN2_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"  # noqa: E501
QWEN25_SPECIALS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>",
    "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
)


QWEN_TEXT_LIKE = ("<tool", "</tool", "<|fim", "<|repo", "<|file")  # added tokens that decode as text


def qwen_bpe_tokenizer(out: Path, specials, text_like=QWEN_TEXT_LIKE):
    """The Qwen2-family byte-level BPE tokenizer (vocab.json, merges.txt written to out) with
    `specials` added after the base vocabulary; the tokenizers.Tokenizer, not yet saved."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    tokens = bpe_tokens(QWEN2_BASE_VOCAB)
    table = bytes_to_unicode()
    vocab = {_uni(t, table): i for i, t in enumerate(tokens)}
    merges = [(_uni(a, table), _uni(b, table)) for a, b in bpe_merges(tokens)]
    _write_json(out / "vocab.json", vocab)
    (out / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False, ignore_merges=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    # <tool_call> ... are not "special" in Qwen's tokenizer.json: they decode as text
    tok.add_tokens([AddedToken(s, special=not s.startswith(text_like), normalized=False) for s in specials])
    return tok


def qwen_tokenizer_config(specials, chat_template: str, text_like=QWEN_TEXT_LIKE) -> dict:
    """tokenizer_config.json of a Qwen2-family checkpoint with `specials` after the base vocabulary."""
    added = {str(QWEN2_BASE_VOCAB + i): {"content": s, "lstrip": False, "normalized": False, "rstrip": False,
                                         "single_word": False, "special": not s.startswith(text_like)}
             for i, s in enumerate(specials)}
    return {
        "add_bos_token": False, "add_prefix_space": False, "added_tokens_decoder": added,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                                      "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>",
                                      "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>",
                                      "<|video_pad|>"],
        "bos_token": None, "chat_template": chat_template, "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>", "errors": "replace", "model_max_length": 131072, "pad_token": "<|endoftext|>",
        "split_special_tokens": False, "tokenizer_class": "Qwen2Tokenizer", "unk_token": None,
    }


def _qwen25_tokenizer_files(out: Path) -> None:
    tok = qwen_bpe_tokenizer(out, QWEN25_SPECIALS)
    assert tok.token_to_id("<|endoftext|>") == 151643 and tok.token_to_id("<|im_end|>") == 151645
    tok.save(str(out / "tokenizer.json"))
    _write_json(out / "tokenizer_config.json", qwen_tokenizer_config(QWEN25_SPECIALS, QWEN25_CHAT_TEMPLATE))


def _make_qwen25(out: Path, *, vocab_size: int, tied: bool, shards: int, max_window_layers: int,
                 sliding_window: int, hidden: int, layers: int, heads: int, kv_heads: int, inter: int, seed: int) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    _qwen25_tokenizer_files(out)
    _write_json(out / "config.json", {
        "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
        "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": hidden, "initializer_range": 0.02,
        "intermediate_size": inter, "max_position_embeddings": 32768, "max_window_layers": max_window_layers,
        "model_type": "qwen2", "num_attention_heads": heads, "num_hidden_layers": layers,
        "num_key_value_heads": kv_heads, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
        "sliding_window": sliding_window, "tie_word_embeddings": tied, "torch_dtype": "bfloat16",
        "transformers_version": "4.43.1", "use_cache": True, "use_sliding_window": False, "vocab_size": vocab_size,
    })
    _write_json(out / "generation_config.json", {
        "bos_token_id": 151643, "pad_token_id": 151643, "do_sample": True, "eos_token_id": [151645, 151643],
        "repetition_penalty": 1.1, "temperature": 0.7, "top_p": 0.8, "top_k": 20, "transformers_version": "4.37.0",
    })
    _save_weights(out, _llama_like_weights(vocab=vocab_size, hidden=hidden, layers=layers, heads=heads,
                                           kv_heads=kv_heads, inter=inter, tied=tied, bias=True, seed=seed), shards)
    return out


def make_qwen25_05b_instruct(out: Path, *, hidden: int = 32, layers: int = 2, heads: int = 4, kv_heads: int = 2,
                             inter: int = 64, seed: int = 2) -> Path:
    return _make_qwen25(out, vocab_size=151936, tied=True, shards=1, max_window_layers=21, sliding_window=32768,
                        hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads, inter=inter, seed=seed)


def make_qwen25_7b_instruct(out: Path, *, hidden: int = 32, layers: int = 2, heads: int = 4, kv_heads: int = 2,
                            inter: int = 64, seed: int = 3) -> Path:
    return _make_qwen25(out, vocab_size=152064, tied=False, shards=4, max_window_layers=28, sliding_window=131072,
                        hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads, inter=inter, seed=seed)


# ----------------------------------------------------------------------------- Mistral v0.3

MISTRAL_V3_VOCAB = 32768
MISTRAL_V3_CONTROL = ("<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]",
                      "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]") + tuple(
    f"[control_{i}]" for i in range(8, 769))


def _mistral_v3_spm(out: Path) -> None:
    """A sentencepiece BPE model laid out as v0.3's: 771 control pieces (ids 0-770, [INST]=3,
    [/INST]=4), 256 byte-fallback pieces <0x00>..<0xFF> (771-1026), then normal pieces."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    m = pb.ModelProto()
    ts = m.trainer_spec
    ts.model_type = pb.TrainerSpec.BPE
    ts.vocab_size = MISTRAL_V3_VOCAB
    ts.byte_fallback = True
    ts.unk_id, ts.bos_id, ts.eos_id, ts.pad_id = 0, 1, 2, -1
    ts.unk_piece, ts.bos_piece, ts.eos_piece = "<unk>", "<s>", "</s>"
    ts.split_digits = True
    ts.allow_whitespace_only_pieces = True
    ns = m.normalizer_spec
    ns.name = "identity"
    ns.add_dummy_prefix = True
    ns.remove_extra_whitespaces = False
    ns.escape_whitespaces = True

    def add(piece: str, kind, score: float = 0.0) -> None:
        p = m.pieces.add()
        p.piece, p.type, p.score = piece, kind, score

    for i, name in enumerate(MISTRAL_V3_CONTROL):
        add(name, pb.ModelProto.SentencePiece.UNKNOWN if i == 0 else pb.ModelProto.SentencePiece.CONTROL)
    for b in range(256):
        add(f"<0x{b:02X}>", pb.ModelProto.SentencePiece.BYTE)
    # normal pieces: BPE merges learned on the corpus (with ▁ for spaces), then single characters,
    # then fillers (CJK / Hangul characters), scores decreasing so earlier merges win
    text = "▁" + CORPUS.replace(" ", "▁").replace("\n", "")
    chars = sorted(set(text))
    words = Counter({tuple(w): n for w, n in Counter("▁" + w for w in text.split("▁") if w).items()})
    pieces: list[str] = []
    seen = set(chars)
    for merged in learn_merges(words, 400):
        if merged not in seen:
            pieces.append(merged)
            seen.add(merged)
    normal = pieces + chars
    fill = (chr(c) for c in (*range(0x4E00, 0xA000), *range(0xAC00, 0xD7A4)))
    need = MISTRAL_V3_VOCAB - len(m.pieces) - len(normal)
    normal += [c for _, c in zip(range(need), fill)]
    for i, piece in enumerate(normal):
        add(piece, pb.ModelProto.SentencePiece.NORMAL, -float(i))
    assert len(m.pieces) == MISTRAL_V3_VOCAB
    (out / "tokenizer.model").write_bytes(m.SerializeToString())
    (out / "tokenizer.model.v3").write_bytes(m.SerializeToString())


def make_mistral_7b_instruct_v03(out: Path, *, hidden: int = 32, layers: int = 2, heads: int = 4, kv_heads: int = 2,
                                 inter: int = 64, seed: int = 4) -> Path:
    from transformers import AutoTokenizer

    out.mkdir(parents=True, exist_ok=True)
    _mistral_v3_spm(out)
    added = {str(i): {"content": name, "lstrip": False, "normalized": False, "rstrip": False,
                      "single_word": False, "special": True} for i, name in enumerate(MISTRAL_V3_CONTROL)}
    config = {
        "add_bos_token": True, "add_eos_token": False, "added_tokens_decoder": added, "bos_token": "<s>",
        "chat_template": MISTRAL_V3_CHAT_TEMPLATE, "clean_up_tokenization_spaces": False, "eos_token": "</s>",
        "legacy": False, "model_max_length": 1000000000000000019884624838656, "pad_token": None,
        "sp_model_kwargs": {}, "spaces_between_special_tokens": False, "tokenizer_class": "LlamaTokenizer",
        "unk_token": "<unk>", "use_default_system_prompt": False,
    }
    _write_json(out / "tokenizer_config.json", config)
    # tokenizer.json as the hub has it: transformers' conversion of the sentencepiece model
    tok = AutoTokenizer.from_pretrained(str(out))
    tok.backend_tokenizer.save(str(out / "tokenizer.json"))
    _write_json(out / "tokenizer_config.json", config)  # keep the hub's file, not transformers' rewrite
    _write_json(out / "special_tokens_map.json", {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"})
    _write_json(out / "config.json", {
        "architectures": ["MistralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2,
        "hidden_act": "silu", "hidden_size": hidden, "initializer_range": 0.02, "intermediate_size": inter,
        "max_position_embeddings": 32768, "model_type": "mistral", "num_attention_heads": heads,
        "num_hidden_layers": layers, "num_key_value_heads": kv_heads, "rms_norm_eps": 1e-05,
        "rope_theta": 1000000.0, "sliding_window": None, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "transformers_version": "4.42.0.dev0", "use_cache": True, "vocab_size": MISTRAL_V3_VOCAB,
    })
    _write_json(out / "generation_config.json", {"bos_token_id": 1, "eos_token_id": 2,
                                                 "transformers_version": "4.42.0.dev0"})
    _save_weights(out, _llama_like_weights(vocab=MISTRAL_V3_VOCAB, hidden=hidden, layers=layers, heads=heads,
                                           kv_heads=kv_heads, inter=inter, tied=False, bias=False, seed=seed), 3)
    return out


BUILDERS = {
    "Llama-3.2-1B-Instruct": make_llama32_1b_instruct,
    "Llama-3.1-8B-Instruct": make_llama31_8b_instruct,
    "Qwen2.5-0.5B-Instruct": make_qwen25_05b_instruct,
    "Qwen2.5-7B-Instruct": make_qwen25_7b_instruct,
    "Mistral-7B-Instruct-v0.3": make_mistral_7b_instruct_v03,
}

assert tuple(BUILDERS) == FAMILIES, "tests/families/names.py lists the families BUILDERS builds"
