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

The weights are loaded once per process: an eval job runs every task of its checkpoint in one
process (launch.py), and each task's `inspect eval` gets a provider that shares the first one's
model and tokenizer (`_LOADED`, keyed on every model argument). Each real load prints
"ck-hf: loading weights from PATH" to stderr, so a job's output shows how often it loaded.
inspect also builds a provider only to learn the model's canonical name (its model-info lookup,
api_key MODEL_INFO_LOOKUP_API_KEY): that one loads nothing (it used to load the weights a second
time, and for an adapter epoch the adapter directory itself).

Requests are batched as inspect batches them, without its 2-second collection window and 1-second
polling (batching.py).

Registered when this module is imported (cruijff_kit.evaluate.launch does that before it hands
the command line to inspect).
"""
from __future__ import annotations

import json
import sys
from typing import Any

from inspect_ai.model import GenerateConfig, ModelAPI, modelapi
from inspect_ai.model._providers.hf import HF_TOKEN, HuggingFaceAPI

from cruijff_kit.evaluate import batching
from cruijff_kit.evaluate.launch import SAMPLING_KEYS
from cruijff_kit.finetune.prompt_format import FORMATS

batching.install()  # inspect's batching without its idle seconds per task (batching.py)


def greedy_generation_config(current: Any) -> Any:
    from transformers import GenerationConfig

    return GenerationConfig(bos_token_id=current.bos_token_id, eos_token_id=current.eos_token_id,
                            pad_token_id=current.pad_token_id, do_sample=False, num_beams=1)


try:  # the api_key inspect gives a provider it builds only to resolve the model's name
    from inspect_ai.model._model_info import MODEL_INFO_LOOKUP_API_KEY as _INFO_LOOKUP
except ImportError:  # an inspect without that lookup
    _INFO_LOOKUP = None

# what one load produced (the provider's attributes: model, tokenizer, decoding settings), by the
# arguments that produced it; a later provider with the same arguments takes them over
_LOADED: dict[str, dict[str, Any]] = {}


def _files_signature(path: Any) -> list:
    """(name, size, mtime) of a model or tokenizer directory's files: a directory written again
    in the same process (a test that retrains into the same path) is loaded again."""
    import os

    try:
        with os.scandir(str(path)) as it:
            return sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in it if e.is_file())
    except (OSError, TypeError):
        return []


def _load_key(model_name: str, base_url: str | None, fmt_name: Any, model_args: dict) -> str:
    files = [_files_signature(model_args.get(k) or (model_name if k == "model_path" else None))
             for k in ("model_path", "tokenizer_path")]
    return json.dumps([model_name, base_url, fmt_name, model_args, files], sort_keys=True, default=repr)


class CkHuggingFaceAPI(HuggingFaceAPI):
    def __init__(self, model_name: str, base_url: str | None = None, api_key: str | None = None,
                 config: GenerateConfig = GenerateConfig(), **model_args: Any):
        fmt_name = model_args.pop("prompt_format", None)
        # model arg `sample`: the plan states a Temperature > 0 (launch.py passes it to inspect too)
        model_args["do_sample"] = bool(model_args.pop("sample", False))
        key = _load_key(model_name, base_url, fmt_name, model_args)
        loaded = _LOADED.get(key)
        if api_key is not None and api_key == _INFO_LOOKUP:  # a name lookup: no model needed
            ModelAPI.__init__(self, model_name=model_name, base_url=base_url, api_key=api_key,
                              api_key_vars=[HF_TOKEN], config=config)
            return
        if loaded is not None:
            ModelAPI.__init__(self, model_name=model_name, base_url=base_url, api_key=api_key,
                              api_key_vars=[HF_TOKEN], config=config)
            if config.seed is not None:
                from inspect_ai.model._providers.hf import set_random_seeds

                set_random_seeds(config.seed)
            for name, value in loaded.items():
                if name not in vars(self):  # what ModelAPI sets stays this instance's own
                    setattr(self, name, value)
            return
        print(f"ck-hf: loading weights from {model_args.get('model_path') or model_name}", file=sys.stderr, flush=True)
        from cruijff_kit.finetune.peft_compat import peft_without_old_torchao

        peft_without_old_torchao()  # transformers hands a directory with adapter files to PEFT
        super().__init__(model_name, base_url=base_url, api_key=api_key, config=config, **model_args)
        if fmt_name is not None:
            from cruijff_kit.finetune.trainers import PIN_MARKER

            fmt = FORMATS.get(str(fmt_name))
            if (self.tokenizer.chat_template != fmt.chat_template if fmt is not None
                    else not str(self.tokenizer.chat_template or "").startswith(PIN_MARKER)):
                raise ValueError(f"the tokenizer's chat template is not ck's {fmt_name!r} template "
                                 "(pass tokenizer_path=<ck tokenizer overlay>)")
            self.tokenizer_call_args = {**(self.tokenizer_call_args or {}), "add_special_tokens": False}
        self.replaced_generation_settings = {
            k: v for k, v in self.model.generation_config.to_diff_dict().items() if k in SAMPLING_KEYS}
        self.model.generation_config = greedy_generation_config(self.model.generation_config)
        _LOADED[key] = dict(vars(self))


    async def generate(self, input, tools, tool_choice, config):
        """inspect's generate; first the prompt's token ids go into the sample's metadata
        (`prompt_token_ids`: the ids the model is given, compared with training's by `ck doctor`)."""
        try:
            from inspect_ai.solver._task_state import sample_state

            state = sample_state()
            if state is not None:
                chat = self.hf_chat(input, tools)
                ids = self.tokenizer(chat, **(self.tokenizer_call_args or {}))["input_ids"]
                state.metadata["prompt_token_ids"] = list(map(int, ids))
        except (ImportError, AttributeError, TypeError):  # an inspect without sample_state: ids not recorded
            pass
        return await super().generate(input, tools, tool_choice, config)


@modelapi(name="ck-hf")
def ck_hf() -> type[CkHuggingFaceAPI]:
    return CkHuggingFaceAPI
