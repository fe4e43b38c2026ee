"""What earlier experiments measured, for estimates: every COMPLETED fine-tune of a model found in
the ledgers of experiments under some directories, with the settings it ran with (its
setup_finetune.yaml) and its wall time. Bounded: at most MAX_LEDGERS ledgers are read."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ..errors import CkError
from . import layout
from .ledger import Ledger
from .yaml_input import read_mapping_or_empty

MAX_LEDGERS = 200  # earlier experiments scanned for measurements (bounded work for `ck design`)


def measured_finetunes(model_path: str, search_dirs: Iterable, *,
                       exclude: Path | None = None) -> list[tuple[dict, float]]:
    """(setup_finetune.yaml, elapsed seconds) of every COMPLETED fine-tune of `model_path` in the
    ledgers EXP/.ck/ledger.json of experiments directly under `search_dirs`."""
    want = str(Path(model_path).expanduser().resolve()) if model_path else ""
    ledgers: list[Path] = []
    for d in dict.fromkeys(Path(x).expanduser() for x in search_dirs if x):
        if d.is_dir():
            ledgers += sorted(d.glob(f"*/{layout.CK_DIR}/{layout.LEDGER}"))
    skip = Path(exclude).resolve() if exclude is not None else None
    found: list[tuple[dict, float]] = []
    for ledger in ledgers[:MAX_LEDGERS]:
        exp = ledger.parents[1]
        if skip is not None and exp.resolve() == skip:
            continue
        try:
            entries = Ledger(exp).entries()
        except CkError:
            continue  # unreadable: not evidence
        for entry in entries.values():
            if entry.kind != "finetune" or not entry.completed or entry.last is None:
                continue
            elapsed = entry.last.seconds
            if not elapsed:
                continue
            setup = read_mapping_or_empty(layout.setup_path(exp / entry.run))
            ckpt = str(setup.get("model_checkpoint") or "")
            if ckpt and str(Path(ckpt).expanduser().resolve()) == want:
                found.append((setup, elapsed))
    return found
