"""Stop at an epoch boundary (`stop_after_epochs=K`) and resume exactly, for ck's torchtune recipes.

A mixin placed first among the recipe's bases (so its setup ends last):

    class LoRAFinetuneRecipeSingleDevice(StopAndResume, TorchtuneExamples, ValidationLoop, _stock...): ...

and the recipe's save_checkpoint calls `self.stop_if_rung_done(epoch)` as its last step (after the
epoch's checkpoint, validation loss and ck's stamps are written).

What an uninterrupted run and a stopped-and-resumed one would otherwise differ in (torchtune 0.6.1):
  1. global_step: the single-device recipe restores it only when max_steps_per_epoch shortens the
     epoch; otherwise a resumed run starts at step 0, so the LR schedule restarts its warmup and the
     log's steps repeat. Fixed here: global_step = epochs_run * steps_per_epoch, and the scheduler
     rebuilt at that step (LambdaLR recomputes lr = initial_lr * lambda(step): the same floats).
  2. random state: the recipe state holds no RNG, so dropout (lora_dropout > 0) and the dataloader's
     base seed draw different numbers after a resume. Saved here with every intermediate epoch, one
     file per rank (<output_dir>/recipe_state/ck_rng_rank<R>.pt: torch CPU / CUDA, numpy, python),
     captured after the epoch's validation and save, restored as the last step of setup.
Unchanged and already exact: weights (adapter), optimizer moments, epochs_run and the sampler (its
order is a function of seed and epoch; its position is the saved dataloader state).
"""
from __future__ import annotations

import logging
import os
import random
from pathlib import Path

import torch

from cruijff_kit.finetune.epoch_stop import STOP_KEY, stop_after_epochs, stops_after

log = logging.getLogger(__name__)

RNG_FILE = "ck_rng_rank{rank}.pt"  # beside torchtune's recipe_state.pt
RECIPE_STATE_DIR = "recipe_state"  # torchtune.training.checkpointing._utils.RECIPE_STATE_DIRNAME


class StoppedAtRung(Exception):
    """Raised after the stop epoch's checkpoint, out of the stock training loop, caught by train()."""


class StopAndResume:
    _stop_after_epochs: int | None = None

    def __init__(self, cfg) -> None:
        super().__init__(cfg)
        try:
            self._stop_after_epochs = stop_after_epochs(cfg.get(STOP_KEY))
        except ValueError as exc:
            raise SystemExit(f"finetune: {exc} (a key=value override of finetune.yaml)") from None

    # ---- hooks ---------------------------------------------------------------------------------
    def setup(self, cfg) -> None:
        super().setup(cfg)
        if self._resume_from_checkpoint:
            self._restore_global_step(cfg)
            self._restore_rng()

    def save_checkpoint(self, epoch: int, *args, **kwargs) -> None:
        super().save_checkpoint(epoch, *args, **kwargs)
        if epoch + 1 < self.total_epochs:  # an intermediate epoch: recipe_state.pt was written with it
            self._save_rng()

    def train(self) -> None:
        try:
            super().train()
        except StoppedAtRung:
            # the stock loop is left between epochs: its profiler context closed, nothing half done
            log.info("stopped after %d of %d epochs (%s); resume_from_checkpoint=True goes on",
                     self.epochs_run, self.total_epochs, STOP_KEY)

    def stop_if_rung_done(self, epoch: int) -> None:
        """Called by the recipe's save_checkpoint as its last step."""
        if stops_after(epoch, self._stop_after_epochs, self.total_epochs):
            raise StoppedAtRung()

    # ---- exact resume --------------------------------------------------------------------------
    def _restore_global_step(self, cfg) -> None:
        step = self.epochs_run * self._steps_per_epoch
        if self.global_step == step:
            return  # the recipe did it (the distributed one; or max_steps_per_epoch shortened epochs)
        self.global_step = step
        self._lr_scheduler = self._setup_lr_scheduler(cfg_lr_scheduler=cfg.lr_scheduler,
                                                      num_training_steps=self.total_epochs * self._steps_per_epoch,
                                                      last_epoch=step - 1)

    def _rng_path(self) -> Path:
        return Path(self._output_dir) / RECIPE_STATE_DIR / RNG_FILE.format(rank=int(getattr(self, "rank", 0)))

    def _save_rng(self) -> None:
        import numpy as np

        state = {"epochs_run": self.epochs_run, "torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                 "python": random.getstate(),
                 "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
        path = self._rng_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)  # never a half-written file where a resume looks

    def _restore_rng(self) -> None:
        import numpy as np

        path = self._rng_path()
        try:
            state = torch.load(path, weights_only=False)
        except FileNotFoundError:
            log.warning("%s missing (saved by an older ck?): resuming with fresh random state", path)
            return
        if state.get("epochs_run") != self.epochs_run:
            # recipe_state.pt and this file disagree (a job killed between the two writes): the
            # weights, optimizer and schedule still resume; only dropout's draws will differ
            log.warning("%s is of epoch %s, recipe state of %s: resuming with fresh random state",
                        path, state.get("epochs_run"), self.epochs_run)
            return
        torch.set_rng_state(state["torch"])
        np.random.set_state(state["numpy"])
        random.setstate(state["python"])
        if state.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
