"""scaffold-inspect: eval/epoch<N>.slurm (+ eval/logs/) for every run and checkpoint it evaluates.

One script per checkpoint lists every task planned for it, so the job loads the model once.
Fine-tuned runs evaluate <output_dir>/epoch_<N>; control runs evaluate the base model
(base.slurm); eval-only runs their Checkpoint or Model (base.slurm, eval_only.py). Scripts of
the per-task layout (<task>_epoch<N>.slurm) that ck generated are removed when their
replacement is written.
Task parameters the task function declares (data_path, split, system_prompt, scorer) are filled
from the experiment; the script is read with `ast`, never imported. The plan's Temperature
(> 0) makes the evaluation sample at that temperature; unset or 0 is greedy.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..errors import CkError
from ..executors.resources import Resources
from ..experiment.eval_only import evaluated_model, is_adapter_dir
from ..experiment.model import Evaluation, Experiment, Run
from ..localconfig import LocalConfig
from ..state import layout
from ..state.job_resources import resources_text
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
    from ..finetune.trainers import SUPPORTED_ARCHITECTURES, model_type, prompt_format_of

    path = exp.model_path(run.model)
    if model_type(path) not in (None, *SUPPORTED_ARCHITECTURES):  # a TRL family: its own template, pinned
        return prompt_format_of(path, run.model).name
    spec = resolve_model(path, run.model)
    if spec.prompt_format is None:
        raise CkError(f"ck has no chat template that reproduces the {spec.family} training format, so its "
                      "evaluation would not see the prompt training saw", file=summary, field="Model",
                      hint="use a Llama-3.x, Qwen2.5 or Mistral v0.3 checkpoint")
    return spec.prompt_format.name


def _setting_line(summary: str | None, name: str) -> int | None:
    """Line of a '- **Name:** …' Configuration bullet in the summary (for messages)."""
    if not summary or not Path(summary).is_file():
        return None
    pattern = re.compile(rf"^\s*[-*]\s+(?:\*\*{re.escape(name)}\s*:?\*\*|{re.escape(name)}\s*:)", re.I)  # bold or plain
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


def check_scorer_choice(script: Path, scorer: str, summary: str | None) -> str:
    """The task's own name for the plan's Scorer: the original template writes 'exact match' for
    `exact` and 'includes' / 'Includes match' alike; anything else the task does not offer is refused."""
    choices = scorer_choices(script)
    if choices is None or scorer in choices:
        return scorer
    words = re.split(r"[\s_-]+", scorer.strip().lower())
    wanted = {"".join(words), "".join(w for w in words if w not in ("match", "matching", "scorer"))} - {""}
    hits = [c for c in choices if "".join(re.split(r"[\s_-]+", c.lower())) in wanted]
    if len(hits) == 1:
        return hits[0]
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


def task_entry(exp: Experiment, ev: Evaluation, script: Path, summary: str | None = None) -> dict:
    """One task line of an eval script: its name, file@function and arguments (a JSON object)."""
    import json

    func, params = task_function(script)
    split = exp.eval_split(ev)  # per task, else the plan's Evaluation split (default test)
    system_prompt = exp.eval_system_prompt(ev)
    task_args = {}
    if "data_path" in params:
        task_args["data_path"] = str(ev.dataset or exp.dataset)
    if "split" in params:
        task_args["split"] = str(split)
    if "system_prompt" in params and system_prompt:
        task_args["system_prompt"] = str(system_prompt)
    scorer = exp.stated("eval_scorer")
    if scorer and "scorer" in params:  # the plan's Scorer, when the task lets it be chosen (else a warning)
        task_args["scorer"] = str(check_scorer_choice(script, scorer, summary))
    # file@function: inspect treats a bare absolute path as a glob and refuses it
    return {"name": ev.task, "spec": f"{script}@{func}", "args_json": json.dumps(task_args, ensure_ascii=False)}


def eval_context(exp: Experiment, run: Run, tasks: list[dict], epoch: int | None, model_path: str,
                 run_dir: str, local: LocalConfig, prompt_format: str | None = None) -> dict:
    """Everything eval.slurm.j2 needs for one checkpoint. Nothing outside the task lines may
    depend on which tasks there are: those lines are every task's fingerprint (artifacts.py)."""
    temperature = exp.stated("eval_temperature")
    suffix = f"epoch{epoch}" if epoch is not None else "base"
    # an eval-only adapter directory is merged into the run's Model (its base) for the evaluation
    base_model = exp.model_path(run.model) if run.eval_only and is_adapter_dir(Path(model_path)) else None
    slurm = local.sbatch(f"{exp.name}_{run_dir}_eval_{suffix}", gpus=min(exp.gpus, 1), mem=eval_mem(exp, run, local))
    return {
        "base_model": base_model,
        "tasks": tasks,
        "model_path": model_path,
        "prompt_format": prompt_format or prompt_format_name(exp, run),
        "epoch": epoch,
        "max_tokens": exp.value("eval_max_tokens"),
        # Temperature > 0: sampled at that temperature (inspect --temperature); unset or 0: greedy
        "temperature": temperature if temperature else None,
        "run_name": run_dir,
        "environment": local.environment(),
        "slurm": slurm,  # `module load` lines
        "resources": Resources.from_slurm(slurm, file=local.path),  # the #SBATCH lines
    }


