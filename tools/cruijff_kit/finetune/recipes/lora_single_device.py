"""torchtune 0.6.1's `lora_finetune_single_device`, with correct epoch checkpoints on CPU.

The bug: `save_checkpoint` takes `{k: v.cpu() for k, v in model.state_dict().items()}` to get a
copy, then `get_merged_lora_ckpt` adds the LoRA delta into it IN PLACE. On a GPU `.cpu()` copies;
on CPU it returns the live parameter itself, so every epoch end adds B@A into the frozen base
weights: training after epoch 0 runs on corrupted weights, and epoch_k holds base + the sum of
all epochs' deltas instead of base + adapter_k. Fix: while saving on CPU, the recipe sees a state
dict of detached copies. On other devices the stock code runs untouched.

    python -m cruijff_kit.finetune.recipes.lora_single_device --config finetune.yaml [key=value ...]
    tune run cruijff_kit/finetune/recipes/lora_single_device.py --config finetune.yaml
(tune turns a relative recipe path into a module name and runs it with -m, so this package-relative
path works from any directory; an absolute path does not.)
"""
from __future__ import annotations

from cruijff_kit.util.procs import exit_after, imports_without_gc

with imports_without_gc(active=__name__ == "__main__"):  # a job's start: see util/procs.py
    from omegaconf import DictConfig
    from torchtune import config

    from cruijff_kit.finetune.recipes._torchtune import load_recipe, stamp_epoch
    from cruijff_kit.finetune.recipes.stop_and_resume import StopAndResume
    from cruijff_kit.finetune.recipes.validation import ValidationLoop
    from cruijff_kit.finetune.train_examples import TorchtuneExamples

    _stock = load_recipe("lora_finetune_single_device")


# StopAndResume: stop_after_epochs=K, and a resume that continues exactly (see stop_and_resume.py).
# ValidationLoop: validation loss during training when the config has dataset_val (see validation.py).
# TorchtuneExamples: <run>/logs/train_examples.jsonl after setup (finetune/train_examples.py).
class LoRAFinetuneRecipeSingleDevice(StopAndResume, TorchtuneExamples, ValidationLoop,
                                     _stock.LoRAFinetuneRecipeSingleDevice):
    def save_checkpoint(self, epoch: int) -> None:
        if self._device.type != "cpu":
            super().save_checkpoint(epoch)
            self._stamp_prompt_format(epoch)
            return self.stop_if_rung_done(epoch)
        model = self._model
        live_state_dict = model.state_dict

        def copied_state_dict(*args, **kwargs):
            return {k: v.detach().clone() for k, v in live_state_dict(*args, **kwargs).items()}

        # An instance attribute shadows nn.Module.state_dict for the duration of the save only.
        model.state_dict = copied_state_dict
        try:
            super().save_checkpoint(epoch)
        finally:
            del model.state_dict
        self._stamp_prompt_format(epoch)
        self.stop_if_rung_done(epoch)  # last: the epoch is saved, validated and stamped

    def _stamp_prompt_format(self, epoch: int) -> None:
        """The epoch directory carries the training format (see finetune/prompt_format.py)."""
        stamp_epoch(self._checkpointer, epoch, adapter_only=self._save_adapter_weights_only)


@config.parse
def recipe_main(cfg: DictConfig) -> None:
    config.log_config(recipe_name="LoRAFinetuneRecipeSingleDevice", cfg=cfg)
    recipe = LoRAFinetuneRecipeSingleDevice(cfg=cfg)
    recipe.setup(cfg=cfg)
    recipe.train()
    recipe.cleanup()


if __name__ == "__main__":
    exit_after(recipe_main)  # config.parse ends in sys.exit(): exit_after takes its status
