"""What an eval script runs: prepare the model and tokenizer once, then inspect eval every task.

    python -m cruijff_kit.evaluate.launch --model-dir DIR [--prompt-format NAME] \
        --task NAME FILE@FUNCTION ARGS_JSON [--task ...] -- [inspect eval args]
    python -m cruijff_kit.evaluate.launch --model-dir DIR [--prompt-format NAME] -- eval TASK [inspect args]
        (one task: the scripts of the per-task layout)

* several --task: evaluated one after another in this process, each with its own log; the ck-hf
  provider loads the weights once (hf_model.py). $CK_TASKS (`ck run` sets it: "NAME=FINGERPRINT
  ...") names the tasks still to do and their fingerprints (tagged ck_eval); unset, every task
  runs; set and empty, none. Each log is tagged ck_task. The exit code is non-zero when any task failed, after all
  of them were tried.

* --prompt-format: the tokenizer inspect loads is an overlay directory in node-local scratch
  (DIR's tokenizer files, symlinked, + a tokenizer_config.json with ck's chat template), so the
  user's base model directory is never modified and the control sees the training format too.
* the model runs through the `ck-hf` provider (greedy unless --temperature > 0, no added special
  tokens: see hf_model.py);
  the format, its template hash and the generation settings it replaced go into the .eval log as
  --metadata.
* an adapter-only epoch directory is merged with its base model (recorded in ck_checkpoint.json,
  or --base-model) into scratch first (the same merge torchtune's recipe does), so scores equal
  those of a merged save.
* scratch ($CK_SCRATCH, else $TMPDIR, else /tmp) is removed afterwards, whatever the outcome.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from cruijff_kit.finetune.prompt_format import FORMATS, write_tokenizer_overlay
from cruijff_kit.util.procs import exit_after, imports_without_gc

PINNED = "pinned"  # finetune/trainers.py: a model's own chat template, its variables pinned (TRL families)

# what greedy evaluation drops from a model's generation_config.json (recorded in the log)
SAMPLING_KEYS = ("do_sample", "temperature", "top_p", "top_k", "min_p", "typical_p", "repetition_penalty",
                 "no_repeat_ngram_size", "encoder_repetition_penalty", "length_penalty", "num_beams")


def replaced_settings(model_dir: Path) -> str:
    """The sampling settings of DIR/generation_config.json that greedy evaluation does not use."""
    gc = model_dir / "generation_config.json"
    try:
        cfg = json.loads(gc.read_text()) if gc.is_file() else {}
    except (OSError, ValueError):
        cfg = {}
    return "; ".join(f"{k}={cfg[k]}" for k in SAMPLING_KEYS if k in cfg) or "none"


# an epoch saved with merged weights keeps its adapter beside them (torchtune's merged save; TRL's with
# Save merged weights); with PEFT installed, transformers would load that adapter ON TOP of the merged
# weights (maybe_load_adapters: a local dir with config.json and adapter_config.json), applying LoRA twice
ADAPTER_BESIDE_WEIGHTS = ("adapter_config.json",)


def weights_without_adapter(model_dir: Path, out_dir: Path) -> Path:
    """A view of model_dir (symlinks, nothing copied) without its adapter files: the merged weights alone."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in Path(model_dir).iterdir():
        if f.is_file() and not f.name.startswith("adapter_") and not (out_dir / f.name).exists():
            (out_dir / f.name).symlink_to(f.resolve())
    return out_dir


def pinned_format(weights: Path, base_model: str | None):
    """The "pinned" format (the model's own template, variables pinned): the one a checkpoint records
    it was trained with, else the one its base model (or this model) gives."""
    from cruijff_kit.finetune.prompt_format import PromptFormat, read_checkpoint_record
    from cruijff_kit.finetune.trainers import prompt_format_of

    record = read_checkpoint_record(weights) or {}
    if record.get("prompt_format") == PINNED and record.get("chat_template"):
        return PromptFormat(PINNED, record["chat_template"])
    return prompt_format_of(base_model or weights)


