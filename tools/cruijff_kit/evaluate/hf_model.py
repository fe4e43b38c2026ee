"""inspect-ai model provider `ck-hf`: inspect's Hugging Face provider, made to evaluate what was trained.

Differences from `hf/` (each one a way the plain provider scores a different prompt or decoder
than the plan says):
  * the prompt format is ck's (model arg `prompt_format`): the tokenizer (model arg
    `tokenizer_path`, a ck overlay directory) must carry exactly that chat template;
  * the rendered chat is tokenized WITHOUT added special tokens: the template already starts
    with BOS, and Llama-3's tokenizer would add a second one;
  * greedy means greedy (unless the plan states a Temperature > 0: model arg `sample`): the model's generation_config.json (Qwen2.5: repetition_penalty 1.05-1.1,
    temperature, top_p, top_k; Llama: temperature 0.6, top_p 0.9) is replaced by a config that keeps
    only the special-token ids. transformers applies generation_config's repetition_penalty even
    under do_sample=False, and no `-M` flag reaches it.

Registered when this module is imported (cruijff_kit.evaluate.launch does that before it hands
the command line to inspect).
"""
from __future__ import annotations

from typing import Any

from inspect_ai.model import GenerateConfig, modelapi
from inspect_ai.model._providers.hf import HuggingFaceAPI

from cruijff_kit.evaluate.launch import SAMPLING_KEYS
from cruijff_kit.finetune.prompt_format import FORMATS


def greedy_generation_config(current: Any) -> Any:
    from transformers import GenerationConfig

    return GenerationConfig(bos_token_id=current.bos_token_id, eos_token_id=current.eos_token_id,
                            pad_token_id=current.pad_token_id, do_sample=False, num_beams=1)


class CkHuggingFaceAPI(HuggingFaceAPI):
    def __init__(self, model_name: str, base_url: str | None = None, api_key: str | None = None,
                 config: GenerateConfig = GenerateConfig(), **model_args: Any):
        fmt_name = model_args.pop("prompt_format", None)
        # model arg `sample`: the plan states a Temperature > 0 (launch.py passes it to inspect too)
        model_args["do_sample"] = bool(model_args.pop("sample", False))
        super().__init__(model_name, base_url=base_url, api_key=api_key, config=config, **model_args)
        if fmt_name is not None:
            fmt = FORMATS[str(fmt_name)]
            if self.tokenizer.chat_template != fmt.chat_template:
                raise ValueError(f"the tokenizer's chat template is not ck's {fmt.name!r} template "
                                 "(pass tokenizer_path=<ck tokenizer overlay>)")
            self.tokenizer_call_args = {**(self.tokenizer_call_args or {}), "add_special_tokens": False}
        self.replaced_generation_settings = {
            k: v for k, v in self.model.generation_config.to_diff_dict().items() if k in SAMPLING_KEYS}
        self.model.generation_config = greedy_generation_config(self.model.generation_config)


@modelapi(name="ck-hf")
def ck_hf() -> type[CkHuggingFaceAPI]:
    return CkHuggingFaceAPI
