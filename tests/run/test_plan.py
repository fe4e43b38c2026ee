"""Jobs and 'done' derived from disk: checkpoints, real inspect-ai log headers, stored resources."""
from __future__ import annotations

from pathlib import Path

from cruijff_kit.run.plan import plan_experiment
import pytest

from cruijff_kit.errors import CkError
from cruijff_kit.executors.resources import Resources
from cruijff_kit.state.job_resources import resources_text
from cruijff_kit.state import jobs
from cruijff_kit.state.jobs import is_done
from cruijff_kit.run.recovery import oom_retry, timeout_retry

from .helpers import FakeRun, make_experiment, write_weights


def write_real_log(path: Path, task: str, model: str, status: str) -> None:
    from inspect_ai.log import EvalConfig, EvalDataset, EvalLog, EvalSpec, write_eval_log

    path.parent.mkdir(parents=True, exist_ok=True)
    import datetime as dt

    # created now: an untagged log counts only when it is not older than the eval script
    spec = EvalSpec(created=dt.datetime.now(dt.timezone.utc).isoformat(), task=task, dataset=EvalDataset(), model=model,
                    config=EvalConfig())
    write_eval_log(EvalLog(eval=spec, status=status), str(path))


def test_jobs_keys_dependencies_and_checkpoints(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("r1", epochs=2, tasks=("cap", "other")), FakeRun("ctl", control=True)])
    plan = plan_experiment(exp)
    keys = [j.key for j in plan.jobs]
    assert keys == ["ctl/eval/cap_base", "r1/finetune", "r1/eval/cap_epoch0", "r1/eval/cap_epoch1",
                    "r1/eval/other_epoch0", "r1/eval/other_epoch1"]
    ev = plan.get("r1/eval/cap_epoch1")
    assert ev.depends_on == "r1/finetune" and ev.checkpoints == (tmp_path / "outputs/ck-out-r1/epoch_1",)
    assert plan.get("ctl/eval/cap_base").depends_on is None
    ft = plan.get("r1/finetune")
    assert [p.name for p in ft.checkpoints] == ["epoch_0", "epoch_1"]
    # a finetune is done only when every epoch dir holds weights
    (tmp_path / "outputs/ck-out-r1/epoch_0").mkdir(parents=True)
    write_weights(tmp_path / "outputs/ck-out-r1/epoch_0/model.safetensors")
    (tmp_path / "outputs/ck-out-r1/epoch_1").mkdir()
    assert not is_done(ft, plan)
    write_weights(tmp_path / "outputs/ck-out-r1/epoch_1/model.safetensors")
    assert is_done(ft, plan)


def test_relative_output_dir_is_relative_to_the_run_dir(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("r")])
    (exp / "r/setup_finetune.yaml").write_text("output_dir: ckpt\nepochs: 1\n")
    plan = plan_experiment(exp)
    assert plan.get("r/finetune").checkpoints == (exp / "r/ckpt/epoch_0",)


def test_eval_done_reads_real_inspect_headers(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("r", epochs=2, tasks=("cap", "other")), FakeRun("ctl", control=True)])
    plan = plan_experiment(exp)
    logs = exp / "r/eval/logs"
    write_real_log(logs / "a.eval", "cap", "hf/outputs/ck-out-r/epoch_1", "success")
    write_real_log(logs / "b.eval", "cap", "hf/outputs/ck-out-r/epoch_0", "error")
    write_real_log(logs / "c.eval", "tasks/other.py@other", "hf/outputs/ck-out-r/epoch_0", "success")
    write_real_log(exp / "ctl/eval/logs/d.eval", "cap", "hf/models/base", "success")
    done = {j.key: is_done(j, plan) for j in plan.evals}
    assert done == {"ctl/eval/cap_base": True, "r/eval/cap_epoch0": False, "r/eval/cap_epoch1": True,
                    "r/eval/other_epoch0": True, "r/eval/other_epoch1": False}  # b.eval: error is no result


