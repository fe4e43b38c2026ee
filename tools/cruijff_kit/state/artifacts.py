"""Is this checkpoint / evaluation complete, and what did it score? The one reader of artifacts,
for plan, run, status and analyze alike.

Checkpoint (<output_dir>/epoch_<N>/, written by torchtune): complete only when every file its
index names is present and readable — model.safetensors.index.json's weight_map (or
pytorch_model.bin.index.json), else every *.safetensors in the directory; plus the adapter when
adapter_config.json says there is one. A safetensors file is readable when its header parses and
the file is exactly as long as the header says (a truncated copy is not a checkpoint).

Evaluation (EXP/<run>/eval/logs/): done only when a log reads back through inspect-ai's log API
(list_eval_logs + read_eval_log; .eval and .json formats) with status "success" for the expected
task, epoch and checkpoint. `ck run` tags each evaluation it submits with
`inspect eval --metadata ck_*=...` (eval_metadata_args): a tagged log counts only for the job,
task and evaluation fingerprint it names, so a changed evaluation (task, split, epochs, prompt: any
change of the eval script's lines for that task or of the task file) is a new evaluation. An
untagged log (run by hand) counts when its task, epoch and model path match and it is newer than
the eval script.

An eval script evaluates one checkpoint on every task planned for it (one model load), one
`--task NAME FILE@FUNCTION ARGS_JSON` line per task (templates/eval.slurm.j2). A task's fingerprint
is the script's other lines (model, decoding, prompt format: shared by all tasks) + its own task
line + its task file, so adding a task or changing one task's split changes that task's
fingerprint only. A script without task lines (the per-task layout before that) is fingerprinted
whole, as it always was.
"""
from __future__ import annotations

import hashlib
import json
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable
from ..util.formats import parse_time
from . import layout

# ---- metadata keys `ck run` puts on every evaluation log (inspect eval --metadata k=v) -----
META_JOB = "ck_job"  # the job key, e.g. rank8_lr1e-5/eval/capitalization_epoch0
META_EXPERIMENT = "ck_experiment"  # EXP/.ck/experiment.json id
META_FINGERPRINT = "ck_eval"  # sha256 prefix of the eval script + task file
META_TASK = "ck_task"
META_EPOCH = "ck_epoch"  # "base" for a control run

MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit
MAX_TASK_FILE_BYTES = 4 * 1024 * 1024
_EPOCH = re.compile(r"epoch_(\d+)")
_TASK_SPEC = re.compile(r"^\s*inspect\s+eval\s+(?P<spec>'[^']*'|\"[^\"]*\"|\S+)", re.M)
_TASK_LINE = re.compile(r"^\s*--task\s")  # one task of a multi-task eval script


