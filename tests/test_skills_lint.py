"""Every SKILL.md is a valid skill, and every `ck …` command it shows is accepted by the real CLI."""
import re
import shlex
from pathlib import Path

import pytest
import yaml

from cruijff_kit.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
SKILLS = sorted(ROOT.glob("skills/*/SKILL.md"))
# fences may be indented (inside numbered steps)
FENCE = re.compile(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```", re.S | re.M)
PATHLIKE = re.compile(r"`((?:tools|templates|scripts|skills|references|bench|tests)/[A-Za-z0-9_./{},-]+)`")


def frontmatter(text):
    assert text.startswith("---\n"), "SKILL.md must start with YAML frontmatter"
    end = text.index("\n---", 4)
    return text[4:end], text[end + 4:]


def ck_lines(text):
    for block in FENCE.findall(text):
        for line in block.splitlines():
            line = line.strip()
            if line.startswith("ck "):
                yield line


def test_there_are_skills():
    names = {p.parent.name for p in SKILLS}
    assert {"design-experiment", "scaffold-experiment", "scaffold-torchtune", "scaffold-inspect"} <= names


@pytest.mark.parametrize("skill", SKILLS, ids=lambda p: p.parent.name)
def test_frontmatter(skill):
    raw, _ = frontmatter(skill.read_text())
    assert "<" not in raw and ">" not in raw, "no angle brackets in frontmatter"
    meta = yaml.safe_load(raw)
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", meta["name"]) and len(meta["name"]) <= 64
    assert meta["name"] == skill.parent.name
    assert 0 < len(meta["description"]) <= 1024


@pytest.mark.parametrize("skill", SKILLS, ids=lambda p: p.parent.name)
def test_ck_commands_parse(skill):
    parser = build_parser()
    for line in ck_lines(skill.read_text()):
        argv = shlex.split(line.split(" #")[0])[1:]
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"{skill}: `{line}` is rejected by the ck parser (exit {exc.code})")
        assert getattr(args, "func", None), f"{skill}: `{line}` names no runnable command"


@pytest.mark.parametrize("skill", SKILLS, ids=lambda p: p.parent.name)
def test_named_paths_exist(skill):
    text = skill.read_text()
    for ref in (skill.parent / "references").glob("*.md"):
        text += ref.read_text()
    for path in PATHLIKE.findall(text):
        if "{" in path:
            continue
        candidates = [ROOT / path, skill.parent / path]
        assert any(c.exists() for c in candidates), f"{skill}: names {path}, which does not exist"
