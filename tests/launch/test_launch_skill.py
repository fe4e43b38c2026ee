"""The launch-training skill: frontmatter rules, size, and every `ck` line it shows parses."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from cruijff_kit.cli import build_parser

SKILL_DIR = Path(__file__).resolve().parents[2] / "skills" / "launch-training"
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
DOCS = [SKILL_DIR / "SKILL.md", *sorted((SKILL_DIR / "references").glob("*.md"))]


def test_frontmatter_and_size():
    text = (SKILL_DIR / "SKILL.md").read_text()
    raw = text[4:text.index("\n---", 4)]
    assert "<" not in raw and ">" not in raw
    meta = yaml.safe_load(raw)
    assert meta["name"] == "launch-training"
    assert 0 < len(meta["description"]) <= 1024
    assert len(text.encode()) <= 4096


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_ck_line_is_accepted_by_the_cli(doc):
    lines = [line.strip() for block in FENCE.findall(doc.read_text()) for line in block.splitlines()
             if line.strip().startswith("ck ")]
    assert lines, f"{doc.name} shows no ck commands"
    for line in lines:
        try:
            args = build_parser().parse_args(shlex.split(line)[1:])
        except SystemExit:
            pytest.fail(f"{doc.name}: `{line}` is rejected by the ck parser")
        assert args.func and args.command == "launch", line
