"""scaffold-inspect: eval/<task>_epoch<N>.slurm (+ eval/logs/) for every run and task.

Fine-tuned runs evaluate <output_dir>/epoch_<N>; control runs evaluate the base model
(<task>_base.slurm); eval-only runs their Checkpoint or Model (<task>_base.slurm, eval_only.py).
Task parameters the task function declares (data_path, split, system_prompt, scorer) are filled
from the experiment; the script is read with `ast`, never imported. The plan's Temperature
(> 0) makes the evaluation sample at that temperature; unset or 0 is greedy.
"""
from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path

from ..errors import CkError
from ..experiment.eval_only import evaluated_model, is_adapter_dir
from ..experiment.model import Evaluation, Experiment, Run
from ..localconfig import LocalConfig
from .torchtune_worker import FileChange, RunResult, _write, output_dir_for

REPO_ROOT = Path(__file__).resolve().parents[3]
FILLED_TASK_PARAMS = ("data_path", "split", "system_prompt")


def resolve_task_script(script: str, exp_dir: Path, summary: str | None = None,
                        line: int | None = None) -> Path:
    if not script:
        raise CkError("the evaluation has no task script", file=summary, line=line, field="Script")
    p = Path(script).expanduser()
    candidates = [p] if p.is_absolute() else [exp_dir / p, REPO_ROOT / p]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    raise CkError(f"task script {script!r} not found (looked in: {', '.join(str(c) for c in candidates)})",
                  file=summary, line=line, field="Script", hint="fix the Script column, or `ck task new` to create one")


@lru_cache(maxsize=64)
def task_function(script: Path) -> tuple[str, tuple[str, ...]]:
    """Name and parameter names of the first @task function in the script."""
    try:
        tree = ast.parse(script.read_text(encoding="utf-8"), filename=str(script))
    except SyntaxError as exc:
        raise CkError(f"task script does not parse: {exc.msg}", file=script, line=exc.lineno) from None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for dec in node.decorator_list:
                target = dec.func if isinstance(dec, ast.Call) else dec
                name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
                if name == "task":
                    args = node.args.args + node.args.kwonlyargs
                    return node.name, tuple(a.arg for a in args)
    raise CkError("no @task function found in the task script", file=script)


def prompt_format_name(exp: Experiment, run: Run, summary: str | None = None) -> str:
    """The prompt format training uses for this run's base model (controls are evaluated in it too)."""
    from ..finetune.models import resolve_model

    spec = resolve_model(exp.model_path(run.model), run.model)
    if spec.prompt_format is None:
        raise CkError(f"ck has no chat template that reproduces the {spec.family} training format, so its "
                      "evaluation would not see the prompt training saw", file=summary, field="Model",
                      hint="use a Llama-3.x, Qwen2.5 or Mistral v0.3 checkpoint")
    return spec.prompt_format.name


def _setting_line(summary: str | None, name: str) -> int | None:
    """Line of a '- **Name:** …' Configuration bullet in the summary (for messages)."""
    if not summary or not Path(summary).is_file():
        return None
    pattern = re.compile(rf"^\s*[-*]\s+\*\*{re.escape(name)}\s*:?\*\*", re.I)
    with open(summary, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if pattern.match(line):
                return n
    return None


@lru_cache(maxsize=64)
def scorer_choices(script: Path) -> tuple[str, ...] | None:
    """The scorer names a task script accepts, when it lists them in a module-level SCORERS
    constant of string literals (the blueprint's and `ck task new`'s convention); else None."""
    tree = ast.parse(script.read_text(encoding="utf-8"), filename=str(script))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "SCORERS" for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return None
            if isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value):
                return tuple(value)
    return None


def check_scorer_choice(script: Path, scorer: str, summary: str | None) -> None:
    choices = scorer_choices(script)
    if choices is not None and scorer not in choices:
        raise CkError(f"Scorer {scorer!r} is not one the task offers ({', '.join(choices)})", file=summary,
                      line=_setting_line(summary, "Scorer"), field="Scorer", hint=f"task script: {script}")


def unhonoured_scorer(exp: Experiment, exp_dir: Path, summary: str | None) -> list[str]:
    """Named warnings for the tasks that cannot take the plan's Scorer (no `scorer` parameter)."""
    scorer = exp.stated("eval_scorer")
    out = []
    for ev in exp.evaluations if scorer else ():
        try:
            script = resolve_task_script(ev.script, exp_dir, summary, ev.line)
            params = task_function(script)[1]
        except CkError:
            continue  # the scaffold reports the script itself
        if "scorer" not in params:
            out.append(f"Scorer {scorer!r} is not applied to task {ev.task!r}: its task function has no "
                       "`scorer` parameter, so the task script's own scorer is used")
    return out


