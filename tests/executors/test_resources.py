"""Resources -> #SBATCH lines: every field, the one translation every generated script uses, and
values no #SBATCH option can carry refused with the setting's name (and file and line where
the value came from one)."""
from __future__ import annotations

import shlex

import pytest

from cruijff_kit.errors import CkError
from cruijff_kit.executors.resources import (Resources, format_mem, format_time, parse_mem_mb, parse_time_min,
                                             sbatch_options)
from cruijff_kit.localconfig import parse_local_config
from cruijff_kit.templating import environment

EVERY_FIELD = Resources(job_name="exp_run", account="lab-a", partition="gpu,gpu-long", qos="short",
                        constraint="(a100|h100)&ib", time_min=36 * 60 + 30, nodes=2, tasks_per_node=4,
                        cpus_per_task=8, mem_mb=80 * 1024, gpus_per_node=4, output="slurm-%j.out")


def header(res: Resources) -> list[str]:
    """What the shared partial renders for `res` (templates/partials/slurm.j2)."""
    text = environment().from_string('{% import "partials/slurm.j2" as p %}{{ p.sbatch_header(r) }}').render(r=res)
    return [line for line in text.splitlines() if line]


def test_every_field_becomes_its_sbatch_option_in_order():
    assert sbatch_options(EVERY_FIELD) == [
        ("job-name", "exp_run"), ("account", "lab-a"), ("partition", "gpu,gpu-long"), ("qos", "short"),
        ("constraint", "(a100|h100)&ib"), ("time", "1-12:30:00"), ("nodes", "2"), ("ntasks-per-node", "4"),
        ("cpus-per-task", "8"), ("mem", "80G"), ("gres", "gpu:4"), ("output", "slurm-%j.out")]
    assert header(EVERY_FIELD) == [
        "#SBATCH --job-name=exp_run", "#SBATCH --account=lab-a", "#SBATCH --partition=gpu,gpu-long",
        "#SBATCH --qos=short", "#SBATCH --constraint='(a100|h100)&ib'", "#SBATCH --time=1-12:30:00",
        "#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=4", "#SBATCH --cpus-per-task=8", "#SBATCH --mem=80G",
        "#SBATCH --gres=gpu:4", "#SBATCH --output=slurm-%j.out"]
    # what sbatch reads back from those lines is what was asked for
    read = dict(shlex.split(line[len("#SBATCH "):])[0][2:].split("=", 1) for line in header(EVERY_FIELD))
    assert read == dict(sbatch_options(EVERY_FIELD))


def test_empty_fields_are_not_asked_for():
    assert sbatch_options(Resources()) == [("output", "slurm-%j.out")]
    assert header(Resources(output=None, nodes=0, gpus_per_node=0, qos=None)) == []


@pytest.mark.parametrize("text,minutes,back", [
    ("01:00:00", 60, "01:00:00"), ("90", 90, "01:30:00"), ("30:00", 30, "00:30:00"), ("0:30", 1, "00:01:00"),
    ("2:00:00", 120, "02:00:00"), ("1-0", 1440, "1-00:00:00"), ("2-03:04", 2 * 1440 + 184, "2-03:04:00"),
    ("1-00:00:01", 1441, "1-00:01:00"), ("00:15:00", 15, "00:15:00")])
def test_time_is_converted_once_to_minutes(text, minutes, back):
    assert parse_time_min(text) == minutes and format_time(minutes) == back


@pytest.mark.parametrize("text,mb,back", [("32G", 32768, "32G"), ("500M", 500, "500M"), ("64000", 64000, "64000M"),
                                          ("1T", 1024 * 1024, "1024G"), ("2048K", 2, "2M"), ("8gb", 8192, "8G")])
def test_memory_is_converted_once_to_mb(text, mb, back):
    assert parse_mem_mb(text) == mb and format_mem(mb) == back


@pytest.mark.parametrize("bad", ["", "1h", "1:2:3:4", "-5", "1.5", "1-", "soon"])
def test_a_time_sbatch_does_not_read_is_refused(bad):
    with pytest.raises(ValueError, match="SLURM time"):
        parse_time_min(bad)


def test_from_slurm_converts_a_plan_mapping():
    res = Resources.from_slurm({"job_name": "e_r", "account": None, "partition": "gpu", "constraint": "",
                                "time": "02:00:00", "mem": "32G", "cpus": 4, "gpus": 2, "nodes": 1,
                                "modules": ["cuda/12"], "output": "slurm-%j.out"}, tasks_per_node=2)
    assert res == Resources(job_name="e_r", partition="gpu", time_min=120, mem_mb=32768, cpus_per_task=4,
                            gpus_per_node=2, nodes=1, tasks_per_node=2)
    assert Resources.from_dict(res.to_dict()) == res  # the stored form reads back as the same value


@pytest.mark.parametrize("key,value", [
    ("partition", "gpu\n#SBATCH --wrap=evil"), ("account", "lab a"), ("qos", "q;rm"), ("constraint", "a$b"),
    ("job_name", "x'y"), ("output", "out put"), ("time", "1 hour"), ("mem", "32 G"), ("cpus", "4"),
    ("gpus", True), ("nodes", -1), ("partition", "p" * 300)])
def test_a_value_no_sbatch_option_can_carry_is_refused_naming_file_line_and_field(key, value):
    lines = {"partition": 7}
    with pytest.raises(CkError) as e:
        Resources.from_slurm({key: value}, file="setup_finetune.yaml", line_of=lines.get)
    assert e.value.field == f"slurm.{key}" and e.value.file == "setup_finetune.yaml"
    assert e.value.line == lines.get(key)


def test_the_typed_value_itself_refuses_bad_fields():
    with pytest.raises(CkError) as e:
        Resources(partition="a b")
    assert e.value.field == "partition"
    with pytest.raises(CkError) as e:
        Resources(gpus_per_node=65)
    assert e.value.field == "gpus_per_node"
    with pytest.raises(CkError) as e:
        Resources.from_dict({"gpus": 1})
    assert e.value.field == "gpus"


@pytest.mark.parametrize("line,field", [("- slurm_partition: gpu debug", "slurm_partition"),
                                        ("- slurm_account: lab;a", "slurm_account"),
                                        ("- slurm_qos: 'q\"x'", "slurm_qos"),
                                        ("- slurm_constraint: a b", "slurm_constraint")])
def test_claude_local_md_refuses_them_at_their_line(line, field):
    with pytest.raises(CkError) as e:
        parse_local_config(f"# cfg\n{line}\n", "claude.local.md")
    assert (e.value.file, e.value.line, e.value.field) == ("claude.local.md", 2, field)


def test_claude_local_md_qos_reaches_every_script():
    local = parse_local_config("- slurm_qos: short\n- slurm_partition: gpu\n")
    assert Resources.from_slurm(local.sbatch("j", gpus=0)).qos == "short"
    assert "qos" not in parse_local_config("- slurm_partition: gpu\n").sbatch("j", gpus=0)  # unset: not written
