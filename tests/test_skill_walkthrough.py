"""Run, in order, every `ck …` command the workflow skills tell an agent to run, on the tiny
example: design -> scaffold -> run -> status -> analyze, create-inspect-task, launch-training.
Placeholders (EXP_DIR, NAME=PATH, RUN_ID, …) are filled with real values; every command must
exit 0. A command missing from the CLI, renamed, or failing breaks this test."""
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.launch.training_repos import PLAIN_LOOP
from tests.skill_lines import ck_lines, command_lines

ROOT = Path(__file__).resolve().parents[1]
TASK = ROOT / "tools/cruijff_kit/blueprints/capitalization/inspect_task.py"
DESIGN_TO_ANALYZE = ["design-experiment", "scaffold-experiment", "scaffold-torchtune", "scaffold-inspect",
                     "run-experiment", "run-torchtune", "run-inspect", "analyze-experiment"]
pytestmark = pytest.mark.slow


def skill_text(name: str) -> str:
    return (ROOT / "skills" / name / "SKILL.md").read_text()


@pytest.fixture
def world(tmp_path, tiny_model):
    from cruijff_kit.blueprints.capitalization.generate import generate

    (tmp_path / "model").symlink_to(tiny_model, target_is_directory=True)  # the session's tiny model
    generate(tmp_path / "data.json", n=20)
    (tmp_path / "data").mkdir()
    generate(tmp_path / "data" / "my_data.json", n=20)
    (tmp_path / "spec.yaml").write_text(
        f"name: walk\nmodels: {{tiny: {tmp_path / 'model'}}}\ndataset: {tmp_path / 'data.json'}\n"
        f"grid: {{lora_rank: [4], learning_rate: [1e-3]}}\ntasks:\n  - task: capitalization\n"
        f"    script: {TASK}\n    epochs: [0]\nepochs: 1\ngpus: 0\n"
        "config: {Max steps per epoch: 2, Eval max tokens: 2, Warmup steps: 1}\n")
    (tmp_path / "claude.local.md").write_text(f"- venv: {sys.prefix}\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "train.py").write_text(PLAIN_LOOP.replace("required=True", 'default="none"'))
    (repo / "requirements.txt").write_text("wandb\n")  # already installed: --install stays offline
    env = {**os.environ, "CK_LOCAL_CONFIG": str(tmp_path / "claude.local.md"), "CK_EXECUTOR": "local",
           "CK_LAUNCH_HOME": str(tmp_path / "launch-home"), "WANDB_MODE": "offline",
           "WANDB_DIR": str(tmp_path)}
    return tmp_path, env


class Agent:
    """Fills a skill's placeholders and runs its commands like an agent would."""

    def __init__(self, root: Path, env: dict):
        self.root, self.env = root, env
        self.values = {
            "NAME=PATH": f"tiny={root / 'model'}", "DATA.json": str(root / "data.json"),
            "TASK.py": str(TASK), "spec.yaml": str(root / "spec.yaml"), "MODEL_DIR": str(root / "model"),
            "REPO": str(root / "repo"), "SCRIPT": str(root / "repo" / "train.py"),
            # the launch skill runs in the project's venv (reused, nothing downloaded)
            "NAME": sys.prefix, "P": "walkthrough",
            "QUESTION": "Which matters more, LoRA rank or learning rate?",
        }
        self.designs = 0
        self.exp = None
        self.ran: list[str] = []

    def argv(self, line: str) -> list[str]:
        argv = shlex.split(line)
        if argv[1] == "design":  # each design command plans a fresh experiment; later steps use the last
            self.designs += 1
            self.exp = self.root / f"exp{self.designs}"
        out = []
        for i, a in enumerate(argv):
            if a == "EXP_DIR":
                a = str(self.exp)
            elif a == "EXP_DIR/RUN":  # one run directory: the first the scaffold wrote
                a = str(next(p.parent for p in sorted(self.exp.glob("*/setup_finetune.yaml"))))
            elif a == "RUN_ID":
                a = self.values["RUN_ID"]
            elif argv[i - 1] == "--gpus" and argv[1] == "launch":
                a = "cpu"  # the skill picks GPU ids from `ck launch gpus`; this machine has none
            elif a in self.values:
                a = self.values[a]
            else:  # placeholders inside a token, e.g. capitalization=TASK.py@0 or m=MODEL_DIR
                for key in ("NAME=PATH", "DATA.json", "TASK.py", "spec.yaml", "MODEL_DIR"):
                    a = a.replace(key, self.values[key])
            out.append(a)
        return out[1:]

    def run(self, line: str) -> subprocess.CompletedProcess:
        argv = self.argv(line)
        r = subprocess.run([sys.executable, "-m", "cruijff_kit", *argv], cwd=self.root, env=self.env,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"`{line}` -> exit {r.returncode}\nargv={argv}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
        self.ran.append(line)
        if argv[:2] == ["launch", "start"]:
            self.values["RUN_ID"] = json.loads(r.stdout)["run_id"]
        if argv[0] == "run" and "--detach" in argv:
            self.wait_for_supervisor()
        return r

    def wait_for_supervisor(self, timeout: float = 400):
        pid = int((self.exp / ".ck" / "supervisor.pid").read_text().split()[0])
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                return
            time.sleep(1)
        pytest.fail("the detached supervisor did not finish")


def test_workflow_skills_commands_run_in_order(world):
    root, env = world
    agent = Agent(root, env)
    for name in DESIGN_TO_ANALYZE:
        for line in ck_lines(skill_text(name)):
            if "--executor slurm" in line:  # the user confirmed the local executor (run-experiment step 2)
                continue
            agent.run(line)
    exp = agent.exp
    ledger = json.loads((exp / ".ck" / "ledger.json").read_text())["jobs"]
    assert ledger and all(j["state"] == "COMPLETED" for j in ledger.values()), ledger
    assert (exp / "analysis" / "results.csv").is_file()
    assert len(agent.ran) >= 12


def test_create_inspect_task_and_launch_training_commands_run(world):
    root, env = world
    agent = Agent(root, env)
    for line in command_lines(skill_text("create-inspect-task")):
        if line.startswith("mkdir -p "):  # the directory the skill makes before `ck task new --out`
            for d in shlex.split(line)[2:]:
                (root / d).mkdir(parents=True, exist_ok=True)
        else:
            agent.run(line)
    assert (root / "tasks" / "my_task.py").is_file()
    assert list((root / "tasks" / "smoke-logs").glob("*.eval"))  # the smoke test's logs, not ./logs
    assert not (root / "logs").exists()
    for line in ck_lines(skill_text("launch-training")):
        agent.run(line)  # `ck launch stop` too: the tiny run may have ended already, and stop is idempotent
    script = root / "repo" / "train.py"
    assert script.read_text() == PLAIN_LOOP.replace("required=True", 'default="none"')  # reverted
