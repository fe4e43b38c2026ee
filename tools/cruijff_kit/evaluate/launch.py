"""What an eval script runs: prepare the model and tokenizer for one evaluation, then inspect eval.

    python -m cruijff_kit.evaluate.launch --model-dir DIR [--prompt-format NAME] -- eval TASK [inspect args]

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


def model_arguments(model_dir: Path, fmt_name: str | None, scratch: Path, label: str | None = None,
                    base_model: str | None = None) -> tuple[str, dict, dict]:
    """(inspect model name, model args, metadata) for evaluating model_dir in the given format.

    An adapter-only epoch directory is first merged into scratch (finetune/merge.py); the model
    name stays the epoch directory, so logs name the epoch either way."""
    from cruijff_kit.finetune.merge import is_adapter_only

    weights = Path(model_dir)
    meta = {"ck_decoding": "greedy", "ck_generation_config_replaced": replaced_settings(model_dir),
            "ck_prompt_format": fmt_name or "model's own chat template", "ck_weights": "merged checkpoint"}
    if is_adapter_only(weights):
        from cruijff_kit.finetune.merge import materialise

        weights = materialise(weights, scratch / "merged", base_model)
        meta["ck_weights"] = "adapter merged into its base model in scratch for this evaluation"
    args: dict = {"model_path": str(weights)}
    if fmt_name:
        fmt = FORMATS[fmt_name]
        overlay = write_tokenizer_overlay(weights, scratch / "tokenizer", fmt)
        args.update(tokenizer_path=str(overlay), prompt_format=fmt.name)
        meta["ck_chat_template_sha256"] = fmt.template_sha256
    return f"ck-hf/{label or model_dir}", args, meta


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        print("usage: python -m cruijff_kit.evaluate.launch --model-dir DIR [--prompt-format NAME] "
              "[--task-arg KEY=VALUE ...] -- eval TASK ...", file=sys.stderr)
        return 2
    split = argv.index("--")
    ap = argparse.ArgumentParser(prog="python -m cruijff_kit.evaluate.launch")
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--prompt-format", choices=sorted(FORMATS))
    ap.add_argument("--temperature", type=float, help="sample at this temperature (> 0); default: greedy")
    ap.add_argument("--base-model", help="base model of an adapter directory that does not record one "
                                         "(an eval-only run's adapter trained elsewhere)")
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
    model_dir = Path(a.model_dir)
    base = os.environ.get("CK_SCRATCH") or os.environ.get("TMPDIR") or None
    scratch = Path(tempfile.mkdtemp(prefix="ck-eval-", dir=base))
    try:
        name, margs, meta = model_arguments(model_dir, a.prompt_format, scratch, base_model=a.base_model)
        if a.temperature is not None and a.temperature < 0:
            ap.error(f"--temperature must be >= 0, got {a.temperature}")
        sampled = [] if not a.temperature else ["--temperature", repr(a.temperature)]
        if sampled:  # the plan's Temperature: ck-hf samples (do_sample) and inspect passes the temperature
            margs["sample"] = True
            meta["ck_decoding"] = f"sampling at temperature {a.temperature!r}"  # no comma: inspect splits metadata at commas
        # model and task arguments go through config files: on the command line inspect would
        # split any value that contains a comma into a list
        (scratch / "model_args.json").write_text(json.dumps(margs))
        extra = ["--model", name, "--model-config", str(scratch / "model_args.json"), *sampled]
        if task_args:
            (scratch / "task_args.json").write_text(json.dumps(task_args))
            extra += ["--task-config", str(scratch / "task_args.json")]
        for k, v in meta.items():
            extra += ["--metadata", f"{k}={json.dumps(v)}"]
        import cruijff_kit.evaluate.hf_model  # noqa: F401  (registers ck-hf)
        from inspect_ai._cli.main import inspect

        try:
            inspect.main(args=inspect_args + extra, prog_name="inspect")
        except SystemExit as done:  # click's standalone mode: the exit code inspect eval would have
            return int(done.code or 0) if not isinstance(done.code, str) else 1
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