# ======================================================================== checkpoints
def safetensors_problem(path: Path) -> str | None:
    """None when `path` is a readable safetensors file, else what is wrong with it."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return f"{path.name}: shorter than a safetensors header"
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER_BYTES:
                return f"{path.name}: header length {n} is not plausible"
            raw = fh.read(n)
            size = fh.seek(0, 2)
    except FileNotFoundError:
        return f"{path.name}: missing"
    except OSError as exc:
        return f"{path.name}: unreadable ({exc.strerror or exc})"
    if len(raw) < n:
        return f"{path.name}: truncated inside its header"
    try:
        header = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return f"{path.name}: header is not JSON"
    if not isinstance(header, dict):
        return f"{path.name}: header is not an object"
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            return f"{path.name}: tensor {name!r} has no data_offsets"
        end = max(end, offsets[1])
    if size != 8 + n + end:
        return f"{path.name}: {size} bytes, header says {8 + n + end} (truncated or padded)"
    return None


def _index_files(index: Path) -> tuple[set[str] | None, str | None]:
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
        files = set(data["weight_map"].values())
    except (OSError, ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as exc:
        return None, f"{index.name}: unreadable index ({type(exc).__name__})"
    if not files or not all(isinstance(f, str) and "/" not in f and f not in ("", ".", "..") for f in files):
        return None, f"{index.name}: weight_map names no files, or names outside the directory"
    return files, None


def checkpoint_problems(path: Path) -> list[str]:
    """Empty when the checkpoint directory is complete; otherwise every reason it is not."""
    path = Path(path)
    if not path.is_dir():
        return [f"{path}: no such directory"]
    problems: list[str] = []
    st_index = path / "model.safetensors.index.json"
    pt_index = path / "pytorch_model.bin.index.json"
    if st_index.is_file():
        files, err = _index_files(st_index)
        problems += [err] if err else [p for f in sorted(files) if (p := safetensors_problem(path / f))]
    elif pt_index.is_file():
        files, err = _index_files(pt_index)
        problems += [err] if err else [f"{f}: missing or empty" for f in sorted(files)
                                       if not ((path / f).is_file() and (path / f).stat().st_size > 0)]
    else:
        weights = sorted(p for p in path.glob("*.safetensors") if not p.name.startswith("adapter_model"))
        adapter_only = (path / "adapter_config.json").is_file() and any(
            (path / f).is_file() for f in ("adapter_model.safetensors", "adapter_model.bin", "adapter_model.pt"))
        if not weights and not adapter_only:  # an adapter-only epoch (the default save) is weights enough
            problems.append(f"{path}: no model weights (*.safetensors) and no LoRA adapter")
        problems += [p for w in weights if (p := safetensors_problem(w))]
    adapter = path / "adapter_model.safetensors"
    if adapter.exists():
        problems += [p for p in [safetensors_problem(adapter)] if p]
    elif (path / "adapter_config.json").is_file() and not (path / "adapter_model.bin").is_file():
        problems.append("adapter_config.json names an adapter but adapter_model.safetensors is missing")
    problems += [p for name, need in SMALL_JSON.items() if (p := small_json_problem(path / name, need))]
    if not problems and _trained_by_trl(path):
        problems += peft_adapter_problems(path)
    return problems


def _trained_by_trl(path: Path) -> bool:
    try:
        return json.loads((path / "ck_checkpoint.json").read_text(encoding="utf-8")).get("trainer") == "trl"
    except (OSError, ValueError, UnicodeDecodeError, AttributeError):
        return False


def peft_adapter_problems(path: Path) -> list[str]:
    """A TRL epoch as strictly as PEFT will load it: adapter_config.json a LoRA config, every
    lora_A with its lora_B of the config's rank in the safetensors header, the tokenizer (with the
    chat template trained with) beside it. Reads JSON and headers only."""
    try:
        cfg = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return [f"adapter_config.json: unreadable ({type(exc).__name__})"]
    r = cfg.get("r") if isinstance(cfg, dict) else None
    if not isinstance(cfg, dict) or cfg.get("peft_type") != "LORA" or not isinstance(r, int) or r < 1 \
            or not cfg.get("target_modules"):
        return ["adapter_config.json: not a PEFT LoRA config (peft_type LORA, r >= 1, target_modules)"]
    try:
        with open(path / "adapter_model.safetensors", "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n).decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, struct.error) as exc:
        return [f"adapter_model.safetensors: unreadable header ({type(exc).__name__})"]
    shapes = {k: v.get("shape") for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)}
    a = {k.replace(".lora_A.", "."): s for k, s in shapes.items() if ".lora_A." in k}
    b = {k.replace(".lora_B.", "."): s for k, s in shapes.items() if ".lora_B." in k}
    problems = []
    if not a or set(a) != set(b):
        problems.append("adapter_model.safetensors: lora_A / lora_B tensors missing or unpaired")
    elif any(not (isinstance(s, list) and len(s) == 2 and s[0] == r) for s in a.values()) or \
            any(not (isinstance(s, list) and len(s) == 2 and s[1] == r) for s in b.values()):
        problems.append(f"adapter_model.safetensors: LoRA tensors are not of rank {r} (adapter_config.json)")
    try:
        tc = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
        if not tc.get("chat_template"):
            problems.append("tokenizer_config.json: no chat template (the one trained with)")
    except (OSError, ValueError, UnicodeDecodeError, AttributeError):
        problems.append("tokenizer_config.json: missing or unreadable")
    if not any((path / f).is_file() for f in ("tokenizer.json", "tokenizer.model", "vocab.json")):
        problems.append("no tokenizer files (tokenizer.json)")
    return problems


ADAPTER_FILES = ("adapter_model.pt", "adapter_config.json")  # what the merge for evaluation reads


def has_weights(model_dir: Path) -> bool:
    """Full model weights are in model_dir (HF safetensors shards or pytorch_model*.bin)."""
    return any(p.name.startswith("model") for p in Path(model_dir).glob("*.safetensors")) or \
        any(Path(model_dir).glob("pytorch_model*.bin"))


def is_adapter_only(model_dir: Path) -> bool:
    """A LoRA adapter without merged weights: evaluation merges it into its base first."""
    d = Path(model_dir)
    return not has_weights(d) and all((d / f).is_file() for f in ADAPTER_FILES)


# the small files that loading a checkpoint parses (peft, ck's merge, transformers): present means parseable
SMALL_JSON = {"adapter_config.json": (), "ck_checkpoint.json": ("base_model",), "config.json": (),
              "tokenizer_config.json": ()}
MAX_SMALL_JSON = 16 * 1024 * 1024  # a tokenizer_config.json with a large chat template is still well under


def small_json_problem(path: Path, required: tuple[str, ...] = ()) -> str | None:
    """None when `path` is absent or a JSON object carrying `required` (non-empty); else why not."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_SMALL_JSON + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{path.name}: unreadable ({exc.strerror or exc})"
    if len(raw) > MAX_SMALL_JSON:
        return f"{path.name}: larger than {MAX_SMALL_JSON} bytes"
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return f"{path.name}: not valid JSON (truncated or corrupt)"
    if not isinstance(data, dict):
        return f"{path.name}: not a JSON object"
    missing = [k for k in required if not data.get(k)]
    return f"{path.name}: has no {', '.join(missing)}" if missing else None


