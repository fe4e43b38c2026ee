"""`ck run` with one eval script per checkpoint (every task of that checkpoint in one job): the
job gets $CK_TASKS = the tasks not done yet with their fingerprints, never a finished one, and
every task again when its checkpoint is trained again; a job is done when all its tasks are; the
per-task layout of older experiments keeps working beside it."""
from __future__ import annotations

import shutil

from cruijff_kit.state.artifacts import eval_fingerprint
from cruijff_kit.run.plan import plan_experiment
from cruijff_kit.state.jobs import is_done

from .helpers import FakeRun, make_experiment, starts, tasks_given
from .helpers import by_key, run


def _fps(exp, key: str, tasks) -> str:
    script = exp / key.split("/")[0] / "eval" / f"{key.split('/')[-1]}.slurm"
    return " ".join(f"{t}={eval_fingerprint(script, t)}" for t in tasks)


def test_one_job_per_checkpoint_runs_every_task_then_only_what_is_missing(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("a", epochs=2, tasks=("cap", "spell", "sums"), per_checkpoint=True),
                                     FakeRun("ctl", control=True, tasks=("cap", "spell"), per_checkpoint=True)])
    plan = plan_experiment(exp)
    assert [(j.key, j.tasks) for j in plan.evals] == [
        ("a/eval/epoch0", ("cap", "spell", "sums")), ("a/eval/epoch1", ("cap", "spell", "sums")),
        ("ctl/eval/base", ("cap", "spell"))]
    assert [e.task for e in plan.get("a/eval/epoch0").expected()] == ["cap", "spell", "sums"]
    report = run(exp)
    assert all(j.ok for j in report.jobs), report.to_dict()
    given = dict(tasks_given(exp))
    assert given == {"a/eval/epoch0": _fps(exp, "a/eval/epoch0", ("cap", "spell", "sums")),
                     "a/eval/epoch1": _fps(exp, "a/eval/epoch1", ("cap", "spell", "sums")),
                     "ctl/eval/base": _fps(exp, "ctl/eval/base", ("cap", "spell"))}
    logs = exp / "a" / "eval" / "logs"
    assert sorted(p.name for p in logs.glob("*.eval")) == sorted(
        f"a__epoch{e}__{t}.eval" for e in (0, 1) for t in ("cap", "spell", "sums"))

    # one task's log of epoch 1 lost: only that task runs again, in that checkpoint's job
    (logs / "a__epoch1__spell.eval").unlink()
    job = plan_experiment(exp).get("a/eval/epoch1")
    assert not is_done(job)
    kept = {p: p.stat().st_mtime_ns for p in logs.glob("*.eval")}
    again = by_key(run(exp))
    assert again["a/eval/epoch1"].action == "submit" and again["a/eval/epoch1"].ok
    assert again["a/eval/epoch0"].action == again["ctl/eval/base"].action == again["a/finetune"].action == "done"
    assert tasks_given(exp)[-1] == ("a/eval/epoch1", _fps(exp, "a/eval/epoch1", ("spell",)))
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # the finished tasks' logs untouched
    assert len(starts(exp, "a/eval/epoch0")) == 1 and len(starts(exp, "a/eval/epoch1")) == 2

    # a third pass: everything done, nothing submitted
    third = run(exp)
    assert not third.submitted and len(tasks_given(exp)) == 4


def test_a_checkpoint_trained_again_is_evaluated_on_every_task(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("a", tasks=("cap", "spell"), per_checkpoint=True)])
    assert all(j.ok for j in run(exp).jobs)
    shutil.rmtree(tmp_path / "outputs" / "ck-out-a" / "epoch_0")  # the checkpoint is gone: training again
    again = by_key(run(exp))
    assert again["a/finetune"].action == "submit" and again["a/eval/epoch0"].action == "submit"
    # its old logs would still match, but they are of the old checkpoint: every task runs again
    assert tasks_given(exp)[-1] == ("a/eval/epoch0", _fps(exp, "a/eval/epoch0", ("cap", "spell")))


def test_per_task_scripts_of_older_experiments_plan_and_finish_beside_the_new_layout(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("old", tasks=("cap", "spell")),
                                     FakeRun("new", tasks=("cap", "spell"), per_checkpoint=True)])
    plan = plan_experiment(exp)
    legacy = [j for j in plan.evals if j.run == "old"]
    assert [(j.key, j.tasks, j.per_task) for j in legacy] == [("old/eval/cap_epoch0", ("cap",), True),
                                                              ("old/eval/spell_epoch0", ("spell",), True)]
    assert legacy[0].label == "eval cap epoch 0"
    report = by_key(run(exp))
    assert all(j.ok for j in report.values()), report
    assert {k for k, _ in tasks_given(exp)} == {"new/eval/epoch0"}  # the old scripts got no CK_TASKS
    assert not run(exp).submitted