def eval_mem(exp: Experiment, run: Run, local: LocalConfig) -> str | None:
    """--mem when claude.local.md leaves it unset: from the base model's size, as for training
    (an adapter epoch is merged into a full copy of the base in memory before it is evaluated)."""
    if local.slurm.mem:
        return None
    from ..experiment.estimate import params_from_model, suggested_slurm_mem

    return suggested_slurm_mem(params_from_model(exp.model_path(run.model), run.model),
                               floor_gb=32 if exp.gpus else 8)


def render_eval_slurm(ctx: dict) -> str:
    from ..templating import render

    return render("eval.slurm.j2", **ctx).rstrip("\n") + "\n"


def eval_script_name(epoch: int | None) -> str:
    return f"epoch{epoch}.slurm" if epoch is not None else "base.slurm"


def eval_jobs(exp: Experiment, run: Run, run_dir: str, exp_dir: Path, local: LocalConfig,
              summary: str | None = None) -> list[tuple[str, int | None, str, list[Evaluation]]]:
    """(file name, epoch, model path, evaluations) for every checkpoint one run evaluates: one
    script per checkpoint, listing every task planned for it (the evaluation matrix decides)."""
    jobs: dict[int | None, tuple[str, int | None, str, list[Evaluation]]] = {}
    for ev in exp.evaluations:
        if not ev.applies_to(run.name):  # an evaluation matrix may leave runs out
            continue
        if run.finetuned:
            out = output_dir_for(exp, exp_dir, run_dir, local)
            for epoch in exp.eval_epochs(ev, run):
                jobs.setdefault(epoch, (eval_script_name(epoch), epoch, str(Path(out) / f"epoch_{epoch}"), []))[3].append(ev)
        else:
            if None not in jobs:
                # eval-only: a given checkpoint or model, as it is (experiment/eval_only.py); control: the base model
                model = evaluated_model(exp, run, exp_dir, summary)[0] if run.eval_only else exp.model_path(run.model)
                jobs[None] = (eval_script_name(None), None, model, [])
            jobs[None][3].append(ev)
    return sorted(jobs.values(), key=lambda j: (j[1] is not None, j[1] or 0))


GENERATED_MARK = "Generated by `ck scaffold`"


def _generated_by_ck(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return GENERATED_MARK in fh.read(4096)
    except OSError:
        return False


def superseded_scripts(eval_dir: Path, keep: set[str]) -> list[Path]:
    """Eval scripts ck generated earlier that this scaffold does not write (the per-task scripts
    of the layout before one script per checkpoint, or a checkpoint no longer evaluated). A
    script someone wrote by hand is never touched."""
    if not eval_dir.is_dir():
        return []
    return [p for p in sorted(eval_dir.glob("*.slurm"))
            if p.name not in keep and p.is_file() and not p.is_symlink() and _generated_by_ck(p)]


@dataclass
class EvalPlan:
    """One run's evaluation scripts, checked and rendered, not yet written."""
    run: str
    directory: str
    eval_dir: Path
    rendered: list[tuple[str, str]] = field(default_factory=list)  # (file name, text)


def plan_run_evals(exp: Experiment, run: Run, run_dir: str, exp_dir: Path, local: LocalConfig,
                   summary: str | None) -> tuple[EvalPlan | None, str | None]:
    """(plan, None), or (None, every problem of this run's evaluations). Reads, never writes."""
    try:
        fmt = prompt_format_name(exp, run, summary) if exp.evaluations else None
        jobs = eval_jobs(exp, run, run_dir, exp_dir, local, summary)
    except CkError as err:
        return None, str(err)
    plan = EvalPlan(run.name, run_dir, exp_dir / run_dir / "eval")
    problems = []
    for fname, epoch, model_path, evals in jobs:
        tasks = []
        for ev in evals:
            try:
                trained = exp.value("epochs", run)
                if epoch is not None and epoch >= trained:
                    raise CkError(f"task {ev.task!r} evaluates epoch {epoch} but training writes only "
                                  f"epoch_0..epoch_{trained - 1}", file=summary, line=ev.line, field="Epochs")
                script = resolve_task_script(ev.script, exp_dir, summary, ev.line)
                tasks.append(task_entry(exp, ev, script, summary))
            except CkError as err:
                problems.append(f"{fname} ({ev.task}): {err}")
        if len(tasks) == len(evals):
            ctx = eval_context(exp, run, tasks, epoch, model_path, run_dir, local, fmt)
            plan.rendered.append((fname, render_eval_slurm(ctx)))
            plan.rendered.append((layout.resources_path(Path(fname)).name, resources_text(ctx["resources"])))
    if problems:
        return None, "; ".join(problems)
    return plan, None


def write_run_evals(plan: EvalPlan, *, dry_run: bool = False) -> RunResult:
    """Write (or, dry, compare) a checked plan's scripts; remove the per-task scripts they replace."""
    result = RunResult(run=plan.run, directory=plan.directory)
    try:
        for fname, text in plan.rendered:
            if not dry_run:
                (plan.eval_dir / "logs").mkdir(parents=True, exist_ok=True)
            result.files.append(_write(plan.eval_dir / fname, text, dry_run))
        for old in superseded_scripts(plan.eval_dir, {fname for fname, _ in plan.rendered}):
            record = layout.resources_path(old)  # its stored resources go with it
            for path in (old, record) if record.is_file() else (old,):
                if not dry_run:
                    path.unlink()
                result.files.append(FileChange(str(path), "would remove" if dry_run else "removed"))
    except CkError as err:
        result.ok, result.error = False, str(err)
    return result


def all_files(results: list[RunResult]) -> list[FileChange]:
    return [f for r in results for f in r.files]
