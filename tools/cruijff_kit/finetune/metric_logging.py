"""A torchtune metric logger that writes to disk AND to Weights & Biases.

torchtune takes one `metric_logger`; we want the DiskLogger's text log in every run (ck reads
it, and it survives without network) plus W&B when the experiment asks for it. Used in
finetune.yaml as `_component_: cruijff_kit.finetune.metric_logging.DiskAndWandBLogger`.

W&B runs offline unless the user is logged in (WANDB_API_KEY or a netrc entry for
api.wandb.ai), so a job on a node without credentials or network still succeeds.
No key is ever read from or written to our files.
"""
from __future__ import annotations

import netrc
import os
from typing import Any, Mapping

from torchtune.training.metric_logging import DiskLogger, MetricLoggerInterface, WandBLogger


def wandb_logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


class DiskAndWandBLogger(MetricLoggerInterface):
    def __init__(
        self,
        log_dir: str,
        project: str,
        name: str | None = None,
        group: str | None = None,
        entity: str | None = None,
        wandb_dir: str | None = None,
        **wandb_kwargs: Any,
    ) -> None:
        if not wandb_logged_in():
            os.environ.setdefault("WANDB_MODE", "offline")
        self._loggers: list[MetricLoggerInterface] = [DiskLogger(log_dir=log_dir)]
        kwargs = {k: v for k, v in {"name": name, **wandb_kwargs}.items() if v is not None}
        # W&B files beside the disk log (log_dir/wandb/...), not in the job's working directory.
        self._loggers.append(WandBLogger(project=project, entity=entity, group=group,
                                         log_dir=wandb_dir or log_dir, **kwargs))

    def log(self, name: str, data: Any, step: int) -> None:
        for logger in self._loggers:
            logger.log(name, data, step)

    def log_dict(self, payload: Mapping[str, Any], step: int) -> None:
        for logger in self._loggers:
            logger.log_dict(payload, step)

    def log_config(self, config: Any) -> None:
        for logger in self._loggers:
            logger.log_config(config)

    def close(self) -> None:
        for logger in self._loggers:
            logger.close()

