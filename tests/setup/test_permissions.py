"""The shipped Claude Code permission rules name real ck commands, and the always-on set
(.claude/settings.json) cannot submit or start anything."""
import json
import re
import shlex
from pathlib import Path

import pytest

from cruijff_kit.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
RULE = re.compile(r"^Bash\((?:\.venv/bin/)?(ck(?: .*)?)\)$")
READ_ONLY = {"status", "doctor", "analyze"}
READ_ONLY_LAUNCH = {"detect", "status", "logs", "diagnose", "gpus", "list"}


def rules(name):
    data = json.loads((ROOT / ".claude" / name).read_text())
    allow = data["permissions"]["allow"]
    assert allow and all(RULE.match(r) for r in allow), [r for r in allow if not RULE.match(r)]
    return allow


def argv_of(rule):
    """The command a rule admits: a trailing wildcard filled with --json, any other with a DIR."""
    cmd = re.sub(r":\*$", "", RULE.match(rule).group(1))
    cmd = re.sub(r" \*$", " --json", cmd).replace("*", "EXP_DIR")
    return shlex.split(cmd)[1:]


def parse(argv):
    """Parsed by the real CLI, completed with the fewest positionals it needs (None: --help/--version)."""
    if argv[0].startswith("--"):
        return None
    parser = build_parser()
    for extra in ([], ["X"], ["X", "--command", "true"], ["X", "--dataset", "d.json", "--out", "t.py"]):
        try:
            return parser.parse_args([*argv, *extra])
        except SystemExit:
            continue
    pytest.fail(f"ck {' '.join(argv)} is not accepted by the ck parser")


@pytest.mark.parametrize("rule", rules("settings.json"))
def test_always_allowed_rules_are_read_only(rule):
    args = parse(argv_of(rule))
    if args is None:
        return
    if args.command == "launch":
        assert argv_of(rule)[1] in READ_ONLY_LAUNCH
    else:
        assert args.command in READ_ONLY or getattr(args, "dry_run", False), rule


def test_read_only_set_covers_the_brief():
    allow = set(rules("settings.json"))
    for cmd in ("ck status", "ck doctor", "ck analyze", "ck launch detect", "ck launch status",
                "ck launch logs", "ck launch diagnose", "ck launch gpus"):
        assert f"Bash({cmd}:*)" in allow
    assert "Bash(ck run * --dry-run)" in allow and "Bash(ck scaffold * --dry-run)" in allow
    assert not any(r.startswith(("Bash(ck run:", "Bash(ck launch start")) for r in allow)


def test_opt_in_set_parses_and_submits():
    allow = rules("settings.submit.example.json")
    assert "Bash(ck run:*)" in allow and "Bash(ck launch start:*)" in allow
    for rule in allow:
        assert parse(argv_of(rule)) is not None, rule
