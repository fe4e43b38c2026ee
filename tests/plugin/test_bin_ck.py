"""tools/plugin/bin/ck stays in its lane: it never re-points an environment that holds another
checkout's cruijff_kit (refused, with the commands that choose), and its lock and state files live
in the plugin's data directory, never beside the environment (a checkout) or in the plugin."""
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "tools/plugin/bin/ck"


def fake_venv(path: Path, marker: Path) -> Path:
    """An environment with a `ck` (records its arguments) and a `python` that says where its
    cruijff_kit comes from: another checkout's `make test` .venv, as far as bin/ck can tell."""
    (path / "bin").mkdir(parents=True)
    (path / "bin/ck").write_text(f"#!/bin/sh\necho \"$@\" > {marker}\n")
    (path / "bin/python").write_text(f"#!/bin/sh\necho {path.parent}\n")
    for f in ("ck", "python"):
        (path / "bin" / f).chmod(0o755)
    return path


def snapshot(root: Path) -> dict:
    return {str(p): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


def run(env_extra: dict, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path / "home"), **env_extra}
    return subprocess.run(["bash", str(BIN), *args], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=60)


def test_another_checkouts_venv_is_refused_not_re_pointed(tmp_path):
    checkout = tmp_path / "other-checkout"
    venv = fake_venv(checkout / ".venv", tmp_path / "ran")
    data = tmp_path / "data"
    before = snapshot(checkout)
    proc = run({"CK_VENV": str(venv), "CLAUDE_PLUGIN_DATA": str(data)}, tmp_path, "status", "x")
    assert proc.returncode == 2
    assert f"already holds cruijff_kit from {checkout}" in proc.stderr
    assert "unset CK_VENV" in proc.stderr and "CK_VENV_REPOINT=1 ck status x" in proc.stderr
    assert not (tmp_path / "ran").exists()  # nothing ran, nothing installed
    assert snapshot(checkout) == before  # no lock, no stamp, no pip in the checkout
    assert not list(ROOT.joinpath("tools/plugin").glob(".ck-*"))


def test_a_stamped_environment_runs_and_keeps_its_lock_in_the_data_dir(tmp_path):
    venv = fake_venv(tmp_path / "envs" / "v", tmp_path / "ran")
    data = tmp_path / "data"
    key = subprocess.run(["bash", "-c", f"printf '%s' {str(venv)!r} | cksum | cut -d' ' -f1"], capture_output=True,
                         text=True).stdout.strip()
    stamp = subprocess.run(["bash", "-c", f"printf '%s %s\\n' {str(ROOT)!r} \"$(cksum < {str(ROOT)!r}/pyproject.toml"
                            " | cut -d' ' -f1)\""], capture_output=True, text=True).stdout
    (data / "state").mkdir(parents=True)
    (data / "state" / f"venv-{key}.stamp").write_text(stamp)
    before = snapshot(venv.parent)
    proc = run({"CK_VENV": str(venv), "CLAUDE_PLUGIN_DATA": str(data)}, tmp_path, "design", "--help")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "ran").read_text().split() == ["design", "--help"]
    assert snapshot(venv.parent) == before  # nothing beside the environment
    assert [p.name for p in (data / "locks").iterdir()] == [f"install-{key}.lock"]


def test_a_checkouts_own_venv_is_used_as_it_is(tmp_path):
    """Without CK_VENV, `venv:` of claude.local.md naming a checkout's .venv runs it unmanaged."""
    venv = fake_venv(tmp_path / "co" / ".venv", tmp_path / "ran")
    (tmp_path / "claude.local.md").write_text(f"- venv: {venv}\n")
    before = snapshot(tmp_path / "co")
    proc = run({"CK_LOCAL_CONFIG": str(tmp_path / "claude.local.md"), "CLAUDE_PLUGIN_DATA": str(tmp_path / "d")},
               tmp_path, "--version")
    assert proc.returncode == 0 and (tmp_path / "ran").read_text().strip() == "--version"
    assert snapshot(tmp_path / "co") == before and not (tmp_path / "d").exists()
    shutil.rmtree(tmp_path / "co")
