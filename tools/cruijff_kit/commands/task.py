"""`ck task new NAME --dataset PATH --input-field F --target-field F --scorer S --out FILE`
(create-inspect-task): an inspect-ai task file from templates/inspect_task.py.j2."""
from __future__ import annotations

import keyword
from pathlib import Path

from ..errors import CkError
from ._common import emit_json

SCORERS = {"exact": ("exact_match()", "exact match of the stripped completion (case-sensitive)"),
           "includes": ("includes_target()", "the target appears in the completion (case-sensitive)"),
           "numeric": ("numeric_match()", "the first number in the completion equals the target number"),
           "classification": ("classification_match(labels)",
                               "the completion names the target's class; accuracy, balanced accuracy, macro F1, "
                               "F1 per class"),
           "regression": ("regression_error()",
                          "absolute error of the first number in the completion; MAE, RMSE (lower is better)")}


def register(sub) -> None:
    p = sub.add_parser("task", help="inspect-ai task files (create-inspect-task)")
    tsub = p.add_subparsers(dest="task_command", metavar="SUBCOMMAND")
    n = tsub.add_parser("new", help="generate an inspect-ai task for a JSON/parquet dataset",
                        description="create-inspect-task: a task(data_path, split, system_prompt) file "
                                    "with an exact / includes / numeric / classification / regression scorer.")
    n.add_argument("name", metavar="NAME", help="task function name (a Python identifier)")
    n.add_argument("--dataset", required=True, help="JSON {split: [rows]} / JSON list / dir of <split>.parquet / .parquet")
    n.add_argument("--input-field", default="input", help="row field sent to the model (default: input)")
    n.add_argument("--target-field", default="output", help="row field with the expected answer (default: output)")
    n.add_argument("--scorer", choices=tuple(SCORERS), default="exact")
    n.add_argument("--split", default=None, help="split to check the fields in (default: test, else the first)")
    n.add_argument("--out", required=True, metavar="FILE", help="the .py file to write")
    n.add_argument("--force", action="store_true", help="overwrite FILE")
    n.add_argument("--json", action="store_true", help="machine-readable report")
    n.set_defaults(func=run_new)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _sample_rows(dataset: Path, split: str | None) -> tuple[list[dict], str | None, list[str]]:
    """(rows of the split checked, that split, all splits) - enough to validate the field names."""
    try:
        if dataset.is_dir():
            import pyarrow.parquet as pq

            splits = sorted(p.stem for p in dataset.glob("*.parquet"))
            if not splits:
                raise CkError("directory holds no <split>.parquet files", file=dataset, field="--dataset")
            chosen = split or ("test" if "test" in splits else splits[0])
            if chosen not in splits:
                raise CkError(f"no split {chosen!r} (has: {', '.join(splits)})", file=dataset, field="--split")
            return pq.read_table(dataset / f"{chosen}.parquet").slice(0, 5).to_pylist(), chosen, splits
        if dataset.suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(dataset).slice(0, 5).to_pylist(), None, []
        import json

        data = json.loads(dataset.read_text(encoding="utf-8"))
    except CkError:
        raise
    except FileNotFoundError:
        raise CkError("dataset not found", file=dataset, field="--dataset") from None
    except RecursionError:  # json's parser recurses per nesting level: a hostile file is not data
        raise CkError("cannot read the dataset: JSON nested too deeply", file=dataset, field="--dataset") from None
    except (ValueError, OSError) as exc:
        raise CkError(f"cannot read the dataset: {str(exc)[:200]}", file=dataset, field="--dataset",
                      hint="JSON {\"train\": [...], \"test\": [...]}, a JSON list, or parquet") from None
    if isinstance(data, list):
        return data[:5], None, []
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise CkError("JSON must be a list of rows or {split: [rows]}", file=dataset, field="--dataset")
    splits = list(data)
    chosen = split or ("test" if "test" in data else splits[0] if splits else None)
    if chosen not in data:
        raise CkError(f"no split {chosen!r} (has: {', '.join(splits) or 'none'})", file=dataset, field="--split")
    return data[chosen][:5], chosen, splits