def model_arguments(model_dir: Path, fmt_name: str | None, scratch: Path, label: str | None = None,
                    base_model: str | None = None) -> tuple[str, dict, dict]:
    """(inspect model name, model args, metadata) for evaluating model_dir in the given format.

    An adapter-only epoch directory is first merged into scratch (finetune/merge.py); the model
    name stays the epoch directory, so logs name the epoch either way."""
    from cruijff_kit.state.artifacts import is_adapter_only
    from cruijff_kit.finetune.peft_merge import is_peft_adapter

    weights = Path(model_dir)
    meta = {"ck_decoding": "greedy", "ck_generation_config_replaced": replaced_settings(model_dir),
            "ck_prompt_format": fmt_name or "model's own chat template", "ck_weights": "merged checkpoint"}
    if is_adapter_only(weights):
        from cruijff_kit.finetune.merge import materialise

        weights = materialise(weights, scratch / "merged", base_model)
        meta["ck_weights"] = "adapter merged into its base model in scratch for this evaluation"
    elif is_peft_adapter(weights):  # a TRL run's epoch: PEFT merges it, as merge.py does torchtune's
        from cruijff_kit.finetune.peft_merge import materialise_peft

        weights = materialise_peft(weights, scratch / "merged", base_model)
        meta["ck_weights"] = "PEFT adapter merged into its base model in scratch for this evaluation"
    elif any((weights / f).is_file() for f in ADAPTER_BESIDE_WEIGHTS):
        weights = weights_without_adapter(weights, scratch / "weights")
    args: dict = {"model_path": str(weights)}
    if fmt_name:
        fmt = FORMATS[fmt_name] if fmt_name != PINNED else pinned_format(weights, base_model)
        overlay = write_tokenizer_overlay(weights, scratch / "tokenizer", fmt)
        args.update(tokenizer_path=str(overlay), prompt_format=fmt.name)
        meta["ck_chat_template_sha256"] = fmt.template_sha256
    return f"ck-hf/{label or model_dir}", args, meta


TASKS_ENV = "CK_TASKS"


def selected_tasks(tasks: list[tuple[str, str, str]], env: str | None) -> list[tuple[str, str, dict, str | None]]:
    """(name, spec, args, fingerprint) of the tasks to run: those $CK_TASKS names, in script
    order, or every task when it is unset. Raises ValueError on a name the script lacks."""
    parsed = []
    for name, spec, raw in tasks:
        try:
            args = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"--task {name}: ARGS_JSON is not JSON ({exc})") from None
        if not isinstance(args, dict):
            raise ValueError(f"--task {name}: ARGS_JSON must be a JSON object")
        parsed.append((name, spec, args))
    if env is None:  # run by hand: every task
        return [(n, s, a, None) for n, s, a in parsed]
    wanted: dict[str, str] = {}
    for item in env.split():
        name, sep, fp = item.partition("=")
        if not sep or not name or not fp:
            raise ValueError(f"{TASKS_ENV}: {item!r} is not NAME=FINGERPRINT")
        wanted[name] = fp
    unknown = sorted(set(wanted) - {n for n, _, _ in parsed})
    if unknown:
        raise ValueError(f"{TASKS_ENV} names task(s) this script does not have: {', '.join(unknown)}")
    return [(n, s, a, wanted[n]) for n, s, a in parsed if n in wanted]


def _inspect(args: list[str]) -> int:
    """inspect's command line, in this process (the ck-hf provider keeps its weights loaded)."""
    import cruijff_kit.evaluate.hf_model  # noqa: F401  (registers ck-hf)
    from inspect_ai._cli.main import inspect

    try:
        inspect.main(args=args, prog_name="inspect")
    except SystemExit as done:  # click's standalone mode: the exit code inspect eval would have
        return int(done.code or 0) if not isinstance(done.code, str) else 1
    return 0


