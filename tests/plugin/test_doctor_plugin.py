"""`ck doctor` where an agent first meets it: no claude.local.md (defaults work: info, not a
failure) and, under the plugin's own environment, an ML stack that is installed on first need."""
import json
import subprocess
import sys

from cruijff_kit.commands.doctor import _on_demand_ml_stack
from cruijff_kit.doctor.checks import Check, load_config


def test_missing_claude_local_md_is_information(tmp_path, monkeypatch):
    monkeypatch.delenv("CK_LOCAL_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("cruijff_kit.doctor.checks.find_local_config", lambda *a: None)
    check, cfg = load_config(None, None)
    assert cfg is None and check.ok and check.info
    assert "~/.claude/claude.local.md" in check.detail and "defaults" in check.detail
    assert "ck setup" in check.fix


def test_a_config_that_does_not_parse_still_fails(tmp_path):
    bad = tmp_path / "claude.local.md"
    bad.write_text("- slurm_cpus: many\n")
    check, cfg = load_config(bad, None)
    assert not check.ok and f"{bad}:1" in check.detail


def test_ml_stack_not_installed_yet_is_information_only_in_the_plugin_env(monkeypatch):
    checks = [Check("version surely-not-installed-pkg", False, "not installed"),
              Check("version pyyaml", False, "pyyaml 1.0 is installed, 6.0.3 is pinned")]
    monkeypatch.delenv("CK_MANAGED_VENV", raising=False)
    assert [c.ok for c in _on_demand_ml_stack(checks)] == [False, False]
    monkeypatch.setenv("CK_MANAGED_VENV", "/data/venv")
    missing, wrong = _on_demand_ml_stack(checks)
    assert missing.ok and missing.info and "/data/venv" in missing.detail and "ck setup" in missing.fix
    assert not wrong.ok  # a wrong version would break jobs: still a failure


def test_doctor_json_exit_code_follows_failures_only(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CK_LOCAL_CONFIG": str(tmp_path / "none.md")}
    r = subprocess.run([sys.executable, "-m", "cruijff_kit", "doctor", "--config", str(tmp_path / "none.md"), "--json"],
                       capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 2 and json.loads(r.stdout)["field"] == "--config"  # an explicit path must exist
