"""The agent's path, played by a test: the user asks

    "LoRA ranks 8 and 32 x batch sizes 2 and 8, lr 0.005, 2 epochs, evaluate every epoch with the
     base model as control, run it here (local executor), which matters more?"

and the agent reads design-experiment -> scaffold-experiment -> run-experiment ->
analyze-experiment, running exactly the `ck` lines of their fenced blocks with the scenario's
values substituted (where a block offers alternatives, the one the scenario asks for), plus only
flags the skills mention. Then the outcome is checked against the artifacts themselves: every
fine-tuned run evaluated at every epoch, the control evaluated, and report.md answering which
parameter matters more with the numbers the .eval logs hold.

Tiny on purpose: the demo's model and its 212 training words, evaluated on 40 held-out test words
(the default split; the demo's model learns the task, not the words). With fewer training rows every
run scores 0 at lr 0.005 and the numbers check would compare zeros. The evaluations are most of the
scenario's time (10 jobs of ~20 s; the 4 trainings take ~7 s each), so the test split is 40 words,
not the demo's 106: half the generation time per job, accuracies still far from 0 (measured 0.98 for
rank 8 / batch size 8 on the 106)."""
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.skill_lines import ck_lines

ROOT = Path(__file__).resolve().parents[2]
TASK = ROOT / "tools/cruijff_kit/blueprints/capitalization/inspect_task.py"
SKILLS_IN_ORDER = ["design-experiment", "scaffold-experiment", "run-experiment", "analyze-experiment"]
QUESTION = "Which matters more, LoRA rank or batch size?"
RANKS, BATCH_SIZES, LR, EPOCHS = (8, 32), (2, 8), "0.005", 2  # 9 evaluations (was 3 epochs: 13)
NEW_TASK = "cap_followup"  # the second request's task (the same task file under a new name)
pytestmark = pytest.mark.slow


def skill_texts(name: str) -> tuple[str, str]:
    """(SKILL.md, SKILL.md + its references): what the agent acts on, and what it may consult."""
    d = ROOT / "skills" / name
    text = (d / "SKILL.md").read_text()
    return text, text + "".join(p.read_text() for p in sorted((d / "references").glob("*.md")))


class ScenarioAgent:
    def __init__(self, root: Path, env: dict):
        self.root, self.env = root, env
        self.exp = root / "rank_vs_batch"
        self.read = ""  # every skill text consulted so far
        self.ran: list[list[str]] = []
        self.outputs: dict[str, dict] = {}

    # --- the substitutions an agent makes from the user's request --------------------------
    def fill(self, line: str) -> list[str] | None:
        argv = shlex.split(line)[1:]
        if argv[0] == "design" and "--spec" in argv:
            return None  # the flags form is the one used (the spec form is its alternative)
        if argv[0] == "run" and "--executor" in argv and argv[argv.index("--executor") + 1] != "local":
            return None  # the user said "run it here"
        values = {"--ranks": ",".join(map(str, RANKS)), "--lrs": LR,
                  "--batch-sizes": ",".join(map(str, BATCH_SIZES)), "--epochs": str(EPOCHS), "--gpus": "0"}
        out = []
        for i, a in enumerate(argv):
            prev = argv[i - 1] if i else ""
            if a == "--vary" or prev == "--vary":
                continue  # the user asked to vary rank and batch size only
            if a == "EXP_DIR":
                a = str(self.exp)
            elif prev in values:
                a = values[prev]
            elif prev == "--model":
                a = f"tiny={self.root / 'model'}"
            elif prev == "--dataset":
                a = str(self.root / "data.json")
            elif prev == "--task":
                name, _, rest = a.partition("=")
                _, _, epochs = rest.partition("@")
                assert epochs == "all", f"the skill's --task example should evaluate every epoch: {a}"
                a = f"{name}={TASK}@{epochs}"
            elif prev == "--question":
                a = QUESTION
            elif prev == "--add-task":  # the second request: the new task on the best checkpoint
                best = best_checkpoint(self.outputs["analyze"])
                a = f"{NEW_TASK}={TASK}@{best['epoch']}:{best['directory']}"
            out.append(a)
        if argv[0] == "design" and "--add-task" not in argv:
            # tiny data: the skill's own advice (a warmup shorter than a quarter of the steps)
            out += ["--set", "Warmup steps=2"]
        if argv[0] == "run" and "--dry-run" not in argv:
            out = [("2" if out[i - 1] == "--poll" else a) for i, a in enumerate(out)]  # tiny jobs end in seconds
        return out

    def run(self, argv: list[str]) -> subprocess.CompletedProcess:
        r = subprocess.run([sys.executable, "-m", "cruijff_kit", *argv], cwd=self.root, env=self.env,
                           capture_output=True, text=True, timeout=3600)
        assert r.returncode == 0, f"ck {shlex.join(argv)} -> exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        self.ran.append(argv)
        if "--json" in argv:
            only = [f"--only {argv[i + 1]}" for i, x in enumerate(argv) if x == "--only"]
            self.outputs[" ".join(argv[:1] + [x for x in argv if x == "--dry-run"] + only)] = json.loads(r.stdout)
        return r

    def follow(self, skill: str, reference: str | None = None) -> None:
        text, everything = skill_texts(skill)
        self.read += everything
        if reference is not None:  # a playbook the skill points to for this kind of request
            text = (ROOT / "skills" / skill / "references" / reference).read_text()
        for line in ck_lines(text):
            argv = self.fill(line)
            if argv is not None:
                self.run(argv)