def main(argv: list[str] | None = None, *, job: bool = False) -> int:
    """job: this is the evaluation job's own process (python -m), not a caller's import."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        print("usage: python -m cruijff_kit.evaluate.launch --model-dir DIR [--prompt-format NAME] "
              "--task NAME FILE@FUNCTION ARGS_JSON [--task ...] -- [inspect eval args]", file=sys.stderr)
        return 2
    split = argv.index("--")
    ap = argparse.ArgumentParser(prog="python -m cruijff_kit.evaluate.launch")
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--prompt-format", choices=sorted(FORMATS) + [PINNED])
    ap.add_argument("--temperature", type=float, help="sample at this temperature (> 0); default: greedy")
    ap.add_argument("--base-model", help="base model of an adapter directory that does not record one "
                                         "(an eval-only run's adapter trained elsewhere)")
    ap.add_argument("--task", nargs=3, action="append", default=[], metavar=("NAME", "SPEC", "ARGS_JSON"),
                    help="a task to evaluate (FILE@FUNCTION, its arguments as a JSON object); repeatable")
    ap.add_argument("--task-arg", action="append", default=[], metavar="KEY=VALUE",
                    help="a task parameter, passed verbatim (inspect's -T splits values at commas)")
    a = ap.parse_args(argv[:split])
    inspect_args = argv[split + 1:]
    task_args = {}
    for item in a.task_arg:
        key, sep, value = item.partition("=")
        if not sep or not key:
            ap.error(f"--task-arg needs KEY=VALUE, got {item!r}")
        task_args[key] = value
    if a.task and (task_args or inspect_args[:1] == ["eval"]):
        ap.error("--task lists the tasks itself: no --task-arg, and no `eval TASK` after --")
    try:
        todo = selected_tasks([tuple(t) for t in a.task], os.environ.get(TASKS_ENV)) if a.task else []
    except ValueError as exc:
        ap.error(str(exc))
    if a.temperature is not None and a.temperature < 0:
        ap.error(f"--temperature must be >= 0, got {a.temperature}")
    if a.task and not todo:
        print(f"ck: no task to evaluate (${TASKS_ENV} is empty)", file=sys.stderr)
        return 0
    _load_libraries(job)
    model_dir = Path(a.model_dir)
    base = os.environ.get("CK_SCRATCH") or os.environ.get("TMPDIR") or None
    scratch = Path(tempfile.mkdtemp(prefix="ck-eval-", dir=base))
    try:
        name, margs, meta = model_arguments(model_dir, a.prompt_format, scratch, base_model=a.base_model)
        sampled = [] if not a.temperature else ["--temperature", repr(a.temperature)]
        if sampled:  # the plan's Temperature: ck-hf samples (do_sample) and inspect passes the temperature
            margs["sample"] = True
            meta["ck_decoding"] = f"sampling at temperature {a.temperature!r}"  # no comma: inspect splits metadata at commas
        # model and task arguments go through config files: on the command line inspect would
        # split any value that contains a comma into a list
        (scratch / "model_args.json").write_text(json.dumps(margs))
        extra = ["--model", name, "--model-config", str(scratch / "model_args.json"), *sampled]
        for k, v in meta.items():
            extra += ["--metadata", f"{k}={json.dumps(v)}"]
        if not a.task:  # one task, named after -- (the per-task layout)
            if task_args:
                (scratch / "task_args.json").write_text(json.dumps(task_args))
                extra += ["--task-config", str(scratch / "task_args.json")]
            return _inspect(inspect_args + extra)
        failed = []
        for i, (task, spec, args, fingerprint) in enumerate(todo):
            print(f"ck: task {task} ({i + 1}/{len(todo)})", file=sys.stderr, flush=True)
            own = ["--metadata", f"ck_task={json.dumps(task)}"]
            if fingerprint:
                own += ["--metadata", f"ck_eval={json.dumps(fingerprint)}"]
            if args:
                config = scratch / f"task_args_{i}.json"
                config.write_text(json.dumps(args))
                own += ["--task-config", str(config)]
            try:
                rc = _inspect(["eval", spec, *inspect_args, *extra, *own])
            except Exception as exc:  # one task's failure must not stop the others
                print(f"ck: task {task} failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                rc = 1
            if rc:
                failed.append(task)
        if failed:
            print(f"ck: {len(failed)} of {len(todo)} task(s) failed: {', '.join(failed)}", file=sys.stderr)
            return 1
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _load_libraries(job: bool) -> None:
    """What an evaluation imports, loaded in one go once there is work to do: with the garbage
    collector off when this is the job's own process (util/procs.imports_without_gc)."""
    with imports_without_gc(active=job):
        import torch  # noqa: F401
        from inspect_ai._cli.main import inspect  # noqa: F401

        import cruijff_kit.evaluate.hf_model  # noqa: F401


if __name__ == "__main__":
    exit_after(lambda: main(job=True))