def eval_context(exp: Experiment, run: Run, ev: Evaluation, epoch: int | None, model_path: str,
                 script: Path, run_dir: str, local: LocalConfig, prompt_format: str | None = None,
                 summary: str | None = None) -> dict:
    func, params = task_function(script)
    split = exp.eval_split(ev)  # per task, else the plan's Evaluation split (default test)
    system_prompt = exp.eval_system_prompt(ev)
    task_args = {}
    if "data_path" in params:
        task_args["data_path"] = ev.dataset or exp.dataset
    if "split" in params:
        task_args["split"] = split
    if "system_prompt" in params and system_prompt:
        task_args["system_prompt"] = system_prompt
    scorer = exp.stated("eval_scorer")
    if scorer and "scorer" in params:  # the plan's Scorer, when the task lets it be chosen (else a warning)
        check_scorer_choice(script, scorer, summary)
        task_args["scorer"] = scorer
    temperature = exp.stated("eval_temperature")
    suffix = f"epoch{epoch}" if epoch is not None else "base"
    # an eval-only adapter directory is merged into the run's Model (its base) for the evaluation
    base_model = exp.model_path(run.model) if run.eval_only and is_adapter_dir(Path(model_path)) else None
    return {
        "base_model": base_model,
        "task": ev.task,
        # file@function: inspect treats a bare absolute path as a glob and refuses it
        "task_spec": f"{script}@{func}",
        "task_args": task_args,
        "model_path": model_path,
        "prompt_format": prompt_format or prompt_format_name(exp, run),
        "epoch": epoch,
        "max_tokens": exp.value("eval_max_tokens"),
        # Temperature > 0: sampled at that temperature (inspect --temperature); unset or 0: greedy
        "temperature": temperature if temperature else None,
        "run_name": run_dir,
        "environment": local.environment(),
        "slurm": local.sbatch(f"{exp.name}_{run_dir}_{ev.task}_{suffix}", gpus=min(exp.gpus, 1)),
    }


def render_eval_slurm(ctx: dict) -> str:
    from ..templating import render

    return render("eval.slurm.j2", **ctx).rstrip("\n") + "\n"


def eval_jobs(exp: Experiment, run: Run, run_dir: str, exp_dir: Path,
              local: LocalConfig, summary: str | None = None) -> list[tuple[str, Evaluation, int | None, str]]:
    """(file name, evaluation, epoch, model path) for every evaluation of one run."""
    jobs = []
    for ev in exp.evaluations:
        if not ev.applies_to(run.name):  # an evaluation matrix may leave runs out
            continue
        if run.finetuned:
            out = output_dir_for(exp, exp_dir, run_dir, local)
            for epoch in exp.eval_epochs(ev, run):
                jobs.append((f"{ev.task}_epoch{epoch}.slurm", ev, epoch, str(Path(out) / f"epoch_{epoch}")))
        elif run.eval_only:  # a given checkpoint or model, as it is (experiment/eval_only.py)
            jobs.append((f"{ev.task}_base.slurm", ev, None, evaluated_model(exp, run, exp_dir, summary)[0]))
        else:
            jobs.append((f"{ev.task}_base.slurm", ev, None, exp.model_path(run.model)))
    return jobs


def scaffold_run_evals(exp: Experiment, run: Run, run_dir: str, exp_dir: Path, local: LocalConfig,
                       summary: str | None, *, dry_run: bool = False) -> RunResult:
    result = RunResult(run=run.name, directory=run_dir)
    eval_dir = exp_dir / run_dir / "eval"
    problems = []
    try:
        fmt = prompt_format_name(exp, run, summary) if exp.evaluations else None
    except CkError as err:
        result.ok, result.error = False, str(err)
        return result
    try:
        jobs = eval_jobs(exp, run, run_dir, exp_dir, local, summary)
    except CkError as err:
        result.ok, result.error = False, str(err)
        return result
    for fname, ev, epoch, model_path in jobs:
        try:
            trained = exp.value("epochs", run)
            if epoch is not None and epoch >= trained:
                raise CkError(f"task {ev.task!r} evaluates epoch {epoch} but training writes only "
                              f"epoch_0..epoch_{trained - 1}", file=summary, line=ev.line, field="Epochs")
            script = resolve_task_script(ev.script, exp_dir, summary, ev.line)
            text = render_eval_slurm(eval_context(exp, run, ev, epoch, model_path, script, run_dir, local, fmt,
                                                  summary))
            if not dry_run:
                (eval_dir / "logs").mkdir(parents=True, exist_ok=True)
            result.files.append(_write(eval_dir / fname, text, dry_run))
        except CkError as err:
            problems.append(f"{fname}: {err}")
    if problems:
        result.ok, result.error = False, "; ".join(problems)
    return result


def all_files(results: list[RunResult]) -> list[FileChange]:
    return [f for r in results for f in r.files]