def checkpoint_complete(path: Path) -> bool:
    return not checkpoint_problems(path)


def completed_epochs(output_dir: Path) -> int:
    """K when epoch_0 .. epoch_<K-1> under output_dir are complete checkpoints (either trainer):
    the epochs a fine-tune has finished, e.g. a job stopped at a search's rung (stop_after_epochs=K,
    exit 0) or one that timed out after its K-th epoch. With the planned epochs N (a finetune
    PlannedJob's len(checkpoints)): K == N finished, K < N stopped or interrupted, not corrupt;
    resume_from_checkpoint=True goes on from epoch K."""
    k = 0
    for n, path in layout.epoch_dirs(output_dir):
        if n != k or not checkpoint_complete(path):
            break
        k += 1
    return k


# ======================================================================== evaluations
@dataclass(frozen=True)
class ExpectedEval:
    """What one planned evaluation must have produced."""

    key: str  # job key
    log_dir: Path  # EXP/<run>/eval/logs
    task: str
    epoch: int | None  # None: the base model (control run)
    checkpoint: Path | None  # the epoch dir it evaluates (None for base)
    script: Path  # the eval script (its text + task file make the fingerprint)


@dataclass
class EvalResult:
    """One evaluation log, as analyze reports it."""

    run_dir: str
    task: str
    epoch: int | None
    status: str
    path: str
    created: str = ""
    scorer: str = ""
    metric: str = ""
    value: float | None = None  # the primary metric: first scorer's accuracy (else its first metric)
    metrics: dict[str, float] = field(default_factory=dict)  # "scorer/metric" -> value
    samples: int = 0
    error: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    model: str = ""
    stderr: float | None = None  # the log's own stderr metric for the primary scorer, if it has one
    unscored: int = 0            # samples the primary scorer left unscored (NaN), e.g. no number found
    # per-sample values of the primary scorer (sample id -> float; C/I -> 1/0), averaged over inspect
    # epochs; empty when the scorer's values are not scalars or the samples are unreadable
    sample_values: dict[str, float] = field(default_factory=dict)


