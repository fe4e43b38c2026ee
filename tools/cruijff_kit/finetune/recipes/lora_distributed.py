"""torchtune 0.6.1's `lora_finetune_distributed`, made to run on CPU-only torch (gloo) too.

The installed recipe is reused as is; three names it looks up at call time are rebound, and
each replacement behaves exactly like the original whenever CUDA is present:
  1. init_process_group("cuda:nccl,cpu:gloo")  -> NCCL is missing from CPU torch: use "gloo".
  2. training.get_memory_stats(cpu)            -> raises on CPU: report this process's peak RSS.
  3. training.cleanup_before_training()        -> calls torch.cpu.empty_cache(), which does not
                                                   exist: only collect garbage.
(The distributed recipe merges LoRA into a gathered copy, so it has no in-place merge bug.)
The recipe class adds the validation loop (finetune/recipes/validation.py).

Ranks come from the environment (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), set
by `tune run --nproc_per_node N`, torchrun, or by hand / from SLURM_* for `srun`:
    tune run --nproc_per_node 2 cruijff_kit/finetune/recipes/lora_distributed.py --config finetune.yaml
    RANK=0 LOCAL_RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 \
        python -m cruijff_kit.finetune.recipes.lora_distributed --config finetune.yaml
"""
from __future__ import annotations

import gc
import resource

from cruijff_kit.util.procs import exit_after, imports_without_gc

with imports_without_gc(active=__name__ == "__main__"):  # a job's start: see util/procs.py
    import torch
    import torch.distributed as dist
    from torchtune import training
    from torchtune.utils import get_torch_device_namespace

    from cruijff_kit.finetune.recipes._torchtune import load_recipe, stamp_epoch
    from cruijff_kit.finetune.recipes.stop_and_resume import StopAndResume
    from cruijff_kit.finetune.recipes.validation import ValidationLoop
    from cruijff_kit.finetune.train_examples import TorchtuneExamples

    _stock = load_recipe("lora_finetune_distributed")

_init_process_group = dist.init_process_group
_get_memory_stats = training.get_memory_stats
_cleanup_before_training = training.cleanup_before_training


def init_process_group(backend=None, *args, **kwargs):
    if not torch.cuda.is_available():
        backend = "gloo"
    return _init_process_group(backend, *args, **kwargs)


def get_memory_stats(device, reset_stats: bool = True) -> dict:
    if torch.device(device).type != "cpu":
        return _get_memory_stats(device, reset_stats=reset_stats)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux reports KiB
    return {"peak_memory_active": peak_gib, "peak_memory_alloc": peak_gib, "peak_memory_reserved": peak_gib}


def cleanup_before_training() -> None:
    if hasattr(get_torch_device_namespace(), "empty_cache"):
        _cleanup_before_training()
    else:
        gc.collect()


# recipe_main calls the name imported into the recipe's module; the recipe body calls training.<name>.
_stock.init_process_group = init_process_group
training.get_memory_stats = get_memory_stats
training.cleanup_before_training = cleanup_before_training

# StopAndResume: stop_after_epochs=K, and a resume that continues exactly (see stop_and_resume.py).
# ValidationLoop: validation loss during training when the config has dataset_val (see validation.py).
# TorchtuneExamples: <run>/logs/train_examples.jsonl after setup, rank 0 (finetune/train_examples.py).
class LoRAFinetuneRecipeDistributed(StopAndResume, TorchtuneExamples, ValidationLoop,
                                    _stock.LoRAFinetuneRecipeDistributed):
    def save_checkpoint(self, epoch: int) -> None:
        super().save_checkpoint(epoch=epoch)
        self._stamp_prompt_format(epoch)
        self.stop_if_rung_done(epoch)  # every rank, after the save's closing barrier

    def _stamp_prompt_format(self, epoch: int) -> None:
        """The epoch directory carries the training format (see finetune/prompt_format.py); rank 0 saved it."""
        if self._is_rank_zero:
            stamp_epoch(self._checkpointer, epoch, adapter_only=self._save_adapter_weights_only)


# The stock recipe_main instantiates the class by its module-level name.
_stock.LoRAFinetuneRecipeDistributed = LoRAFinetuneRecipeDistributed
recipe_main = _stock.recipe_main

if __name__ == "__main__":
    exit_after(recipe_main)  # config.parse ends in sys.exit(): exit_after takes its status