def test_gpus_come_from_the_stored_resources_never_the_script_text(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("r", tasks=("cap",), per_checkpoint=True)])
    ft, ev = exp / "r/finetune.slurm", exp / "r/eval/epoch0.slurm"
    # the scripts say otherwise: what counts is the record the scaffold wrote beside them
    ft.write_text(ft.read_text().replace("#SBATCH --job-name=ft", "#SBATCH --job-name=ft\n#SBATCH --gres=gpu:8"))
    (exp / "r/finetune.resources.json").write_text(resources_text(Resources(gpus_per_node=2, nodes=1, mem_mb=8192)))
    (exp / "r/eval/epoch0.resources.json").write_text(resources_text(Resources(gpus_per_node=1)))
    plan = plan_experiment(exp)
    job = plan.get("r/finetune")
    assert (job.gpus, job.resources.mem_mb) == (2, 8192)
    assert job.spec().resources == job.resources and job.spec().gpus == 2  # what the executor is handed
    assert plan.get("r/eval/epoch0").gpus == 1
    assert not [w for w in plan.warnings if "stored resources" in w]


def test_scripts_of_an_older_ck_get_their_gpus_re_derived_and_say_so(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("r", tasks=("cap",), per_checkpoint=True), FakeRun("ctl", control=True)])
    (exp / "r/setup_finetune.yaml").write_text(f"output_dir: {tmp_path / 'o'}\nepochs: 1\nnum_gpus: 4\n")
    plan = jobs.plan_experiment(exp, plan_gpus=2)  # run/plan.py passes the summary's GPUs
    assert plan.get("r/finetune").gpus == 4  # the run's setup file
    # evaluations: the plan's GPUs, at most one, as the scaffold gives them (a control run too)
    assert plan.get("r/eval/epoch0").gpus == 1 and plan.get("ctl/eval/cap_base").gpus == 1
    assert jobs.plan_experiment(exp, plan_gpus=0).get("ctl/eval/cap_base").gpus == 0
    unplanned = jobs.plan_experiment(exp)  # no plan to ask: the run's setup file, else none
    assert unplanned.get("r/eval/epoch0").gpus == 1 and unplanned.get("ctl/eval/cap_base").gpus == 0
    [warning] = [w for w in plan.warnings if "stored resources" in w]
def test_a_broken_resources_record_is_refused_naming_it(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("r")])
    record = exp / "r/finetune.resources.json"
    for text, field in [('{"gpus_per_node": "two"}', "gpus_per_node"), ('{"partition": "a\\nb"}', "partition"),
                        ('{"gpu": 1}', "gpu"), ("[1]", None), ("{", None)]:
        record.write_text(text)
        with pytest.raises(CkError) as e:
            plan_experiment(exp)
        assert e.value.file == str(record) and e.value.field == field, text


def test_recovery_rules(tmp_path):
    new, why = oom_retry({}, attempts_so_far=0, finetune_yaml=None, setup_yaml=None)
    assert new is None and "cannot be halved" in why  # no batch size known
    y = tmp_path / "finetune.yaml"
    y.write_text("batch_size: 6\ngradient_accumulation_steps: 2\n")
    new, why = oom_retry({}, attempts_so_far=0, finetune_yaml=y, setup_yaml=None)
    assert new == {"batch_size": "3", "gradient_accumulation_steps": "4"} and "12 unchanged" in why
    assert oom_retry(new, attempts_so_far=1, finetune_yaml=y, setup_yaml=None)[0] is None  # 3 is odd
    assert oom_retry({"batch_size": "8"}, attempts_so_far=3, finetune_yaml=y, setup_yaml=None)[0] is None
    ck = tmp_path / "epoch_0"
    assert timeout_retry({}, attempts_so_far=0, checkpoints=(ck,))[0] is None
    ck.mkdir()
    write_weights(ck / "model.safetensors")
    assert timeout_retry({"batch_size": "4"}, attempts_so_far=0, checkpoints=(ck,))[0] == {
        "batch_size": "4", "resume_from_checkpoint": "True"}
