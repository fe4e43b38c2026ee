"""Results across experiments: one SQLite file per user that every `ck analyze` writes into.

One row per experiment x run x checkpoint x task x split x metric (a run is one seed), with what
the run trained with - read from its own setup_finetune.yaml, not from the plan - its model, the
dataset's sha256, the trainer and ck's version, plus the per-sample scores (for paired
comparisons across experiments). Re-analysing an experiment replaces its rows in one
transaction: never duplicates, never half an analysis.

Where: $CK_RESULTS_STORE, else claude.local.md's `results_store`, else
$XDG_CACHE_HOME/cruijff_kit/results.sqlite (~/.cache/...). WAL journal and a busy timeout make two
analyses at once safe (the second waits). A file that is not a SQLite database, or a store locked
for longer than the timeout, is a clear error; the file is never overwritten or recreated.
"""
from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from ..errors import CkError
from ..util.hashing import dataset_sha256

ENV = "CK_RESULTS_STORE"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0
KEY = ("experiment_id", "run", "checkpoint", "task", "split", "metric")
COLUMNS = ("experiment_id", "experiment", "experiment_dir", "run", "directory", "run_type", "configuration",
           "seed", "checkpoint", "epoch", "task", "split", "metric", "value", "se", "n", "model", "model_path",
           "dataset", "dataset_sha256", "trainer", "ck_version", "settings", "samples", "log", "analyzed_at")
# the per-sample scores live in their own table: they are most of the bytes, and most queries skip them
MAIN = tuple(c for c in COLUMNS if c != "samples")
_DDL = f"""
CREATE TABLE IF NOT EXISTS results (
    {", ".join(f"{c} {'REAL' if c in ('value', 'se') else 'INTEGER' if c in ('seed', 'epoch', 'n') else 'TEXT'}"
               for c in MAIN)},
    PRIMARY KEY ({", ".join(KEY)})
);
CREATE TABLE IF NOT EXISTS samples (
    {", ".join(f"{c} TEXT" for c in KEY)}, samples TEXT, analyzed_at TEXT,
    PRIMARY KEY ({", ".join(KEY)})
);
CREATE INDEX IF NOT EXISTS results_task ON results (task, split, metric);
CREATE INDEX IF NOT EXISTS results_model ON results (model_path, dataset_sha256);
CREATE INDEX IF NOT EXISTS results_experiment ON results (experiment);
CREATE INDEX IF NOT EXISTS results_experiment_dir ON results (experiment_dir);
CREATE INDEX IF NOT EXISTS results_checkpoint ON results (checkpoint);
"""
_SQLITE_MAGIC = b"SQLite format 3\x00"


def default_path(search: tuple = ()) -> Path:
    env = os.environ.get(ENV)
    if env:
        return Path(env).expanduser()
    from ..localconfig import load_local_config

    try:
        configured = load_local_config(search=search).results_store
    except CkError:
        configured = ""  # a broken claude.local.md is reported by the commands that need it
    if configured:
        return Path(configured).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "cruijff_kit" / "results.sqlite"


