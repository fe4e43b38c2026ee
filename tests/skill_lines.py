"""The `ck …` lines of a skill's fenced code blocks: what an agent following the skill runs
(shared by the skills lint, the walkthrough and the agent scenario)."""
import re

FENCE = re.compile(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```", re.S | re.M)


def ck_lines(text):
    for block in FENCE.findall(text):
        for line in block.splitlines():
            line = line.strip()
            if line.startswith("ck "):
                yield line


def command_lines(text, starts=("ck ", "mkdir -p ")):
    """The `ck …` lines and the directories a skill makes first (`mkdir -p …`), in order."""
    for block in FENCE.findall(text):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line.startswith(starts):
                yield line