def _sizes_and_overlap(dataset: Path, split: str | None, splits: list[str]) -> dict:
    """Rows per split, and how many rows of the evaluated split are also training rows (the skill
    tells the user both: a small split is noisy, a shared one measures memorisation)."""
    from ..experiment.warnings import _row_key, read_split

    rows = {s: read_split(dataset, s) for s in splits}
    sizes = {s: len(r) for s, r in rows.items() if r is not None}
    overlap: dict = {}
    if split and split != "train" and rows.get(split) is not None and rows.get("train") is not None:
        train = {_row_key(r) for r in rows["train"]}
        overlap = {"split": split, "with": "train", "rows": len(rows[split]),
                   "shared": sum(_row_key(r) in train for r in rows[split])}
    return {"sizes": sizes, "overlap": overlap}


def _bound_names(source: str) -> list[str]:
    """Every name the module binds at top level (imports, functions, assignments), repeats kept."""
    import ast

    names: list[str] = []
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names += [(a.asname or a.name).split(".")[0] for a in node.names]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return names


def run_new(args) -> int:
    from ..templating import render
    from ..util.fs import atomic_write_text

    name = args.name
    if not name.isidentifier() or keyword.iskeyword(name):
        raise CkError(f"task name {name!r} is not a Python identifier", field="NAME",
                      hint="letters, digits and underscores, not starting with a digit, e.g. my_task")
    dataset = Path(args.dataset).expanduser().resolve()
    rows, split, splits = _sample_rows(dataset, args.split)
    if not rows:
        raise CkError(f"split {split!r} has no rows" if split else "dataset has no rows", file=dataset, field="--dataset")
    for fld, flag in ((args.input_field, "--input-field"), (args.target_field, "--target-field")):
        bad = [i for i, r in enumerate(rows) if not isinstance(r, dict) or fld not in r]
        if bad:
            have = ", ".join(rows[bad[0]]) if isinstance(rows[bad[0]], dict) else type(rows[bad[0]]).__name__
            raise CkError(f"row {bad[0]} has no field {fld!r} (fields: {have})", file=dataset, field=flag)
    out = Path(args.out).expanduser()
    if out.suffix != ".py":
        raise CkError("the task file must end in .py", file=out, field="--out")
    if out.exists() and not args.force:
        raise CkError("file exists", file=out, field="--out", hint="pass --force to overwrite it")
    if not out.resolve().parent.is_dir():  # a mistyped folder is not created behind the user's back
        raise CkError("the folder of --out does not exist", file=out.resolve().parent, field="--out",
                      hint=f"create it first (mkdir -p {out.resolve().parent})")
    call, doc = SCORERS[args.scorer]
    text = render("inspect_task.py.j2", task_name=name, scorer=args.scorer, scorer_call=call, scorer_doc=doc,
                  dataset_repr=repr(str(dataset)), dataset_display=dataset.name,
                  input_field_repr=repr(args.input_field), target_field_repr=repr(args.target_field),
                  file_name=out.name)
    compile(text, str(out), "exec")  # a template bug must not leave a broken task file behind
    if _bound_names(text).count(name) != 1:
        raise CkError(f"task name {name!r} is also a name the generated file uses (an import or helper)",
                      field="NAME", hint=f"choose another name, e.g. my_{name}")
    atomic_write_text(out, text)
    report = {"task": name, "file": str(out.resolve()), "dataset": str(dataset), "scorer": args.scorer,
              "splits": splits, "checked_split": split, "input_field": args.input_field,
              "target_field": args.target_field,
              # every epoch, as the design skill asks (the checkpoint worth keeping is found, not guessed)
              "design": f"--task {name}={out.resolve()}@all",
              **_sizes_and_overlap(dataset, split, splits)}
    if args.json:
        emit_json(report)
    else:
        print(f"Wrote {report['file']}: task {name} ({args.scorer} scorer) on {dataset}")
        print(f"Try:  inspect eval {report['file']}@{name} --model hf/MODEL_DIR -T split={split or 'test'} --limit 5")
        print(f"Use:  ck design EXP ... {report['design']}")
    return 0