@pytest.fixture(scope="session")
def scenario(request, tmp_path_factory):
    """The agent's whole path, played once per session (across xdist workers: tests/conftest.py's
    build_once); the tests read what it ran and left on disk."""
    from types import SimpleNamespace

    from tests.shared import build_once

    done = build_once(request, tmp_path_factory, "agent-scenario", _play_scenario)
    return SimpleNamespace(exp=Path(done["exp"]), read=done["read"], ran=done["ran"], outputs=done["outputs"],
                           first_ledger=done["first_ledger"], first_analyze=done["first_analyze"],
                           first_logs={Path(k): v for k, v in done["first_logs"].items()})


def _play_scenario(root: Path) -> dict:
    from cruijff_kit.blueprints.capitalization import demo
    from cruijff_kit.blueprints.capitalization.generate import generate
    from cruijff_kit.tiny_model import make_tiny_model

    root.mkdir(parents=True)
    make_tiny_model(root / "model", **demo.MODEL)
    # the demo's words: 212 to train on (enough for rank 32 to learn), 40 held out for the test split
    generate(root / "data.json", **{**demo.DATA, "n": 265, "splits": (0.8, 0.05, 0.15)})
    home = root / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("CK_EXECUTOR", "CK_LOCAL_CONFIG")}
    # no claude.local.md anywhere: the defaults an agent gets on a fresh machine
    env.update(HOME=str(home), WANDB_MODE="offline", WANDB_DIR=str(root))
    agent = ScenarioAgent(root, env)
    for skill in SKILLS_IN_ORDER:
        agent.follow(skill)
    # the second request: "now evaluate the best checkpoint on a new task, without retraining"
    agent.first_ledger = json.loads((agent.exp / ".ck" / "ledger.json").read_text())["jobs"]
    agent.first_logs = {p: p.stat().st_mtime_ns for p in agent.exp.glob("*/eval/logs/*.eval")}
    agent.first_analyze = agent.outputs["analyze"]
    agent.follow("design-experiment", reference="follow-up.md")
    return {"exp": str(agent.exp), "read": agent.read, "ran": agent.ran, "outputs": agent.outputs,
            "first_ledger": agent.first_ledger, "first_analyze": agent.first_analyze,
            "first_logs": {str(k): v for k, v in agent.first_logs.items()}}


def best_checkpoint(analysis: dict) -> dict:
    """What references/follow-up.md says to take: `best`, else (a tie) the first of the tied runs."""
    if analysis["best"]:
        return analysis["best"]
    f = next(iter(analysis["findings"].values()))
    directory = {r["run"]: r["directory"] for r in analysis["rows"]}
    return {"directory": directory[f["tied"][0]], "epoch": f["epoch"]}


def eval_results(exp: Path) -> dict[tuple[str, str], float]:
    """(run directory, 'epoch_N' or 'base') -> accuracy, read straight from the .eval logs."""
    from inspect_ai.log import list_eval_logs, read_eval_log

    out = {}
    for run_dir in sorted(p for p in exp.iterdir() if (p / "eval" / "logs").is_dir()):
        for info in list_eval_logs(str(run_dir / "eval" / "logs")):
            log = read_eval_log(info, header_only=True)
            if log.status != "success":
                continue
            m = re.search(r"epoch_(\d+)", log.eval.model)
            key = f"epoch_{m.group(1)}" if m else "base"
            out[(run_dir.name, key)] = log.results.scores[0].metrics["accuracy"].value
    return out


def test_every_run_evaluated_at_every_epoch_and_the_control(scenario):
    design = scenario.outputs["design"]
    assert design["finetuned"] == len(RANKS) * len(BATCH_SIZES) and design["controls"] == 1
    results = eval_results(scenario.exp)
    scaffold = scenario.outputs["scaffold"]
    finetuned = [r["directory"] for r in scaffold["torchtune"]]
    assert len(finetuned) == 4
    for d in finetuned:
        for epoch in range(EPOCHS):
            assert (d, f"epoch_{epoch}") in results, f"{d} has no successful evaluation of epoch_{epoch}"
    controls = {d for (d, k) in results if k == "base"}
    assert len(controls) == 1, results


