"""The capitalization data generator: seeded, reproducible, both on-disk forms."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from cruijff_kit.blueprints.capitalization.generate import SHIPPED_WORDS, generate, read_words
from cruijff_kit.errors import CkError


def _digest(path):
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


def test_json_shape_and_split_sizes(tmp_path):
    data = json.loads(generate(tmp_path / "w.json", n=50, seed=3, word_source=SHIPPED_WORDS).read_text())
    assert [len(data[s]) for s in ("train", "validation", "test")] == [40, 5, 5]
    rows = [r for s in data.values() for r in s]
    assert all(r["output"] == r["input"].capitalize() and r["input"].islower() for r in rows)
    assert len({r["input"] for r in rows}) == 50  # no word in two splits


def test_same_seed_same_bytes_other_seed_other_words(tmp_path):
    a = generate(tmp_path / "a.json", n=30, seed=1)
    b = generate(tmp_path / "b.json", n=30, seed=1)
    c = generate(tmp_path / "c.json", n=30, seed=2)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_parquet_is_one_file_per_split_and_reproducible(tmp_path):
    import pyarrow.parquet as pq

    a = generate(tmp_path / "a.parquet", n=20, seed=0, format="parquet")
    b = generate(tmp_path / "b.parquet", n=20, seed=0, format="parquet")
    assert sorted(p.name for p in a.iterdir()) == ["test.parquet", "train.parquet", "validation.parquet"]
    assert _digest(a) == _digest(b)
    as_json = json.loads(generate(tmp_path / "a.json", n=20, seed=0).read_text())
    assert pq.read_table(a / "train.parquet").to_pylist() == as_json["train"]


def test_repeat_multiplies_only_the_train_rows(tmp_path):
    once = json.loads(generate(tmp_path / "a.json", n=10, seed=0).read_text())
    thrice = json.loads(generate(tmp_path / "b.json", n=10, seed=0, repeat=3).read_text())
    assert thrice["train"] == once["train"] * 3 and thrice["test"] == once["test"]


def test_word_source_is_filtered(tmp_path):
    src = tmp_path / "words"
    src.write_text("# comment\nApple it's zebra zebra ok quixotic\nnaïve banana\nsupercalifragilistic\n")
    assert read_words(src) == ["banana", "quixotic", "zebra"]
    assert len(read_words(SHIPPED_WORDS)) >= 300


@pytest.mark.parametrize("kwargs,field", [({"n": 10_000}, "n"), ({"n": 0}, "n"), ({"splits": (0.5, 0.5, 0.5)}, "splits"),
                                          ({"word_source": "/nonexistent"}, "word_source"), ({"format": "csv"}, "format"), ({"repeat": 0}, "repeat")])
def test_bad_arguments(tmp_path, kwargs, field):
    with pytest.raises(CkError) as e:
        generate(tmp_path / "x", **kwargs)
    assert e.value.field == field


def test_cli(tmp_path):
    out = tmp_path / "cli.json"
    proc = subprocess.run([sys.executable, "-m", "cruijff_kit.blueprints.capitalization.generate", str(out),
                           "--n", "10", "--seed", "4", "--word-source", str(SHIPPED_WORDS)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == generate(tmp_path / "api.json", n=10, seed=4, word_source=SHIPPED_WORDS).read_bytes()
    bad = subprocess.run([sys.executable, "-m", "cruijff_kit.blueprints.capitalization.generate", str(out), "--n", "100000"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "usable" in bad.stdout
