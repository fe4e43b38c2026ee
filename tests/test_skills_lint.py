"""Every SKILL.md is a valid skill, every `ck …` command it shows is accepted by the real CLI, the
skills' trigger phrases do not overlap, every path they name exists in the installed plugin, and
what an agent reads from design to analyze stays short."""
import os
import re
import shlex
from pathlib import Path

import pytest
import yaml

from cruijff_kit.cli import build_parser, normalize_argv

from tests.skill_lines import ck_lines

ROOT = Path(__file__).resolve().parents[1]
# what `claude plugin install` copies (the marketplace's source folder, links followed)
PLUGIN = ROOT / "tools" / "plugin"
SKILLS = sorted(ROOT.glob("skills/*/SKILL.md"))
DESIGN_TO_ANALYZE = ["design-experiment", "scaffold-experiment", "scaffold-torchtune", "scaffold-inspect",
                     "run-experiment", "run-torchtune", "run-inspect", "analyze-experiment"]
READ_BUDGET = 20 * 1024
# a reference counts as read when the skill tells the agent to read it
TOLD_TO_READ = re.compile(r"\bread\s+`(references/[A-Za-z0-9_.-]+)`", re.I)
# fences may be indented (inside numbered steps)
PATHLIKE = re.compile(r"`((?:tools|templates|scripts|skills|references|bench|tests)/[A-Za-z0-9_./{},-]+)`")


def frontmatter(text):
    assert text.startswith("---\n"), "SKILL.md must start with YAML frontmatter"
    end = text.index("\n---", 4)
    return text[4:end], text[end + 4:]


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
        argv = normalize_argv(shlex.split(line.split(" #")[0])[1:])
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
        candidates = [PLUGIN / path, PLUGIN / "skills" / skill.parent.name / path]
        assert any(c.exists() for c in candidates), \
            f"{skill}: names {path}, which an installed plugin does not have (plugin/ and its links)"


def trigger_words(description: str) -> list[str]:
    """The 'Use when/after/for/to ...' part of a description, as lower-case words, minus 'use X'."""
    m = re.search(r"\bUse\s+\w+\s+(.*)$", description, re.S)
    assert m, "the description must say when to use the skill ('Use when ...')"
    return re.findall(r"[a-z0-9_]+", m.group(1).lower())


def trigram_set(words):
    return {tuple(words[i:i + 3]) for i in range(len(words) - 2)}


def test_trigger_phrases_do_not_overlap():
    """An agent picks a skill by its description: two skills whose triggers share a three-word
    phrase ('start training a', 'run an experiment') compete for the same request."""
    triggers = {}
    for skill in SKILLS:
        meta = yaml.safe_load(frontmatter(skill.read_text())[0])
        triggers[skill.parent.name] = trigram_set(trigger_words(meta["description"]))
    names = sorted(triggers)
    clashes = [(a, b, " ".join(t)) for i, a in enumerate(names) for b in names[i + 1:]
               for t in sorted(triggers[a] & triggers[b])]
    assert not clashes, "trigger phrases shared by two skills: " + "; ".join(f"{a} / {b}: '{t}'" for a, b, t in clashes)


def test_trigram_check_catches_an_overlap():
    a = trigger_words("X. Use when the user asks to start training now.")
    b = trigger_words("Y. Use for anything that means start training now.")
    assert trigram_set(a) & trigram_set(b) == {("start", "training", "now")}


def read_from_design_to_analyze() -> dict[str, int]:
    """Bytes an agent reads going design -> analyze: each SKILL.md plus the references it says to read."""
    sizes = {}
    for name in DESIGN_TO_ANALYZE:
        skill = ROOT / "skills" / name / "SKILL.md"
        text = skill.read_text()
        sizes[f"{name}/SKILL.md"] = len(text.encode())
        for ref in TOLD_TO_READ.findall(text):
            sizes[f"{name}/{ref}"] = len((skill.parent / ref).read_bytes())
    return sizes


def test_what_an_agent_reads_from_design_to_analyze_stays_short():
    sizes = read_from_design_to_analyze()
    total = sum(sizes.values())
    print(f"\nbytes read for design -> analyze: {total} (budget {READ_BUDGET}): {sizes}")
    assert total <= READ_BUDGET


def test_plugin_folder_is_the_marketplace_source():
    import json

    market = json.loads((ROOT / ".claude-plugin/marketplace.json").read_text())
    assert [p["source"] for p in market["plugins"]] == ["./tools/plugin"]
    assert market["metadata"]["description"]
    assert (PLUGIN / ".claude-plugin/plugin.json").is_file() and not (PLUGIN / "CLAUDE.md").exists()
    for link in ("skills", "templates", "scripts", "pyproject.toml", "tools/cruijff_kit", "tools/torchtune"):
        assert (PLUGIN / link).resolve() == (ROOT / link).resolve(), link
    assert os.access(PLUGIN / "bin" / "ck", os.X_OK)
    # the repository's top level stays the project's own: the plugin lives under tools/
    assert not (ROOT / "plugin").exists() and not (ROOT / "bin").exists()
