"""Validation loss during training, for torchtune 0.6.1's LoRA recipes (which have no validation loop).

A mixin placed before the stock recipe class:

    class LoRAFinetuneRecipeSingleDevice(ValidationLoop, _stock.LoRAFinetuneRecipeSingleDevice): ...

Config keys (the names later torchtune versions use):
    dataset_val:            a dataset component (the validation split); absent -> no validation
    run_val_every_n_steps:  also validate every N optimizer steps (null: at epoch ends only)
    batch_size_val:         default batch_size

What it logs, through the recipe's own metric logger (disk log, and W&B when configured):
    Step <global step> | val_loss:<mean per-token loss over the whole split>           every N steps
    Step <global step> | val_loss:<...> epoch:<0-based epoch, as in epoch_N/>          each epoch end
The loss is the training loss (the recipe's loss_fn, same masking), weighted by tokens over the
whole split; with several ranks each evaluates its share and the sums are all-reduced, so the
number is the same as on one device. Hooks: the profiler's step() (called by the stock loop once
per optimizer step, after global_step moved) and save_checkpoint() (called once per epoch end,
just before the checkpoint is written). Nothing of the stock loop is copied.
"""
from __future__ import annotations

import math
from functools import partial
from typing import Any, Callable

import torch


class _AfterStep:
    """Wraps the recipe's profiler: calls `after` after each step(); everything else is the profiler's."""

    def __init__(self, inner: Any, after: Callable[[], None]) -> None:
        self._inner = inner
        self._after = after

    def __enter__(self):
        self._inner.__enter__()
        return self

    def __exit__(self, *exc):
        return self._inner.__exit__(*exc)

    def step(self) -> None:
        self._inner.step()
        self._after()

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


class ValidationLoop:
    _val_dataloader = None
    _run_val_every_n_steps: int | None = None
    _last_val_step = -1

    # ---- hooks ---------------------------------------------------------------------------------
    def setup(self, cfg) -> None:
        super().setup(cfg)
        self._setup_validation(cfg)

    def save_checkpoint(self, epoch: int, *args, **kwargs) -> None:
        if self._val_dataloader is not None:
            self.validate(epoch=epoch)
        super().save_checkpoint(epoch, *args, **kwargs)

    # ---- validation ----------------------------------------------------------------------------
    def _setup_validation(self, cfg) -> None:
        if cfg.get("dataset_val") is None:
            return
        every = cfg.get("run_val_every_n_steps")
        if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
            raise ValueError(f"run_val_every_n_steps must be a positive integer or null, got {every!r}")
        self._run_val_every_n_steps = every
        self._val_dataloader = self._setup_val_data(cfg.dataset_val, int(cfg.get("batch_size_val") or cfg.batch_size),
                                                    cfg.get("collate_fn", "torchtune.data.padded_collate_sft"))
        self._profiler = _AfterStep(self._profiler, self._maybe_validate_after_step)

    def _world(self) -> tuple[int, int]:
        return int(getattr(self, "world_size", 1)), int(getattr(self, "rank", 0))

    def _setup_val_data(self, cfg_dataset, batch_size: int, collate_name: str):
        from torch.utils.data import DataLoader, Subset
        from torchtune import config
        from torchtune.config._utils import _get_component_from_path

        ds = config.instantiate(cfg_dataset, self._tokenizer)
        world, rank = self._world()
        n = len(ds)
        if n == 0:
            raise ValueError("the validation dataset (dataset_val) is empty")
        # Rank r takes rows r, r + world, ...: every row exactly once over all ranks (no padding
        # duplicates, unlike DistributedSampler), in order (no shuffling).
        mine = list(range(rank, n, world))
        self._val_batches = math.ceil(math.ceil(n / world) / batch_size)  # the same on every rank
        collate = partial(_get_component_from_path(collate_name), padding_idx=self._tokenizer.pad_id,
                          ignore_idx=self._loss_fn.ignore_index)
        self._val_filler = collate([ds[0]])  # for a rank whose share runs out first: computed, not counted
        return DataLoader(Subset(ds, mine), batch_size=batch_size, shuffle=False, drop_last=False, collate_fn=collate)

    def _maybe_validate_after_step(self) -> None:
        n, step = self._run_val_every_n_steps, self.global_step
        if not n or step == 0 or step % n or step == self._last_val_step:
            return
        if self._steps_per_epoch and step % self._steps_per_epoch == 0:
            return  # the last step of an epoch: validated (with its epoch) just before the checkpoint
        self.validate()

    def _batch_loss_sum(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum of per-token losses, number of tokens) of one batch, masked as in training."""
        labels = batch.pop("labels")
        ignore = self._loss_fn.ignore_index
        tokens = (labels != ignore).sum()
        logits = self._model(**batch)
        labels = torch.hstack((labels[..., 1:], torch.full_like(labels[..., :1], ignore)))
        if not isinstance(logits, list):
            labels = labels.reshape(-1)
            logits = logits.reshape(-1, logits.size(-1))
        return self._loss_fn(logits, labels).float() * tokens, tokens

    @torch.no_grad()
    def validate(self, epoch: int | None = None) -> float:
        """Mean per-token loss over the validation split; logged at the current global step."""
        from torchtune import utils

        world, rank = self._world()
        was_training = self._model.training
        self._model.eval()
        total = torch.zeros((), dtype=torch.float64, device=self._device)
        count = torch.zeros((), dtype=torch.float64, device=self._device)
        batches = iter(self._val_dataloader)
        for _ in range(self._val_batches):
            batch = next(batches, None)
            weight = 1.0
            if batch is None:  # this rank's share is a batch shorter: run the forward all ranks need, count nothing
                batch, weight = {k: v.clone() for k, v in self._val_filler.items()}, 0.0
            utils.batch_to_device(batch, self._device)
            loss_sum, tokens = self._batch_loss_sum(batch)
            total += weight * loss_sum.double()
            count += weight * tokens.double()
        if world > 1:
            torch.distributed.all_reduce(total)
            torch.distributed.all_reduce(count)
        if was_training:
            self._model.train()
        val_loss = (total / count).item() if count.item() else float("nan")
        self._last_val_step = self.global_step
        if rank == 0:
            payload = {"val_loss": val_loss}
            if epoch is not None:
                payload["epoch"] = epoch
            self._metric_logger.log_dict(payload, step=self.global_step)
        return val_loss