class Store:
    def __init__(self, path: str | Path, timeout: float = BUSY_TIMEOUT_S):
        self.path = Path(path)
        self.timeout = timeout

    def _fail(self, exc: Exception, doing: str) -> CkError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return CkError(f"the results store is locked by another process ({doing}; waited {self.timeout:g} s)",
                           file=self.path, hint="another `ck analyze` is writing; run this again when it is done")
        return CkError(f"the results store is not a readable SQLite database ({text}); it was left as it is",
                       file=self.path, hint=f"move it aside (a new store is then created) or point ${ENV} or "
                                            "claude.local.md's results_store at another file")

    def connect(self, create: bool = True) -> sqlite3.Connection:
        if self.path.exists():
            try:
                with open(self.path, "rb") as fh:
                    head = fh.read(16)
            except OSError as exc:
                raise CkError(f"cannot read the results store: {exc.strerror}", file=self.path) from None
            if head and head != _SQLITE_MAGIC:
                raise self._fail(sqlite3.DatabaseError("file is not a database"), "opening")
        elif not create:
            raise CkError("no results store yet: `ck analyze` an experiment first", file=self.path)
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CkError(f"cannot create the results store's directory: {exc.strerror}", file=self.path) from None
        try:
            conn = sqlite3.connect(str(self.path), timeout=self.timeout, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise CkError(f"the results store has schema version {version}; this ck writes {SCHEMA_VERSION}",
                              file=self.path, hint="upgrade ck, or point $CK_RESULTS_STORE at another file")
            if version == 0:  # new (or empty) file: tables and version in one transaction
                conn.executescript(f"BEGIN IMMEDIATE;{_DDL}PRAGMA user_version = {SCHEMA_VERSION};COMMIT;")
        except sqlite3.Error as exc:
            raise self._fail(exc, "opening") from None
        return conn

    def replace_experiment(self, experiment_id: str, rows: list[dict]) -> int:
        """The experiment's rows become `rows` (upserted; its rows no longer produced are removed)."""
        conn = self.connect()
        keys = ", ".join(KEY)

        def upsert(table: str, cols: tuple[str, ...], values) -> None:
            updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in KEY)
            conn.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)}) "
                             f"ON CONFLICT ({keys}) DO UPDATE SET {updates}", values)

        sample_cols = (*KEY, "samples", "analyzed_at")
        try:
            conn.execute("BEGIN IMMEDIATE")
            upsert("results", MAIN, [tuple(r.get(c) for c in MAIN) for r in rows])
            upsert("samples", sample_cols, [tuple(r.get(c) for c in sample_cols) for r in rows if r.get("samples")])
            stamp = rows[0]["analyzed_at"] if rows else ""
            for table in ("results", "samples"):
                conn.execute(f"DELETE FROM {table} WHERE experiment_id = ? AND analyzed_at != ?", (experiment_id, stamp))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise self._fail(exc, "writing") from None
        finally:
            conn.close()
        return len(rows)

    def query(self, where: dict[str, object] | None = None, settings: dict[str, object] | None = None,
              experiments: list[str] | None = None, either: list[tuple[tuple[str, ...], object]] = (),
              samples: bool = False) -> list[dict]:
        """Rows matching every `where` column, every `settings` key (what the run trained with),
        each `either` (one of its columns equals the value) and, when given, one of `experiments`
        (name, directory or id). The per-sample scores (large) only with `samples`."""
        conn = self.connect(create=False)
        clauses, params = [], []
        for cols, value in either:
            clauses.append("(" + " OR ".join(f"r.{c} = ?" for c in cols if c in MAIN) + ")")
            params += [value] * len(cols)
        for col, value in (where or {}).items():
            if col not in MAIN:
                raise CkError(f"unknown column {col!r}", field=col, hint="columns: " + ", ".join(MAIN))
            clauses.append(f"r.{col} = ?")
            params.append(value)
        for key, value in (settings or {}).items():
            clauses.append("json_extract(r.settings, ?) = ?")
            params += [f'$."{key}"', value]
        if experiments:
            alts = []
            for e in experiments:
                alts.append("(r.experiment = ? OR r.experiment_dir = ? OR r.experiment_id = ?)")
                params += [e, str(Path(e).expanduser().resolve()) if os.sep in e or e in (".", "..") else e, e]
            clauses.append("(" + " OR ".join(alts) + ")")
        cols = [f"r.{c}" for c in MAIN] + (["s.samples"] if samples else [])
        sql = (f"SELECT {', '.join(cols)} FROM results r"
               + (f" LEFT JOIN samples s USING ({', '.join(KEY)})" if samples else "")
               + (" WHERE " + " AND ".join(clauses) if clauses else "")
               + " ORDER BY r.experiment, r.run, r.task, r.split, r.metric, r.epoch")
        names = [c.split(".", 1)[1] for c in cols]
        try:
            return [dict(zip(names, r)) for r in conn.execute(sql, params)]
        except sqlite3.Error as exc:
            raise self._fail(exc, "reading") from None
        finally:
            conn.close()


