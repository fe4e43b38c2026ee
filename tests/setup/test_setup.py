"""ck setup: detection on the real local cluster, what it writes, and what it refuses."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cruijff_kit.cli import main
from cruijff_kit.errors import CkError
from cruijff_kit.localconfig import load_local_config, parse_local_config
from cruijff_kit.setup.detect import Detected, Partition, detect, gpu_types_of, parse_sinfo
from cruijff_kit.setup.probe import Probe
from cruijff_kit.setup.write import Question, propose, render_text, setup

CK = Path(sys.executable).with_name("ck")


def ck(*args, cwd=None):
    return subprocess.run([str(CK), *args], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, cwd=cwd)


@pytest.mark.slurm
def test_setup_on_local_slurm_then_doctor_passes(slurm_cluster, tmp_path):
    out = tmp_path / "tmp" / "claude.local.md"
    p = ck("setup", "--yes", "--out", str(out))
    assert p.returncode == 0, p.stderr
    cfg = load_local_config(out)
    assert cfg.slurm.partition == "debug"
    # sized to fit the cluster's node, so jobs from it can start
    node = subprocess.run(["sinfo", "-h", "-p", "debug", "-o", "%c %m"], capture_output=True,
                          text=True, timeout=30).stdout.split()
    assert 0 < cfg.slurm.cpus <= int(node[0])
    assert cfg.venv == sys.prefix and not cfg.conda_env

    d = ck("doctor", "--config", str(out), "--json")
    report = json.loads(d.stdout)
    failed = [c for c in report["checks"] if not c["ok"]]
    assert d.returncode == 0 and report["ok"] and not failed, failed or d.stderr
    names = {c["name"] for c in report["checks"]}
    assert {"slurm", "sacct", "claude.local.md", "version torchao"} <= names
    assert not any(c["info"] for c in report["checks"] if c["name"] in ("slurm", "sacct"))


def test_refuses_to_overwrite_without_force(tmp_path, capsys):
    out = tmp_path / "claude.local.md"
    out.write_text("mine\n")
    assert main(["setup", "--yes", "--out", str(out)]) == 2
    assert out.read_text() == "mine\n"
    assert "--force" in capsys.readouterr().err
    assert main(["setup", "--yes", "--force", "--out", str(out)]) == 0
    assert "slurm_partition:" in out.read_text()
    assert not list(tmp_path.glob(".claude.local.md.*"))  # no temp file left behind


def test_json_is_one_document(tmp_path):
    out = tmp_path / "c.md"
    p = ck("setup", "--yes", "--json", "--out", str(out))
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["written"] and Path(doc["path"]) == out.resolve()
    assert set(doc["values"]) >= {"slurm_partition", "venv", "conda_env"}
    p = ck("setup", "--yes", "--json", "--out", str(out))
    assert p.returncode == 2 and json.loads(p.stdout)["error"].startswith("already exists")


def test_without_slurm_writes_a_local_file(tmp_path):
    det = detect(Probe(path=str(tmp_path)), scratch=[tmp_path])  # an empty PATH: no sbatch, conda, GPUs
    assert not det.slurm and det.scratch_dirs == [str(tmp_path)]
    assert any("local executor" in n for n in det.notes)
    res = setup(tmp_path / "out.md", detected=det)
    cfg = load_local_config(res.path)
    assert cfg.slurm.partition == "" and cfg.slurm.account == ""
    assert cfg.output_dir_base == str(tmp_path / "ck-outputs") and cfg.scratch_dir == str(tmp_path)
    # time and memory stay unset: the scaffold sizes each run from its estimate and its model
    assert cfg.slurm.cpus == 4 and cfg.slurm.mem == "" and cfg.slurm.time == ""


SINFO = """gpu*|1-00:00:00|gpu:a100:4(S:0-1)|64|512000
gpu*|1-00:00:00|gpu:h100:8(S:0-1),shard:8|96|1024000
cpu|30:00|(null)|32|128000
"""


def test_parse_sinfo_merges_node_groups():
    parts = {p.name: p for p in parse_sinfo(SINFO)}
    assert parts["gpu"].default and not parts["cpu"].default
    assert parts["gpu"].cpus == 96 and parts["gpu"].mem_mb == 1024000
    assert parts["cpu"].gres == [] and parts["cpu"].timelimit == "30:00"
    assert gpu_types_of("gpu:a100:4(S:0-1),shard:8") == ["a100"] and gpu_types_of("gpu:2") == []


def test_asks_only_what_it_cannot_detect(tmp_path):
    det = Detected(user="me", slurm=True, partitions=parse_sinfo(SINFO), accounts=["lab-a", "lab-b"],
                   conda_envs={"base": "/c", "ft": "/c/envs/ft", "other": "/c/envs/other"},
                   scratch_dirs=["/scratch/gpfs/me"])
    values, questions = propose(det)
    assert values["slurm_partition"] == "gpu" and values["output_dir_base"] == "/scratch/gpfs/me/ck-outputs"
    assert {q.key for q in questions} == {"slurm_account", "conda_env", "my_wandb_project"}

    answers = {"slurm_account": "lab-b", "conda_env": "ft", "my_wandb_project": "sweeps"}
    asked = []

    def ask(q: Question) -> str:
        asked.append(q.key)
        return answers[q.key]

    res = setup(tmp_path / "asked.md", detected=det, interactive=True, ask=ask)
    cfg = load_local_config(res.path)
    assert (cfg.slurm.account, cfg.conda_env, cfg.my_wandb_project) == ("lab-b", "ft", "sweeps")
    assert sorted(asked) == sorted(answers) == sorted(res.asked)

    # not interactive (--yes, or no terminal): the defaults, nobody asked
    res = setup(tmp_path / "yes.md", detected=det, ask=ask)
    cfg = load_local_config(res.path)
    assert (cfg.slurm.account, cfg.conda_env, cfg.my_wandb_project) == ("lab-a", "", "")
    assert res.asked == [] and len(asked) == 3

    # a partition limit shorter than the default time, and a small node, shrink the defaults
    det.partitions = [Partition("short", True, "30:00", cpus=2, mem_mb=8000)]
    v, _ = propose(det)
    assert (v["slurm_time"], v["slurm_cpus"], v["slurm_mem"]) == ("00:30:00", "2", "7G")


def test_values_read_back_or_are_refused():
    det = Detected(user="me")
    values, _ = propose(det)
    values["output_dir_base"] = "/data/my runs/ck"
    values["slurm_modules"] = "anaconda3/2024.6, cudatoolkit/12.4"
    cfg = parse_local_config(render_text(values, det))
    assert cfg.output_dir_base == "/data/my runs/ck"
    assert cfg.slurm.modules == ["anaconda3/2024.6", "cudatoolkit/12.4"]
    values["my_wandb_project"] = "proj #1"
    with pytest.raises(CkError) as err:
        render_text(values, det)
    assert err.value.field == "my_wandb_project"


def test_set_answers_up_front_and_bad_values_write_nothing(tmp_path, capsys):
    out = tmp_path / "c.md"
    assert main(["setup", "--yes", "--json", "--out", str(out), "--set", "my_wandb_project=sweeps",
                 "--set", "conda_env=ft"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert "my_wandb_project" not in {q["key"] for q in doc["defaulted"]}
    cfg = load_local_config(out)
    assert cfg.my_wandb_project == "sweeps" and cfg.conda_env == "ft" and cfg.venv == ""
    bad = tmp_path / "bad.md"
    assert main(["setup", "--yes", "--out", str(bad), "--set", "slurm_time=soon"]) == 2
    assert main(["setup", "--yes", "--out", str(bad), "--set", "nonsense=1"]) == 2
    assert not bad.exists()


def test_ask_stdin_takes_numbers_names_and_defaults(monkeypatch, capsys):
    import io

    from cruijff_kit.setup.write import ask_stdin

    q = Question("slurm_account", "SLURM account", "lab-a", ["lab-a", "lab-b"])
    monkeypatch.setattr("sys.stdin", io.StringIO("2\n\nother\n"))
    assert [ask_stdin(q), ask_stdin(q), ask_stdin(q), ask_stdin(q)] == ["lab-b", "lab-a", "other", "lab-a"]
    captured = capsys.readouterr()
    assert captured.out == "" and "SLURM account [lab-a]" in captured.err  # stdout stays for --json
