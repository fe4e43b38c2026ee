"""Capitalization data: {"input": "apple", "output": "Apple"}, seeded and reproducible.

Words come from --word-source, else Debian's wamerican list (/usr/share/dict/words) when it is
installed, else words.txt beside this file. Only lowercase ASCII words of MIN_LEN..MAX_LEN letters
are used, so the same seed gives the same data wherever the same source exists.

Formats (what finetune.yaml and the inspect task read):
  json     OUT is one file: {"train": [...], "validation": [...], "test": [...]}
  parquet  OUT is a directory: train.parquet, validation.parquet, test.parquet (columns input, output)

    python -m cruijff_kit.blueprints.capitalization.generate OUT --n 100 --seed 0 [--format json|parquet]
        [--word-source PATH] [--repeat R]
"""
from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

from cruijff_kit.errors import CkError

SYSTEM_WORDS = Path("/usr/share/dict/words")
SHIPPED_WORDS = Path(__file__).with_name("words.txt")
SPLITS = ("train", "validation", "test")
MIN_LEN, MAX_LEN = 3, 10
_WORD = re.compile(r"[a-z]+")


def default_word_source() -> Path:
    return SYSTEM_WORDS if SYSTEM_WORDS.is_file() else SHIPPED_WORDS


def read_words(path: str | Path, *, min_len: int = MIN_LEN, max_len: int = MAX_LEN) -> list[str]:
    """Sorted, distinct, lowercase ASCII words of the allowed lengths ('#' starts a comment)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise CkError(f"cannot read word list: {e.strerror}", file=path, field="word_source") from e
    words = set()
    for line in text.splitlines():
        for token in line.split("#", 1)[0].split():
            if _WORD.fullmatch(token) and min_len <= len(token) <= max_len:
                words.add(token)
    return sorted(words)


def make_rows(words: list[str]) -> list[dict[str, str]]:
    return [{"input": w, "output": w.capitalize()} for w in words]


def split_rows(n: int, *, seed: int, splits: tuple[float, float, float], words: list[str]) -> dict[str, list[dict]]:
    if n < 1:
        raise CkError(f"n must be at least 1, got {n}", field="n")
    if len(splits) != 3 or any(f < 0 for f in splits) or abs(sum(splits) - 1.0) > 1e-9:
        raise CkError(f"splits must be three non-negative fractions summing to 1, got {splits}", field="splits")
    if n > len(words):
        raise CkError(f"asked for {n} words but the word source has only {len(words)} usable ones", field="n",
                      hint="lower --n or pass a bigger --word-source")
    chosen = random.Random(seed).sample(words, n)
    n_train = round(n * splits[0])
    n_val = min(round(n * splits[1]), n - n_train)
    parts = (chosen[:n_train], chosen[n_train:n_train + n_val], chosen[n_train + n_val:])
    return {name: make_rows(part) for name, part in zip(SPLITS, parts)}


def generate(
    out_path: str | Path,
    *,
    n: int = 100,
    seed: int = 0,
    splits: tuple[float, float, float] = (0.8, 0.1, 0.1),
    word_source: str | Path | None = None,
    format: str = "json",
    repeat: int = 1,
) -> Path:
    """Write the dataset and return its path (a .json file, or a directory of parquet files).

    `repeat` > 1 repeats the train split's rows: many optimizer steps in ONE epoch, so a tiny
    demo model learns without writing a checkpoint per pass.
    """
    if repeat < 1:
        raise CkError(f"repeat must be at least 1, got {repeat}", field="repeat")
    words = read_words(word_source or default_word_source())
    data = split_rows(n, seed=seed, splits=tuple(splits), words=words)
    data["train"] = data["train"] * repeat
    out = Path(out_path)
    if format == "json":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    elif format == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        out.mkdir(parents=True, exist_ok=True)
        for name, rows in data.items():
            table = pa.table({"input": [r["input"] for r in rows], "output": [r["output"] for r in rows]},
                             schema=pa.schema([("input", pa.string()), ("output", pa.string())]))
            pq.write_table(table, out / f"{name}.parquet")
    else:
        raise CkError(f"format {format!r} is not one of: json, parquet", field="format")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cruijff_kit.blueprints.capitalization.generate",
                                 description="Write a seeded capitalization dataset.")
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--splits", type=float, nargs=3, default=(0.8, 0.1, 0.1), metavar=("TRAIN", "VAL", "TEST"))
    ap.add_argument("--format", choices=("json", "parquet"), default="json")
    ap.add_argument("--word-source", default=None)
    ap.add_argument("--repeat", type=int, default=1, help="repeat the train rows (more steps per epoch)")
    a = ap.parse_args(argv)
    try:
        out = generate(a.out, n=a.n, seed=a.seed, splits=tuple(a.splits), word_source=a.word_source, format=a.format,
                       repeat=a.repeat)
    except CkError as e:
        print(f"error: {e}")
        return e.exit_code
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