def test_the_agent_confirmed_the_executor_and_ran_locally(scenario):
    dry = scenario.outputs["run --dry-run"]
    assert dry["dry_run"] is True and all(j["action"] == "submit" for j in dry["jobs"])
    real = [a for a in scenario.ran if a[0] == "run" and "--dry-run" not in a]
    assert real and all(a[a.index("--executor") + 1] == "local" for a in real)
    assert scenario.outputs["run"]["executor"] == "local"
    ledger = json.loads((scenario.exp / ".ck" / "ledger.json").read_text())["jobs"]
    assert len(ledger) == 4 + 4 * EPOCHS + 1 and all(j["state"] == "COMPLETED" for j in ledger.values())


def test_no_command_needed_a_flag_the_skills_do_not_mention(scenario):
    flags = {a.split("=")[0] for argv in scenario.ran for a in argv if a.startswith("-")}
    unmentioned = sorted(f for f in flags if f not in scenario.read)
    assert not unmentioned, f"flags used but never mentioned by the skills read: {unmentioned}"
    # and every --set key the agent added is a name the skills' text gives
    for argv in scenario.ran:
        for i, a in enumerate(argv):
            if a == "--set":
                assert argv[i + 1].split("=")[0] in scenario.read, argv[i + 1]


def test_report_answers_which_parameter_matters_more_with_the_logs_numbers(scenario):
    results = eval_results(scenario.exp)
    last = f"epoch_{EPOCHS - 1}"
    params = {r["directory"]: r for r in scenario.outputs["analyze"]["rows"]}
    cells = {}  # (rank, batch size) -> accuracy at the last epoch
    for d, row in params.items():
        if row["type"].lower().startswith("fine"):
            p = row["params"]
            cells[(int(p["lora_rank"]), int(p["batch_size"]))] = results[(d, last)]
    assert len(cells) == 4

    def effect(index, levels):
        lo = [v for k, v in cells.items() if k[index] == levels[0]]
        hi = [v for k, v in cells.items() if k[index] == levels[1]]
        return sum(hi) / len(hi) - sum(lo) / len(lo)

    rank_effect, batch_effect = abs(effect(0, RANKS)), abs(effect(1, BATCH_SIZES))
    report = (scenario.exp / "analysis" / "report.md").read_text()
    answer = report.split("## Answer", 1)[1].split("\n## ", 1)[0]
    assert QUESTION in answer
    sentence = next((s for s in answer.splitlines() if "matters more" in s and not s.startswith("**Question:**")), None)
    assert sentence, f"report.md's answer does not say which parameter matters more:\n{answer}"
    assert f"{rank_effect:.3f}" in sentence and f"{batch_effect:.3f}" in sentence, (sentence, rank_effect, batch_effect)
    claim = re.search(r"(\w+) matters more than (\w+)", sentence)
    if claim:  # a claim must point at the larger effect; otherwise the report says it cannot tell
        larger = "rank" if rank_effect > batch_effect else "batch"
        assert larger in claim.group(1), (sentence, rank_effect, batch_effect)
    # every run's final accuracy and the control's appear as the logs hold them
    for value in [*cells.values(), next(v for (d, k), v in results.items() if k == "base")]:
        assert f"{value:.3f}" in report


def test_second_request_evaluates_the_best_checkpoint_on_a_new_task_without_retraining(scenario):
    from inspect_ai.log import read_eval_log

    best = best_checkpoint(scenario.first_analyze)
    ledger = json.loads((scenario.exp / ".ck" / "ledger.json").read_text())["jobs"]
    assert set(ledger) == set(scenario.first_ledger)  # the best epoch's eval job, run again for the new task
    rerun = [k for k in ledger if ledger[k]["attempts"] != scenario.first_ledger[k]["attempts"]]
    assert rerun == [f"{best['directory']}/eval/epoch{best['epoch']}"], rerun
    assert all(not k.endswith("/finetune") for k in rerun)
    assert {p: p.stat().st_mtime_ns for p in scenario.first_logs} == scenario.first_logs
    new = [p for p in scenario.exp.glob("*/eval/logs/*.eval") if p not in scenario.first_logs]
    assert len(new) == 1 and new[0].parts[-4] == best["directory"]
    log = read_eval_log(str(new[0]), header_only=True)
    assert log.status == "success" and log.eval.metadata["ck_task"] == NEW_TASK
    assert log.eval.model.endswith(f"epoch_{best['epoch']}")
    assert NEW_TASK in scenario.outputs["analyze"]["tasks"]
