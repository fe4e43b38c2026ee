"""What each job asks the scheduler for, as the scaffold stored it beside the job's script
(EXP/<run>/finetune.resources.json, EXP/<run>/eval/epoch<N>.resources.json, ...; see
layout.resources_path). Written with the script and from the same Resources the script's
#SBATCH lines were rendered from, so the two always agree; read back here, never parsed out of
the script's text."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import CkError
from ..executors.resources import Resources
from . import layout


def resources_text(res: Resources) -> str:
    """The stored form of one job's resources (the scaffold writes it with util.fs)."""
    return json.dumps(res.to_dict(), indent=2) + "\n"


def read_job_resources(script: Path) -> Resources | None:
    """The resources stored beside `script`; None when there is no such file (a script an older
    ck scaffolded, or one written by hand). A file that is there but broken is an error."""
    path = layout.resources_path(script)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CkError(f"cannot read ({exc})", file=path, hint="re-run `ck scaffold` to rewrite it") from None
    if len(text) > 64 * 1024:
        raise CkError("is larger than 64 KiB: not a resources file", file=path)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CkError(f"is not valid JSON ({exc})", file=path, hint="re-run `ck scaffold` to rewrite it") from None
    if not isinstance(data, dict):
        raise CkError("expected a JSON object of resources", file=path, line=1)
    try:
        return Resources.from_dict(data)
    except CkError as err:
        raise CkError(err.message, file=path, field=err.field,
                      hint="re-run `ck scaffold` to rewrite it") from None
