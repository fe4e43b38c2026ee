"""`ck CMD --json-schema` documents CMD's --json, and the real output of each command matches its
schema: every key documented, every documented key present, types as stated. A field added to a
command without documenting it (or documented but gone) fails here."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from cruijff_kit.cli import build_parser
from cruijff_kit.commands._common import json_schema

ROOT = Path(__file__).resolve().parents[2]
TASK = ROOT / "tools/cruijff_kit/blueprints/capitalization/inspect_task.py"


def json_commands():
    """Every (sub)command path that accepts --json, from the real parser."""
    import argparse

    found = []

    def walk(parser, path):
        if path and "--json" in parser._option_string_actions:
            found.append(" ".join(path))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, [*path, name])

    walk(build_parser(), [])
    return found


def ck(*argv, cwd, env=None, ok=(0,)):
    r = subprocess.run([sys.executable, "-m", "cruijff_kit", *map(str, argv)], capture_output=True, text=True,
                       cwd=cwd, env=env, timeout=300)
    assert r.returncode in ok, f"ck {' '.join(map(str, argv))} -> {r.returncode}\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}"
    return r


def check(command: str, output: str):
    schema = json_schema(command)
    errors = sorted(Draft202012Validator(schema).iter_errors(json.loads(output)), key=str)
    assert not errors, f"ck {command} --json does not match its schema:\n" + "\n".join(
        f"  at {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors[:15])


def test_every_json_command_documents_itself():
    commands = json_commands()
    assert {"design", "scaffold", "run", "status", "analyze", "task new", "doctor", "setup", "launch start"} <= set(commands)
    undocumented = [c for c in commands if json_schema(c) is None]
    assert not undocumented, f"--json without a schema in commands/json_fields.yaml: {undocumented}"
    for c in commands:
        Draft202012Validator.check_schema(json_schema(c))


def test_json_schema_flag_prints_it_without_other_arguments(tmp_path):
    out = json.loads(ck("design", "--json-schema", cwd=tmp_path).stdout)
    assert out["title"] == "ck design --json" and "runs" in out["properties"]
    assert out["properties"]["runs"]["description"]
    out = json.loads(ck("launch", "status", "--json-schema", cwd=tmp_path).stdout)
    assert out["title"] == "ck launch status --json"


def test_a_schema_catches_an_undocumented_key():
    with pytest.raises(AssertionError, match="not allowed"):
        check("doctor", json.dumps({"ok": True, "failed": 0, "checks": [], "surprise": 1}))
    with pytest.raises(AssertionError, match="required"):
        check("doctor", json.dumps({"ok": True, "checks": []}))


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    from cruijff_kit.blueprints.capitalization.generate import generate
    from cruijff_kit.tiny_model import make_tiny_model

    root = tmp_path_factory.mktemp("schema")
    make_tiny_model(root / "model")
    generate(root / "data.json", n=12)
    return root


def test_workflow_outputs_match_their_schemas(experiment, monkeypatch):
    import os

    root = experiment
    env = {**os.environ, "CK_EXECUTOR": "local", "CK_LOCAL_CONFIG": str(root / "claude.local.md")}
    (root / "claude.local.md").write_text(f"- venv: {sys.prefix}\n")
    exp = root / "exp"
    r = ck("design", exp, "--model", f"tiny={root / 'model'}", "--dataset", root / "data.json", "--ranks", "4,8",
           "--epochs", "2", "--gpus", "0", "--task", f"capitalization={TASK}@0,1", "--json", cwd=root, env=env)
    check("design", r.stdout)
    check("scaffold", ck("scaffold", exp, "--dry-run", "--json", cwd=root, env=env).stdout)
    check("scaffold", ck("scaffold", exp, "--json", cwd=root, env=env).stdout)
    run_dir = next(p.parent for p in sorted(exp.glob("*/setup_finetune.yaml")))
    check("scaffold", ck("scaffold", run_dir, "--json", cwd=root, env=env).stdout)
    check("run", ck("run", exp, "--dry-run", "--executor", "local", "--json", cwd=root, env=env).stdout)
    check("status", ck("status", exp, "--json", cwd=root, env=env).stdout)
    check("analyze", ck("analyze", exp, "--json", cwd=root, env=env).stdout)
    check("doctor", ck("doctor", "--json", cwd=root, env=env, ok=(0, 1)).stdout)
    check("task new", ck("task", "new", "my_task", "--dataset", root / "data.json", "--out", root / "my_task.py",
                         "--json", cwd=root, env=env).stdout)
    bad = ck("design", root / "exp2", "--model", "no-equals-sign", "--json", cwd=root, env=env, ok=(2,))
    errors = list(Draft202012Validator(json_schema("design")["$defs"]["error"]).iter_errors(json.loads(bad.stdout)))
    assert not errors, errors


def test_setup_output_matches_its_schema(tmp_path):
    r = ck("setup", "--yes", "--json", "--out", tmp_path / "claude.local.md", cwd=tmp_path)
    check("setup", r.stdout)
