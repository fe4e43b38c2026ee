"""torchtune tokenizers for formats torchtune 0.6.1 gets wrong or cannot load (named in finetune.yaml).

    mistral_v3_tokenizer   Mistral v0.3's own format: <s>[INST] {system}\\n\\n{user}[/INST] {answer}</s>,
                           [INST]/[/INST] as control tokens 3/4, the system prompt inside the LAST
                           user turn (torchtune's MistralChatTemplate writes "[INST]" as text and
                           refuses system prompts).
    llama3_hf_tokenizer    Llama-3 from tokenizer.json, for downloads without original/tokenizer.model
                           (torchtune's llama3_tokenizer needs the tiktoken file); same ids and
                           same message format as torchtune's Llama3Tokenizer.

Imported by torchtune when it instantiates the config, never by the CLI.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

from torchtune.data import Message
from torchtune.data._utils import truncate
from torchtune.models.llama3._tokenizer import LLAMA3_SPECIAL_TOKENS, Llama3Tokenizer
from torchtune.models.mistral._tokenizer import MistralTokenizer

INST, INST_END = "[INST]", "[/INST]"


class MistralV3Tokenizer(MistralTokenizer):
    def __init__(self, path: str, max_seq_len: Optional[int] = None):
        super().__init__(path, max_seq_len=max_seq_len, prompt_template=None)
        spm = self._spm_model.spm_model
        self.inst_id, self.inst_end_id = spm.piece_to_id(INST), spm.piece_to_id(INST_END)
        if spm.id_to_piece(self.inst_id) != INST or spm.id_to_piece(self.inst_end_id) != INST_END:
            raise ValueError(f"{path}: no {INST}/{INST_END} control tokens: not a Mistral v0.3 tokenizer")

    def tokenize_messages(self, messages: List[Message], *, add_eos: bool = True) -> Tuple[List[int], List[bool]]:
        system = messages[0] if messages and messages[0].role == "system" else None
        turns = messages[1:] if system is not None else list(messages)
        last_user = max((i for i, m in enumerate(turns) if m.role == "user"), default=None)
        tokens, mask = [self.bos_id], [True]
        for i, m in enumerate(turns):
            if m.role == "user":
                text = m.text_content
                if system is not None and i == last_user:
                    text = system.text_content + "\n\n" + text
                ids = [self.inst_id] + self.encode(text, add_bos=False, add_eos=False) + [self.inst_end_id]
            elif m.role == "assistant":
                # the template writes " " + content|trim: sentencepiece's dummy prefix is that space
                ids = self.encode(m.text_content.strip(), add_bos=False, add_eos=False)
                if add_eos or i != len(turns) - 1:
                    ids.append(self.eos_id)
            else:
                raise ValueError(f"Mistral v0.3's format has no {m.role!r} messages")
            tokens += ids
            mask += [m.masked] * len(ids)
        if self.max_seq_len:
            tokens = truncate(tokens, self.max_seq_len, self.eos_id if add_eos else None)
            mask = truncate(mask, self.max_seq_len, True if add_eos else None)
        return tokens, mask


def mistral_v3_tokenizer(path: str, max_seq_len: Optional[int] = None) -> MistralV3Tokenizer:
    return MistralV3Tokenizer(path, max_seq_len=max_seq_len)


class _HFTextTokenizer:
    """The part of TikTokenBaseTokenizer that Llama3Tokenizer uses, over a tokenizer.json."""

    def __init__(self, path: str, bos_id: int, eos_id: int):
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(path)
        self.bos_id, self.eos_id = bos_id, eos_id

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    @property
    def base_vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=False)

    def encode(self, text: str, add_bos: bool = True, add_eos: bool = True) -> List[int]:
        ids = self._tok.encode(text, add_special_tokens=False).ids
        return ([self.bos_id] if add_bos else []) + ids + ([self.eos_id] if add_eos else [])

    def decode(self, token_ids: List[int], truncate_at_eos: bool = True, **_) -> str:
        if truncate_at_eos and self.eos_id in token_ids:
            token_ids = token_ids[: token_ids.index(self.eos_id)]
        return self._tok.decode(token_ids, skip_special_tokens=False)


class Llama3HFTokenizer(Llama3Tokenizer):
    def __init__(self, path: str, max_seq_len: Optional[int] = None, prompt_template=None):
        from tokenizers import Tokenizer

        hf = Tokenizer.from_file(path)
        # the ids the message format uses must be the hub tokenizer's (torchtune's table names
        # some reserved ids differently; those are never emitted)
        for name in ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                     "<|eot_id|>", "<|eom_id|>", "<|python_tag|>", "<|finetune_right_pad_id|>"):
            if hf.token_to_id(name) != LLAMA3_SPECIAL_TOKENS[name]:
                raise ValueError(f"{path}: {name} has id {hf.token_to_id(name)}, Llama-3 has {LLAMA3_SPECIAL_TOKENS[name]}")
        self.special_tokens = LLAMA3_SPECIAL_TOKENS
        self.bos_id = self.special_tokens["<|begin_of_text|>"]
        self.eos_id = self.special_tokens["<|end_of_text|>"]
        self.pad_id = self.special_tokens["<|finetune_right_pad_id|>"]
        self.step_id = self.special_tokens["<|step_id|>"]
        self.start_header_id = self.special_tokens["<|start_header_id|>"]
        self.end_header_id = self.special_tokens["<|end_header_id|>"]
        self.eot_id = self.special_tokens["<|eot_id|>"]
        self.eom_id = self.special_tokens["<|eom_id|>"]
        self.python_tag = self.special_tokens["<|python_tag|>"]
        self.image_id = self.special_tokens["<|image|>"]
        self.stop_tokens = [self.eos_id, self.eot_id, self.eom_id]
        self.tt_model = _HFTextTokenizer(path, self.bos_id, self.eos_id)
        self.max_seq_len = max_seq_len
        self.prompt_template = prompt_template
        import re

        self._special_token_regex = re.compile(r"<\|.*?\|>")
        self._special_token_header_regex = re.compile(r"<\|start_header_id\|>.*?<\|end_header_id\|>\n\n")


def llama3_hf_tokenizer(path: str, max_seq_len: Optional[int] = None) -> Llama3HFTokenizer:
    return Llama3HFTokenizer(path, max_seq_len=max_seq_len)
