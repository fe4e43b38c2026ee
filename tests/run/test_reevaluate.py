"""Re-evaluation of a finished experiment with a fine-tuned run: a task added to the plan (a new
eval script beside the old ones, as `ck scaffold` writes it) is performed on the existing
checkpoint; training and the finished evaluation are not repeated."""
from __future__ import annotations

from .helpers import FakeRun, eval_script, make_experiment, stage_eval_log, starts
from .helpers import by_key, run


def test_added_task_runs_only_the_new_evaluations(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("a", epochs=2)])
    first = run(exp)
    assert all(j.ok for j in first.jobs), first.to_dict()
    assert len(starts(exp, "a/finetune")) == 1
    out_dir, marker = tmp_path / "outputs" / "ck-out-a", tmp_path / "launches.txt"
    for epoch in (0, 1):  # the new task, at every epoch
        script = exp / "a" / "eval" / f"spell_epoch{epoch}.slurm"
        script.write_text(eval_script(FakeRun("a", tasks=("spell",)), "spell", epoch, out_dir, marker))
        stage_eval_log(script, "a", "spell", epoch, out_dir, marker)
    again = by_key(run(exp))
    assert again["a/finetune"].action == "done"
    assert again["a/eval/cap_epoch0"].action == again["a/eval/cap_epoch1"].action == "done"
    assert again["a/eval/spell_epoch0"].action == again["a/eval/spell_epoch1"].action == "submit"
    assert again["a/eval/spell_epoch0"].ok and again["a/eval/spell_epoch1"].ok
    assert len(starts(exp, "a/finetune")) == 1 and len(starts(exp, "a/eval/cap_epoch0")) == 1
    assert len(starts(exp, "a/eval/spell_epoch1")) == 1