def task_name(raw: str) -> str:
    """'pkg/name', 'file.py@name' or 'name' -> 'name'."""
    return raw.split("/")[-1].split("@")[-1]


def epoch_of(model: str, model_args: object = "") -> int | None:
    found = _EPOCH.findall(f"{model} {model_args}")
    return int(found[-1]) if found else None


def list_logs(log_dir: Path) -> list[Path]:
    """Every inspect log under log_dir, .eval and .json alike, oldest name first."""
    if not Path(log_dir).is_dir():
        return []
    from inspect_ai.log import list_eval_logs

    out = []
    for info in list_eval_logs(str(log_dir), recursive=True):
        name = info.name
        out.append(Path(name[len("file://"):] if name.startswith("file://") else name))
    return sorted(out)


_CACHE: dict[tuple[str, int, int], EvalResult] = {}  # (path, size, mtime_ns) -> parsed header
_CACHE_MAX = 4096


def read_result(path: Path, run_dir: str = "") -> EvalResult:
    """Read one log's header (results live there). Raises on an unreadable file. Headers are
    cached by (path, size, mtime): the monitor asks about the same logs every cycle."""
    import copy

    st = Path(path).stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    hit = _CACHE.get(key)
    if hit is None:
        hit = _read_result(Path(path))
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[key] = hit
    res = copy.deepcopy(hit)
    res.run_dir = run_dir
    return res


def _read_result(path: Path, run_dir: str = "") -> EvalResult:
    from inspect_ai.log import read_eval_log

    log = read_eval_log(str(path), header_only=True)
    ev = log.eval
    meta = {str(k): str(v) for k, v in (ev.metadata or {}).items()}
    epoch = epoch_of(str(ev.model), ev.model_args)
    if META_EPOCH in meta:
        epoch = None if meta[META_EPOCH] == "base" else int(meta[META_EPOCH])
    res = EvalResult(run_dir=run_dir, task=meta.get(META_TASK) or task_name(str(ev.task)),
                     status=str(log.status), epoch=epoch, path=str(path), created=str(ev.created or ""),
                     metadata=meta, model=str(ev.model))
    if log.error is not None:
        res.error = str(getattr(log.error, "message", log.error)).strip().splitlines()[0][:200]
    if log.results is not None:
        res.samples = int(log.results.completed_samples or 0)
        for score in log.results.scores or []:
            for name, m in (score.metrics or {}).items():
                res.metrics[f"{score.name}/{name}"] = float(m.value)
        first = (log.results.scores or [None])[0]
        if first is not None and first.metrics:
            name = "accuracy" if "accuracy" in first.metrics else next(iter(first.metrics))
            res.scorer, res.metric = first.name, name
            res.value = float(first.metrics[name].value)
            if "stderr" in first.metrics:
                res.stderr = float(first.metrics["stderr"].value)
            res.unscored = int(getattr(first, "unscored_samples", 0) or 0)
    if res.scorer and log.status == "success":
        res.sample_values = read_sample_values(path, res.scorer)
    return res


def read_sample_values(path: Path, scorer: str) -> dict[str, float]:
    """Per-sample values of one scorer from the log's sample summaries (no transcripts are read).
    NaN (unscored) samples are left out, as inspect's metrics leave them out."""
    import math

    from inspect_ai.log import read_eval_log_sample_summaries
    from inspect_ai.scorer import value_to_float

    to_float = value_to_float()
    per_id: dict[str, list[float]] = {}
    for s in read_eval_log_sample_summaries(str(path)):
        score = (s.scores or {}).get(scorer)
        if score is None or isinstance(score.value, (dict, list)):
            continue
        v = float(to_float(score.value))
        if not math.isnan(v):
            per_id.setdefault(str(s.id), []).append(v)
    return {k: sum(v) / len(v) for k, v in per_id.items()}


def _describe_error(path: Path, exc: Exception) -> str:
    detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "no detail"
    return f"{path}: not a readable inspect-ai log ({type(exc).__name__}: {detail})"


