"""Experiments are places: EXP/.ck/experiment.json names this experiment ({"id", "path"}).

- The id tags every submission (SLURM job name, local job record, inspect log metadata), so a
  job found at the scheduler or a log found on disk is known to be *this* experiment's.
- `path` is where the experiment was when the id was made. A `.ck/` found somewhere else was
  moved or copied with its directory: moved (the original place no longer holds this id) -> the
  record is re-homed (ledger paths are relative, nothing else to change); copied (the original
  still holds it) -> refused, because the ledger names the original's jobs.
- Outputs outside the experiment (claude.local.md's output_dir_base) carry a claim,
  <output_dir>/.ck-experiment.json, written before the first fine-tune is submitted; a plan whose
  output_dir is claimed by another experiment is refused (a copy would overwrite its checkpoints).
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path

from ..errors import CkError
from ..util.fs import atomic_write_json
from . import layout

IDENTITY = layout.IDENTITY
CLAIM = ".ck-experiment.json"


def _read(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise CkError(f"unreadable experiment identity ({exc})", file=path,
                      hint="restore it, or delete it if this directory holds no running jobs") from None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise CkError("experiment identity has the wrong shape (needs an 'id' string)", file=path)
    return data


def read_identity(exp: Path) -> dict | None:
    return _read(exp / layout.CK_DIR / IDENTITY)


def check_place(exp: Path) -> dict | None:
    """The identity if it belongs here; CkError when .ck/ was copied from another experiment.
    Read-only (ck status)."""
    exp = exp.resolve()
    ident = read_identity(exp)
    if ident is None or Path(ident.get("path", "")) == exp:
        return ident
    original = Path(str(ident.get("path", "")))
    other = None
    try:
        other = read_identity(original) if original.is_dir() else None
    except CkError:
        other = None
    if other is not None and other.get("id") == ident["id"]:
        raise CkError(f"this experiment's .ck/ was copied from {original}: its ledger names that "
                      "experiment's jobs, so running here could cancel, wait on or overwrite them",
                      file=exp / layout.CK_DIR / IDENTITY,
                      hint=f"start the copy as a new experiment: move {exp / '.ck'} aside (e.g. "
                           f"`mv {exp / '.ck'} {exp / '.ck.copied'}`) and run again")
    return ident  # moved: ensure_identity re-homes it


def ensure_identity(exp: Path) -> str:
    """This experiment's id, created (or re-homed after a move) on first use by `ck run`."""
    exp = exp.resolve()
    ident = check_place(exp)
    if ident is None:
        ident = {"id": uuid.uuid4().hex[:16], "path": str(exp)}
    elif Path(ident.get("path", "")) != exp:
        ident = {**ident, "moved_from": ident.get("path"), "path": str(exp)}
    else:
        return ident["id"]
    try:
        atomic_write_json(exp / layout.CK_DIR / IDENTITY, ident)
    except OSError as exc:
        raise CkError(f"cannot write the experiment identity ({exc.strerror or exc})",
                      file=exp / layout.CK_DIR / IDENTITY, hint="is the experiment directory writable?") from None
    return ident["id"]


def experiment_of(path: Path, root: Path) -> Path | None:
    """The experiment directory (holding experiment_summary.md) that contains `path`, other than
    `root` itself; None when there is none."""
    for parent in [path, *path.parents]:
        if parent == root:
            return None
        if (parent / layout.SUMMARY).is_file():
            return parent
    return None


def check_output_dir(output_dir: Path, root: Path, exp_id: str | None, *, file: Path) -> None:
    """Refuse an output_dir that belongs to another experiment (a copied or re-used setup)."""
    out = output_dir.resolve()
    owner = experiment_of(out, root.resolve())
    if owner is not None:
        raise CkError(f"output_dir {output_dir} lies inside another experiment ({owner}): this "
                      "experiment would read and overwrite that one's checkpoints", file=file,
                      field="output_dir",
                      hint="re-scaffold this experiment (`ck scaffold`) so output_dir is its own")
    claim = _read_claim(out)
    if claim is None or claim.get("id") == exp_id:
        return
    claimed_path = Path(str(claim.get("path", "")))
    if exp_id is None and claimed_path == root.resolve():
        return
    raise CkError(f"output_dir {output_dir} belongs to experiment {claimed_path} "
                  f"(id {claim.get('id')}): this experiment would overwrite its checkpoints", file=file,
                  field="output_dir",
                  hint="give this experiment its own output_dir (re-scaffold it), or delete "
                       f"{out / CLAIM} if that experiment is gone")


def _read_claim(out: Path) -> dict | None:
    try:
        return _read(out / CLAIM)
    except CkError:
        return None


def claim_output_dir(output_dir: Path, exp: Path, exp_id: str) -> None:
    out = output_dir.resolve()
    if _read_claim(out) is not None:
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / CLAIM, {"id": exp_id, "path": str(exp.resolve())})
    except OSError as exc:
        raise CkError(f"cannot create output_dir ({exc.strerror or exc})", file=out, field="output_dir") from None
