"""ck doctor: passes here, and names the fix when the environment is broken (simulated through
the version reader, a fake PATH and a broken experiment, never by breaking the real venv)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cruijff_kit.cli import main
from cruijff_kit.doctor import checks
from cruijff_kit.setup.probe import Probe

CANONICAL = Path(__file__).resolve().parents[1] / "experiment" / "canonical.md"


@pytest.fixture(autouse=True)
def no_commands(monkeypatch, tmp_path):
    """Tests see only the commands they put on PATH: this machine's SLURM/GPUs do not leak in."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


@pytest.fixture
def config(tmp_path):
    """A valid claude.local.md that names nothing machine-specific."""
    p = tmp_path / "claude.local.md"
    p.write_text("# mine\n- slurm_time: 00:30:00\n- slurm_mem: 1G\n- slurm_cpus: 1\n")
    return p


def doctor_json(capsys, *args):
    rc = main(["doctor", *args, "--json"])
    out = capsys.readouterr().out
    report = json.loads(out)  # one JSON document, nothing else on stdout
    return rc, report, {c["name"]: c for c in report["checks"]}


def fake_bin(tmp_path, **scripts):
    """A PATH directory holding only the given commands (name -> shell body)."""
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    for name, body in scripts.items():
        f = d / name
        f.write_text(f"#!/bin/sh\n{body}\n")
        f.chmod(0o755)
    return d


def test_torchao_too_new_names_the_fix(monkeypatch, capsys, tmp_path, config):
    real = checks.installed_version
    monkeypatch.setattr(checks, "installed_version", lambda d: "0.16.0" if d == "torchao" else real(d))
    rc, report, by = doctor_json(capsys, "--config", str(config))
    assert rc == 1 and not report["ok"]
    bad = by["version torchao"]
    assert not bad["ok"] and "pip install torchao==0.15.0" in bad["fix"]
    assert "torchtune 0.6.1" in bad["detail"] and "0.16" in bad["detail"]
    assert [n for n, c in by.items() if not c["ok"]] == ["version torchao"]


def test_other_version_problems(monkeypatch):
    fake = {"torch": "2.13.0+cu128", "torchtune": None, "torchao": "0.15.0", "inspect-ai": "0.3.285",
            "transformers": "4.0.0", "accelerate": "1.15.0"}
    by = {c.name: c for c in checks.check_versions(fake.get)}
    assert by["version torch"].ok  # a local build tag is the same release
    assert not by["version torchtune"].ok and "torchtune==0.6.1" in by["version torchtune"].fix
    assert not by["version transformers"].ok and "transformers==5.23.0" in by["version transformers"].fix


@pytest.mark.parametrize("sacct", [None, "echo 'sacct: error: Slurm accounting storage is disabled' >&2; exit 1"],
                         ids=["missing", "failing"])
def test_no_sacct_names_accounting(monkeypatch, capsys, tmp_path, config, sacct):
    scripts = {"sbatch": "exit 0", "sinfo": "echo 'debug*|infinite|(null)|2|4000'"}
    if sacct:
        scripts["sacct"] = sacct
    monkeypatch.setenv("PATH", str(fake_bin(tmp_path, **scripts)))
    rc, _, by = doctor_json(capsys, "--config", str(config))
    assert rc == 1
    assert by["slurm"]["ok"] and "debug*" in by["slurm"]["detail"]
    assert not by["sacct"]["ok"] and "slurmdbd" in by["sacct"]["fix"] and "accounting" in by["sacct"]["fix"]


def test_no_slurm_is_info_not_failure(monkeypatch, capsys, tmp_path, config):
    monkeypatch.setenv("PATH", str(fake_bin(tmp_path)))  # no sbatch, no nvidia-smi, no conda
    monkeypatch.setenv("WANDB_MODE", "offline")
    rc, report, by = doctor_json(capsys, "--config", str(config))
    assert rc == 0 and report["ok"], [c for c in report["checks"] if not c["ok"]]
    assert by["slurm"]["info"] and "local executor will be used" in by["slurm"]["detail"]
    assert "sacct" not in by
    assert by["gpus"]["ok"] and by["gpus"]["info"]


@pytest.mark.parametrize("preset", ["", "local"])
def test_unreachable_controller_fails_unless_running_locally(monkeypatch, capsys, tmp_path, config, preset):
    down = "echo 'slurm_load_partitions: Unable to contact slurm controller (connect failure)' >&2; exit 1"
    monkeypatch.setenv("PATH", str(fake_bin(tmp_path, sbatch="exit 0", sinfo=down)))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("CK_EXECUTOR", preset)
    rc, _, by = doctor_json(capsys, "--config", str(config))
    assert "Unable to contact slurm controller" in by["slurm"]["detail"]
    if preset:
        assert rc == 0 and by["slurm"]["ok"] and by["slurm"]["info"]
    else:
        assert rc == 1 and not by["slurm"]["ok"] and "CK_EXECUTOR=local" in by["slurm"]["fix"]