# ------------------------------------------------------------------ rows of one analysis
def _experiment_id(exp_dir: Path) -> str:
    try:
        data = json.loads((exp_dir / ".ck" / "experiment.json").read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            return data["id"]
    except (OSError, ValueError):
        pass
    return str(exp_dir)


def trained_with(setup: dict) -> dict:
    """The training settings a run's own setup file states (the plan may say otherwise)."""
    from ..settings import RUN_SETTINGS

    return {s.key: setup[s.key] for s in RUN_SETTINGS if s.key in setup and s.key != "system_prompt"}


def rows_of(results, exp, setups: dict[str, dict]) -> list[dict]:
    """Store rows of one analysis (`results`: results.Results; `setups`: run directory -> its
    setup_finetune.yaml, {} for runs without one)."""
    from .. import __version__

    exp_dir = Path(results.experiment_dir)
    exp_id = _experiment_id(exp_dir)
    stamp = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    config_of = {run: c.run for c in results.configs for run in c.seeds}
    runs = {r.name: r for r in exp.runs}
    out = []
    for row in results.rows:
        setup = setups.get(row.directory, {})
        settings = trained_with(setup)
        model_path = str(setup.get("model_checkpoint") or exp.model_path(row.model))
        dataset = str(setup.get("dataset") or exp.dataset)
        sha = dataset_sha256(dataset) if dataset else ""
        trainer = exp.tools.preparation if runs.get(row.run) is not None and runs[row.run].finetuned else ""
        for task in results.tasks:
            metric = row.metric_names.get(task, "")
            for key, value in row.all_epochs.get(task, {}).items():
                samples = row.all_samples.get(task, {}).get(key, {})
                out.append({
                    "experiment_id": exp_id, "experiment": results.experiment, "experiment_dir": str(exp_dir),
                    "run": row.run, "directory": row.directory, "run_type": row.type,
                    "configuration": config_of.get(row.run, row.run), "seed": settings.get("seed"),
                    "checkpoint": "base" if key == "base" else f"epoch_{key}",
                    "epoch": None if key == "base" else int(key), "task": task,
                    "split": results.splits.get(task, ""), "metric": metric, "value": value,
                    "se": row.all_epochs_se.get(task, {}).get(key), "n": len(samples) or None,
                    "model": row.model, "model_path": model_path, "dataset": dataset, "dataset_sha256": sha,
                    "trainer": trainer, "ck_version": __version__,
                    "settings": json.dumps(settings, sort_keys=True, default=str),
                    "samples": json.dumps(samples, sort_keys=True) if samples else None,
                    "log": row.all_logs.get(task, {}).get(key), "analyzed_at": stamp})
    return out


# ------------------------------------------------------------------ design: already measured?
# the settings that make a cell: equal values (and model, dataset bytes) mean the same training
CELL_KEYS = ("lora_rank", "lora_alpha", "lora_dropout", "learning_rate", "batch_size", "gradient_accumulation_steps",
             "lr_warmup_steps", "weight_decay", "epochs", "max_steps_per_epoch", "seed", "train_on_input")


def _same(a: object, b: object) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(float(a) - float(b)) <= 1e-12 * max(1.0, abs(float(a)))
    return a == b


def already_measured(exp) -> dict[str, list[str]]:
    """Planned fine-tuned run -> the stored experiments/runs that trained the same cell (same model
    checkpoint, dataset sha256 and CELL_KEYS values). Empty when there is no store yet."""
    from ..settings import resolve

    path = default_path(search=(exp.experiment_dir,) if exp.experiment_dir else ())
    if not path.exists():
        return {}
    sha = dataset_sha256(exp.dataset) if exp.dataset else ""
    store = Store(path, timeout=5.0)
    out: dict[str, list[str]] = {}
    cache: dict[str, list[dict]] = {}
    for run in exp.finetuned_runs:
        model_path = exp.model_path(run.model)
        if model_path not in cache:
            cache[model_path] = store.query({"model_path": model_path, "dataset_sha256": sha,
                                             "run_type": "Fine-tuned"}) if sha else []
        planned = {k: resolve(k, dict(run.settings), dict(exp.settings)) for k in CELL_KEYS}
        hits = []
        for row in cache[model_path]:
            trained = json.loads(row["settings"] or "{}")
            if all(_same(planned[k], trained[k]) for k in CELL_KEYS if k in trained):
                where = f"{row['experiment']} {row['run']}"
                if where not in hits and row["experiment_dir"] != str(Path(exp.experiment_dir or ".").resolve()):
                    hits.append(where)
        if hits:
            out[run.name] = hits
    return out