def task_file(script: Path) -> Path | None:
    """The task file a single-task eval script runs (`inspect eval <file>[@task]`), when it is a file."""
    try:
        text = script.read_text(encoding="utf-8", errors="replace")[:65536]
    except OSError:
        return None
    m = _TASK_SPEC.search(text)
    if not m:
        return None
    spec = m.group("spec").strip("'\"").split("@")[0]
    path = (script.parent / spec) if not spec.startswith("/") else Path(spec)
    return path if path.is_file() else None


@dataclass(frozen=True)
class TaskLine:
    """One `--task NAME FILE@FUNCTION ARGS_JSON` line of a multi-task eval script."""

    name: str
    spec: str
    args_json: str
    text: str  # the line as written


def task_lines(text: str) -> list[TaskLine]:
    """Every task line of an eval script's text, in order (empty for a single-task script)."""
    import shlex

    out = []
    for line in text.splitlines():
        if not _TASK_LINE.match(line):
            continue
        body = line.rstrip()
        body = body[:-1] if body.endswith("\\") else body
        try:
            words = shlex.split(body)
        except ValueError:
            continue
        if len(words) == 4 and words[0] == "--task":
            out.append(TaskLine(words[1], words[2], words[3], line))
    return out


def script_tasks(script: Path) -> list[TaskLine]:
    return task_lines(_read_bounded(script).decode("utf-8", errors="replace"))


