"""Issue 20 item 4: a damaged launch run dir (meta.json of the wrong shape or types, a torn exit
record) is a one-line error for that run (exit 2, no traceback) and an `unreadable` row in `ck launch
list`, never a reason to hide every other run; a launch home that cannot be written is a one-line error."""
from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.slow  # real training, evaluation or training processes: `make test`, not test-fast

DAMAGE = {
    "a list": lambda meta: [meta],
    "no log": lambda meta: {k: v for k, v in meta.items() if k != "log"},
    "pid as text": lambda meta: {**meta, "pid": "twelve"},
    "exit code as bool": lambda meta: {**meta, "exit_code": True},
    "environment as text": lambda meta: {**meta, "environment": "venv"},
    "loss health without state": lambda meta: {**meta, "loss_health": {"evidence": None}},
}


def _finished_run(ck, script_repo, wait_done, body="print('step 0 loss 1.0')\n"):
    repo = script_repo(body)
    run_id = ck("launch", "start", repo, "--command", "python train.py", "--wait", "0", "--json").json["run_id"]
    wait_done(run_id)
    return run_id


def _one_line_error(result):
    assert result.rc == 2, result
    assert "Traceback" not in result.err and "Traceback" not in result.out, result
    lines = [line for line in result.err.splitlines() if line.strip()]
    # the error line, and at most its hint
    assert lines[0].startswith("ck launch: error:") and all(l.startswith("  hint:") for l in lines[1:]), result
    assert len(lines) <= 2, result
    return "\n".join(lines)


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_meta_json_is_one_line_and_listed_as_unreadable(ck, script_repo, wait_done, launch_env, damage):
    healthy = _finished_run(ck, script_repo, wait_done)
    broken = _finished_run(ck, script_repo, wait_done)
    meta_file = launch_env / broken / "meta.json"
    meta_file.write_text(json.dumps(DAMAGE[damage](json.loads(meta_file.read_text()))))

    for command in (("status", broken), ("diagnose", broken), ("logs", broken), ("stop", broken)):
        line = _one_line_error(ck("launch", *command))
        assert str(meta_file) in line
    as_json = ck("launch", "status", broken, "--json")
    assert as_json.rc == 2 and as_json.json["file"] == str(meta_file), as_json

    listed = ck("launch", "list", "--json")
    assert listed.rc == 0, listed
    rows = {r["run_id"]: r for r in listed.json}
    assert rows[healthy]["state"] == "succeeded"
    assert rows[broken]["state"] == "unreadable" and str(meta_file) in rows[broken]["error"]
    table = ck("launch", "list")
    assert table.rc == 0 and f"{broken}\tunreadable" in table.out and healthy in table.out, table


def test_a_torn_exit_record_is_one_line(ck, script_repo, wait_done, launch_env):
    run_id = _finished_run(ck, script_repo, wait_done)
    meta_file = launch_env / run_id / "meta.json"
    meta = json.loads(meta_file.read_text())
    meta.pop("exit_code", None)  # so status reads exit.json again
    meta_file.write_text(json.dumps(meta))
    (launch_env / run_id / "exit.json").write_text("[1, 2]")
    _one_line_error(ck("launch", "status", run_id))
    assert ck("launch", "list", "--json").json[0]["state"] == "unreadable"


def test_a_launch_home_that_cannot_be_written_is_one_line(ck, script_repo, tmp_path):
    repo = script_repo("print('hi')\n")
    if os.geteuid() == 0:
        # root writes through permission bits: a home below a regular file cannot be created either
        blocker = tmp_path / "not-a-dir"
        blocker.write_text("")
        home = blocker / "launch"
    else:
        home = tmp_path / "ro-home"
        home.mkdir()
        home.chmod(0o555)
    result = ck("launch", "start", repo, "--command", "python train.py", "--wait", "0",
                env={"CK_LAUNCH_HOME": str(home)})
    line = _one_line_error(result)
    assert "cannot create the run's state dir" in line and "CK_LAUNCH_HOME" in line


def test_status_still_answers_when_it_cannot_remember(ck, script_repo, wait_done, launch_env):
    """status only caches what it learned (exit code, loss health): a read-only run dir still gets an answer."""
    from cruijff_kit.launch import process, state

    run_id = _finished_run(ck, script_repo, wait_done)
    folder = launch_env / run_id
    meta = json.loads((folder / "meta.json").read_text())
    for key in ("exit_code", "loss_health"):
        meta.pop(key, None)
    (folder / "meta.json").write_text(json.dumps(meta))

    def refuse(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    original = state.write_meta
    state.write_meta = refuse
    try:
        result = process.status(run_id)
    finally:
        state.write_meta = original
    assert result["state"] == "succeeded" and result["exit_code"] == 0
