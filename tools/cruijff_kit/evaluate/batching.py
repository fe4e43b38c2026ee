"""Batch the ck-hf provider's generate requests without inspect's idle waits.

inspect's Hugging Face provider batches concurrent samples in a background thread that collects
requests until none has arrived for 2 seconds, and each waiting sample polls its result once a
second. On the small evaluations ck runs (a few to a few hundred samples per task, the whole task
arriving at once) that is about 3 seconds of idle time per task, every task, per checkpoint.

This batcher keeps inspect's batching itself (its `_drain_batches` groups requests by model,
tokenizer and settings up to the batch size; its `_generate_batch` tokenizes, generates and
decodes) and changes only the two waits: the collection stops after QUIET_S without a new request
(samples are dispatched together, milliseconds apart), and a sample awaits its result on the event
loop instead of polling. Scores are those of inspect's batching: batches are built by the same
rule, only closed sooner.

`install()` points inspect's provider module at it; without the inspect internals it relies on,
inspect's own batching stays in place (slower, same results).
"""
from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from queue import Queue
from typing import Any

QUIET_S = 0.2  # a task's samples reach generate within milliseconds of each other

_queue: Queue = Queue()
_inspects: list = []  # inspect's own batched_generate, once replaced (uninstall puts it back)
_thread: threading.Thread | None = None
_lock = threading.Lock()


def _serve(hf: Any) -> None:
    while True:
        for batch in hf._drain_batches(_queue, timeout=QUIET_S):
            hf._generate_batch(batch)


def _start(hf: Any) -> None:
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_serve, args=(hf,), name="ck-hf-batches", daemon=True)
            _thread.start()


def install() -> bool:
    """Use this batcher for inspect's HF provider (and so for ck-hf); False where inspect lacks
    the pieces it reuses."""
    from inspect_ai.model._providers import hf

    if not all(hasattr(hf, name) for name in ("batched_generate", "_drain_batches", "_generate_batch",
                                              "_QueueItem", "_batch_key")):
        return False

    async def batched_generate(input: Any) -> Any:
        _start(hf)
        future: Future = Future()
        _queue.put(hf._QueueItem(input=input, future=future, key=hf._batch_key(input)))
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # another async backend (trio): wait for the result off the loop
            import anyio

            return await anyio.to_thread.run_sync(future.result)
        return await asyncio.wrap_future(future)

    if not _inspects:
        _inspects.append(hf.batched_generate)
    hf.batched_generate = batched_generate
    return True


def uninstall() -> None:
    """inspect's own batching again (bench/eval_overhead.py compares the two)."""
    from inspect_ai.model._providers import hf

    if _inspects:
        hf.batched_generate = _inspects[0]