def test_config_problems_point_at_file_and_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("PATH", str(fake_bin(tmp_path, sbatch="exit 0", sacct="exit 0",
                                            sinfo="echo 'debug*|infinite|(null)|2|4000'")))
    bad = tmp_path / "bad.md"
    bad.write_text("# x\n\n- slurm_cpus: lots\n")
    rc, _, by = doctor_json(capsys, "--config", str(bad))
    assert rc == 1 and f"{bad}:3" in by["claude.local.md"]["detail"]

    bad.write_text("- slurm_partition: gpu\n- venv: /nonexistent/venv\n")
    rc, _, by = doctor_json(capsys, "--config", str(bad))
    assert rc == 1
    partition = by["config slurm_partition"]["detail"]
    assert f"{bad}:1" in partition and "debug" in partition
    assert f"{bad}:2" in by["config venv"]["detail"]

    bad.write_text("- slurm_partition: debug\n- slurm_cpus: 8\n- slurm_mem: 64G\n")
    rc, _, by = doctor_json(capsys, "--config", str(bad))
    assert rc == 1 and not by["config slurm_cpus"]["ok"] and not by["config slurm_mem"]["ok"]

    assert main(["doctor", "--config", str(tmp_path / "absent.md")]) == 2


def make_experiment(tmp_path, model: Path, dataset: Path) -> Path:
    exp = tmp_path / "exp"
    exp.mkdir()
    text = CANONICAL.read_text().replace("/models/Llama-3.2-1B-Instruct", str(model))
    (exp / "experiment_summary.md").write_text(text.replace("/data/words_4L_80P_300.json", str(dataset)))
    return exp


def test_missing_model_path_names_model_and_path(capsys, tmp_path, config):
    data = tmp_path / "words.json"
    data.write_text("{}")
    missing = tmp_path / "models" / "Llama-3.2-1B-Instruct"
    exp = make_experiment(tmp_path, missing, data)
    rc, _, by = doctor_json(capsys, str(exp), "--config", str(config))
    assert rc == 1
    model = by["model Llama-3.2-1B-Instruct"]
    assert not model["ok"] and str(missing) in model["detail"] and "does not exist" in model["detail"]
    assert "Llama-3.2-1B-Instruct" in model["fix"] and "experiment_summary.md" in model["fix"]
    assert by["dataset"]["ok"]

    missing.mkdir(parents=True)
    (missing / "config.json").write_text("{}")
    rc, _, by = doctor_json(capsys, str(exp), "--config", str(config))
    # an empty config.json names no architecture: training would fail, so doctor says so (it used to
    # pass any directory with a config.json; the model layout checks are tested in tests/families)
    model = by["model Llama-3.2-1B-Instruct"]
    assert not model["ok"] and "architecture" in model["detail"]


def test_dir_without_summary_is_bad_input(tmp_path, capsys):
    assert main(["doctor", str(tmp_path)]) == 2
    assert "experiment_summary.md" in capsys.readouterr().err


def test_gpus(tmp_path):
    broken = Probe(path=str(fake_bin(tmp_path, **{"nvidia-smi": "echo 'NVIDIA-SMI has failed' >&2; exit 9"})))
    c = checks.check_gpus(broken, lambda d: "2.13.0")
    assert not c.ok and "NVIDIA-SMI has failed" in c.detail and "driver" in c.fix
    ok = Probe(path=str(fake_bin(tmp_path, **{"nvidia-smi": "echo '0, NVIDIA H100, 81559 MiB'"})))
    c = checks.check_gpus(ok, lambda d: "2.13.0+cpu")
    assert c.ok and "H100" in c.detail and "CPU build" in c.detail


def test_wandb_never_prints_the_key(monkeypatch, capsys, tmp_path, config):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "secret-key-0123456789")
    assert main(["doctor", "--config", str(config)]) in (0, 1)
    out = capsys.readouterr()
    assert "secret-key-0123456789" not in out.out + out.err
    assert "wandb: logged in" in out.out
    monkeypatch.delenv("WANDB_API_KEY")
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.setenv("WANDB_MODE", "online")
    c = checks.check_wandb(None)
    assert not c.ok and "wandb login" in c.fix


def test_doctor_imports_nothing_heavy(config):
    code = ("import sys, contextlib, io\n"
            "from cruijff_kit.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    main(['doctor', '--config', {str(config)!r}, '--json'])\n"
            "print(sorted(m for m in ('torch', 'torchtune', 'torchao', 'inspect_ai', 'transformers', "
            "'accelerate', 'wandb') if m in sys.modules))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "WANDB_MODE": "offline"})
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"