def _read_bounded(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(MAX_TASK_FILE_BYTES)
    except OSError:
        return b"<unreadable>"


def _spec_file(spec: str, script: Path) -> Path:
    path = Path(spec.split("@")[0])
    return path if path.is_absolute() else script.parent / path


def eval_fingerprint(script: Path, task: str | None = None) -> str:
    """What makes an evaluation this evaluation. A multi-task script: the lines every task shares
    (checkpoint, prompt format, decoding), `task`'s own line (file, split, prompt, scorer) and its
    task file; a single-task script (or a task it has no line for): the whole script and the file
    its `inspect eval` names."""
    h = hashlib.sha256()
    raw = _read_bounded(script)
    text = raw.decode("utf-8", errors="replace")
    lines = task_lines(text)
    mine = [t for t in lines if t.name == task] if task is not None else []
    if not mine:
        for part in (script, task_file(script)):
            if part is None:
                continue
            h.update(_read_bounded(part) if part != script else raw)
            h.update(b"\0")
        return h.hexdigest()[:16]
    own = {t.text for t in lines}
    shared = "\n".join(line for line in text.splitlines() if line not in own)
    h.update(shared.encode("utf-8"))
    h.update(b"\0")
    h.update(mine[0].text.strip().encode("utf-8"))
    h.update(b"\0")
    h.update(_read_bounded(_spec_file(mine[0].spec, script)))
    h.update(b"\0")
    return h.hexdigest()[:16]


def job_metadata(expected: ExpectedEval, exp_id: str | None) -> dict[str, str]:
    """The metadata every task of one eval job shares (job key, epoch, experiment)."""
    meta = {META_JOB: expected.key, META_EPOCH: "base" if expected.epoch is None else str(expected.epoch)}
    if exp_id:
        meta[META_EXPERIMENT] = exp_id
    return meta


def expected_metadata(expected: ExpectedEval, exp_id: str | None) -> dict[str, str]:
    """Every tag a log of `expected` carries: the job's, plus its task and fingerprint."""
    return {**job_metadata(expected, exp_id), META_FINGERPRINT: eval_fingerprint(expected.script, expected.task),
            META_TASK: expected.task}


def metadata_args(meta: dict[str, str]) -> str:
    """`--metadata k="v" ...` for $CK_INSPECT_ARGS, which the eval script word-splits (so no
    spaces or glob characters). inspect reads each value as YAML: the double quotes keep a task
    named 0777 or true, or a fingerprint of digits, a string (unquoted they become 511 / True)."""
    for k, v in meta.items():
        if not re.fullmatch(r"[A-Za-z0-9._:/+-]+", v):
            raise ValueError(f"metadata {k}={v!r} cannot pass through CK_INSPECT_ARGS")
    return " ".join(f'--metadata {k}="{v}"' for k, v in meta.items())


def _created(text: str) -> float | None:
    t = parse_time(text)
    return None if t is None else t.timestamp()


def _model_path(model: str) -> str:
    return model.split("/", 1)[1] if "/" in model else model  # "hf/<path>" -> "<path>"


def matches(res: EvalResult, expected: ExpectedEval, fingerprint: str | None = None) -> bool:
    """Whether a successful log `res` is the result of `expected` (see module doc)."""
    if res.status != "success":
        return False
    if META_JOB in res.metadata:
        fp = fingerprint or eval_fingerprint(expected.script, expected.task)
        return (res.metadata.get(META_JOB) == expected.key and res.metadata.get(META_FINGERPRINT) == fp
                and res.task == expected.task)
    if res.task != expected.task or res.epoch != expected.epoch:
        return False
    if expected.checkpoint is not None:
        model = _model_path(res.model)
        if model.startswith("/") and Path(model) != Path(expected.checkpoint):
            return False
        if not str(expected.checkpoint).endswith(model.rstrip("/")):
            return False
    try:
        changed = expected.script.stat().st_mtime
    except OSError:
        return False
    created = _created(res.created)
    return created is not None and created >= changed - 1  # not older than the evaluation it claims


@dataclass
class EvalCheck:
    done: bool
    result: EvalResult | None = None  # the newest matching successful log
    problems: list[str] = field(default_factory=list)  # unreadable logs (never fatal)


def check_eval(expected: ExpectedEval, logs: Iterable[Path] | None = None) -> EvalCheck:
    """Is `expected` done? Reads the headers of the logs in its log dir."""
    check = EvalCheck(False)
    fingerprint = eval_fingerprint(expected.script, expected.task)
    for path in (list_logs(expected.log_dir) if logs is None else logs):
        try:
            res = read_result(path)
        except Exception as exc:  # a corrupt / truncated log is no result, never fatal
            check.problems.append(_describe_error(path, exc))
            continue
        if matches(res, expected, fingerprint):
            if check.result is None or (res.created, res.path) >= (check.result.created, check.result.path):
                check.result = res
    check.done = check.result is not None
    return check


# ======================================================================== analyze's view
@dataclass
class EvalScan:
    results: dict[tuple[str, str, int | None], EvalResult] = field(default_factory=dict)
    failed: dict[tuple[str, str, int | None], EvalResult] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def scan_run(exp_dir: Path, run_dir: str, scan: EvalScan,
             expected: Iterable[ExpectedEval] | None = None) -> None:
    """Add the latest result per task x epoch found under EXP/<run_dir>/eval/logs/ to `scan`.
    With `expected` (the planned evaluations of this run), a successful log counts only when it
    is the result of one of them (same rules as `ck run`); others go to `problems`."""
    logs = Path(exp_dir) / run_dir / "eval" / "logs"
    exp_list = list(expected) if expected is not None else None
    fps = {(e.key, e.task): eval_fingerprint(e.script, e.task) for e in exp_list or []}
    for path in list_logs(logs):
        try:
            res = read_result(path, run_dir)
        except Exception as exc:  # a corrupt/truncated log must not stop the analysis
            scan.problems.append(_describe_error(path, exc) + "; skipped - re-run that evaluation "
                                 "(`ck run` does) or delete the file")
            continue
        if res.status == "success" and exp_list is not None and not any(
                matches(res, e, fps[(e.key, e.task)]) for e in exp_list):
            scan.problems.append(f"{path}: a successful log that is not the current evaluation of "
                                 f"{run_dir} (task {res.task}, epoch {res.epoch}); not counted - "
                                 "`ck run` re-runs the evaluation")
            continue
        key = (run_dir, res.task, res.epoch)
        target = scan.results if res.status == "success" else scan.failed
        old = target.get(key)
        # file names start with inspect's timestamp; `created` breaks ties across renamed files
        if old is None or (res.created, res.path) >= (old.created, old.path):
            target[key] = res
    for key in list(scan.failed):
        if key in scan.results:  # a later retry succeeded, or an old success exists: use it
            del scan.failed[key]
